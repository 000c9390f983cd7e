"""The villagers' live pages: the schedule, the player, the replay; the watching-time beacon.

Every page works without JavaScript: the schedule with a countdown rendered on
the server, a link to the stream for phones that play HLS themselves, and the
replay once it is ready.  With JavaScript, ``live.js`` plays the stream in
``<video>`` natively where the browser can (Safari, most Android phones) and
through the vendored hls.js elsewhere, polls ``/live/<key>/status`` to show
信号中断，正在重连, and reports watching time as ``live_view`` usage events.

The segments themselves never pass through Python in production: nginx serves
``DATA_DIR/live/`` at ``/live-hls/`` (systemd/nginx-site.conf).  The route
below serves them only for the built-in development server.
"""

from __future__ import annotations

import re
import time

from flask import Blueprint, abort, g, jsonify, render_template, request, send_from_directory

from edgenode.node.live import queries as q
from edgenode.node.live.relay import STATE_ZH, broadcast_dir
from edgenode.node.usage.beacons import note, recorder, terminal
from edgenode.node.web.auth import csrf
from edgenode.node.web.context import get_db, node
from edgenode.node.web.errors import render_error

bp = Blueprint("live", __name__, template_folder="templates", static_folder="static",
               static_url_path="/live-static")
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\.[a-z0-9][a-z0-9_-]{0,63}$")
FILE_RE = re.compile(r"^(index\.m3u8|s[0-9]{8}\.ts)$")


def countdown(seconds: float) -> str:
    """还有 2 天 3 小时 / 还有 1 小时 5 分钟 / 还有 4 分钟 (rounded up: never 还有 0 分钟)."""
    minutes = max(1, int(-(-seconds // 60)))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"还有 {days} 天 {hours} 小时"
    return f"还有 {hours} 小时 {mins} 分钟" if hours else f"还有 {mins} 分钟"


def banner(db, now: float | None = None) -> dict:
    """What the portal home shows: the broadcast on now and the next one, with their countdowns."""
    now = time.time() if now is None else now
    rows = [b for b in q.listing(db, now, limit=10) if b["state"] != "refused" and b["end"] > now]
    on = next((b for b in rows if b["start"] <= now), None)
    nxt = next((b for b in rows if b["start"] > now), None)
    return {"on": on and {**on, "countdown": countdown(on["end"] - now)},
            "next": nxt and {**nxt, "countdown": countdown(nxt["start"] - now)},
            "minute": int(now // 60) if on or nxt else None}  # the home page's cache changes only with a countdown


def _broadcast(key: str) -> dict:
    b = q.get(get_db(), key) if KEY_RE.match(key) else None
    if b is None or b["cancelled"]:
        abort(404)
    return b


def _status(b: dict, now: float) -> dict:
    if b["replay_state"] in ("complete", "incomplete"):
        phase = "replay"
    elif now < b["start"]:
        phase = "soon"
    elif now < b["end"] or b["state"] in ("live", "interrupted"):
        phase = "live"
    else:
        phase = "ended"
    text = b["error_zh"] if b["state"] in STATE_ZH and b["error_zh"] else STATE_ZH.get(b["state"], "")
    return {"key": b["key"], "phase": phase, "state": b["state"], "code": b["error_code"], "message_zh": text,
            "replay": b["replay_resource"], "replay_state": b["replay_state"]}


@bp.route("/live/")
def index():
    db, now = get_db(), time.time()
    note("view", data={"page": "live"})
    rows = [b for b in q.listing(db, now - 30 * 86400) if b["state"] != "refused"]
    return render_template("live/index.html", rows=rows, now=now, countdown=countdown)


@bp.route("/live/<key>")
def watch(key: str):
    b, now = _broadcast(key), time.time()
    note("view", data={"page": "live", "broadcast": key})
    return render_template("live/watch.html", b=b, s=_status(b, now), now=now, countdown=countdown,
                           beacon_seconds=node().cfg.web.beacon_interval_seconds)


@bp.route("/live/<key>/status")
def status(key: str):
    return jsonify(_status(_broadcast(key), time.time()))


@bp.route("/live-hls/<key>/<name>")
def hls_file(key: str, name: str):
    """Development only (nginx serves /live-hls/ in production)."""
    if not KEY_RE.match(key) or not FILE_RE.match(name):
        abort(404)
    resp = send_from_directory(broadcast_dir(node().cfg, key), name, max_age=0 if name.endswith(".m3u8") else 3600)
    return resp


@bp.route("/api/v1/live/beacon", methods=["POST"])
@csrf.exempt  # appends counters only; JSON content type keeps other sites out (as the player's beacon)
def beacon():
    body = request.get_json(silent=True) if request.mimetype == "application/json" else None
    if not isinstance(body, dict) or (request.content_length or 0) > 2048:
        return render_error(400, "E_BEACON", "expected a JSON object {key, seconds}", "观看记录格式不正确")
    key, seconds = body.get("key"), body.get("seconds")
    if not isinstance(key, str) or not KEY_RE.match(key) or q.get(get_db(), key) is None:
        return render_error(400, "E_BEACON", "unknown broadcast", "观看记录格式不正确")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < 1e6:
        return render_error(400, "E_BEACON", "seconds must be a positive number", "观看记录格式不正确")
    cap = 2 * node().cfg.web.beacon_interval_seconds + 5
    terminal()
    note("live_view", resource_id=key, seconds=min(float(seconds), cap))
    recorder().submit(g.pop("usage_events"), wait=True)
    return jsonify({"ok": True})


def livetime(ts: int, short: bool = False) -> str:
    """12月7日 19:30 in the node's local time (19:30 alone with ``short``)."""
    t = time.localtime(ts)
    return f"{t.tm_hour:02d}:{t.tm_min:02d}" if short else f"{t.tm_mon}月{t.tm_mday}日 {t.tm_hour:02d}:{t.tm_min:02d}"


def init_app(app) -> None:
    app.add_template_filter(livetime)
    app.register_blueprint(bp)
