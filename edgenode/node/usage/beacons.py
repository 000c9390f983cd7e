"""Usage recording: the terminal cookie, server-side page views, player beacons.

A terminal (a reading-room PC or a phone) is a random id in the ``tid``
cookie, never an IP address or anything personal.  Views queue their events on
``g`` with :func:`note`; after the response is built they go to the
process's group-commit writer (``recorder.py``, which calls
``usage.events.record``): a request's events always share one transaction.
A failed write is logged (``E_USAGE_RECORD``) and never breaks the page.

The player's beacon (``POST /api/v1/usage/beacon``) is exempt from the CSRF
token because it only appends counters; instead it must be
``Content-Type: application/json``, which a cross-site page cannot send
without a CORS preflight this server never grants, so other sites cannot
forge plays.  Each event's seconds are capped at twice the beacon interval.
"""

from __future__ import annotations

import logging
import re
import secrets

from flask import Blueprint, current_app, g, jsonify, request

from edgenode.node.catalog import queries as q
from edgenode.protocol import figures
from edgenode.core.errors import NotFound
from edgenode.node.web.auth import csrf
from edgenode.node.web.context import get_db, node
from edgenode.node.web.errors import render_error
from edgenode.node.usage.recorder import Recorder

log = logging.getLogger(__name__)

bp = Blueprint("beacons", __name__, url_prefix="/api/v1/usage")

COOKIE = "tid"
TID_RE = re.compile(r"^[A-Za-z0-9_-]{16,32}$")
TWO_YEARS = 2 * 365 * 24 * 3600
PLAYER_KINDS = {"play_start", "progress", "play_end"}
MAX_EVENTS = 20
MAX_BODY = 8 * 1024


def terminal() -> str:
    """This request's terminal id: the cookie's, or a new random one set on the response."""
    if "terminal" not in g:
        tid = request.cookies.get(COOKIE, "")
        g.new_terminal = not TID_RE.match(tid)
        g.terminal = secrets.token_urlsafe(12) if g.new_terminal else tid
    return g.terminal


def counted_terminal() -> str:
    """The terminal the figures count this request under: ANONYMOUS when it came without a
    valid cookie (protocol/figures.py: cookie-less clients are no terminals)."""
    tid = terminal()
    return figures.ANONYMOUS if g.new_terminal else tid


def known_terminal() -> str | None:
    """This request's terminal id when it came with the request (a new one has no history to look up)."""
    tid = terminal()
    return None if g.new_terminal else tid


def note(kind: str, *, resource_id: str | None = None, column_key: str | None = None,
         seconds: float = 0, data: dict | None = None) -> None:
    """Queue a usage event; written once the response is ready."""
    g.setdefault("usage_events", []).append({"kind": kind, "terminal": counted_terminal(), "resource_id": resource_id,
                                             "column_key": column_key, "seconds": seconds, "data": data})


def recorder() -> Recorder:
    return current_app.extensions["usage_recorder"]


def _flush(response):
    queued = g.pop("usage_events", None)
    if queued:
        try:
            recorder().submit(queued)  # committed by the writer thread, never delaying the page
        except Exception as e:  # recording must never break browsing
            log.warning("E_USAGE_RECORD: dropped %d usage events on %s: %s", len(queued), request.path, e)
    if g.get("new_terminal") and g.get("terminal"):
        response.set_cookie(COOKIE, g.terminal, max_age=TWO_YEARS, httponly=True, samesite="Lax")
    return response


def _bad(reason: str):
    log.warning("E_BEACON: refused beacon from terminal %s: %s", request.cookies.get(COOKIE, "-")[:32], reason)
    return render_error(400, "E_BEACON", reason, "播放记录格式不正确")


@bp.route("/beacon", methods=["POST"])
@csrf.exempt
def beacon():
    if request.mimetype != "application/json":
        return _bad("Content-Type must be application/json")
    if (request.content_length or 0) > MAX_BODY:
        return _bad("beacon too large")
    body = request.get_json(silent=True)
    items = body.get("events") if isinstance(body, dict) else None
    if not isinstance(items, list) or not 0 < len(items) <= MAX_EVENTS:
        return _bad(f"expected {{'events': [...]}} with 1 to {MAX_EVENTS} events")
    cap = 2 * node().cfg.web.beacon_interval_seconds + 5
    db = get_db()
    known: dict[str, str | None] = {}
    for item in items:
        if not isinstance(item, dict) or item.get("kind") not in PLAYER_KINDS:
            return _bad("each event needs kind play_start, progress or play_end")
        rid = item.get("resource")
        if not isinstance(rid, str) or len(rid) > 128:
            return _bad("each event needs a resource id")
        if rid not in known:
            try:
                known[rid] = q.get(db, rid)["column_key"]
            except NotFound:
                known[rid] = None
        if known[rid] is None:
            return _bad(f"unknown resource {rid[:40]!r}")
        seconds = item.get("seconds", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < 1e6:
            return _bad("seconds must be a non-negative number")
        if item["kind"] == "play_start":
            seconds = 0
        position = item.get("position")
        data = {"position": round(float(position), 1)} if isinstance(position, (int, float)) \
            and not isinstance(position, bool) and 0 <= position < 1e7 else None
        note(item["kind"], resource_id=rid, column_key=known[rid], seconds=min(float(seconds), cap), data=data)
    try:
        recorder().submit(g.pop("usage_events"), wait=True)
    except Exception as e:
        log.warning("E_USAGE_RECORD: dropped beacon from terminal %s: %s", terminal(), e)
        return render_error(503, "E_USAGE_RECORD", "could not record usage now", "暂时无法记录")
    return jsonify({"ok": True, "recorded": len(items)}), 200


def init_app(app) -> None:
    app.extensions["usage_recorder"] = Recorder(app.extensions["edgenode"].cfg.db_path)
    app.register_blueprint(bp)
    app.after_request(_flush)
