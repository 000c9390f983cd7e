"""The TV (电视) mode: 10-foot pages for the reading room's television (docs/portal.md, "TV mode").

* ``/tv``: big tiles, moved between with the arrow keys, chosen with Enter;
* ``/tv/play/<id>``: full-screen playback with subtitles; Escape or Backspace goes back to the tiles,
  the end of an episode goes on to the next;
* ``/tv/live/<key>``: the live relay (共享直播), full screen, which the screen switches to while a
  broadcast is on and leaves when it ends;
* ``/tv/screen``: the screening (展播) of the moment, looping its playlist and switching when the
  schedule says so (it asks ``/tv/api/now`` every ``tv.poll_seconds``); what the kiosk opens.
"""

from __future__ import annotations

import json

from flask import Blueprint, abort, jsonify, redirect, render_template, url_for

from edgenode.node.catalog import queries as cq
from edgenode.node.catalog import series_queries as sq
from edgenode.node.live.views import banner as live_banner
from edgenode.node.tv import screenings
from edgenode.node.usage import resume
from edgenode.node.usage.beacons import known_terminal, note
from edgenode.node.web.context import get_db, node

bp = Blueprint("tv", __name__, url_prefix="/tv", template_folder="templates")
TILES = 24


def _now() -> dict:
    db = get_db()
    now = screenings.now_playing(db, screenings.clock(node().cfg))
    now["live"] = _live(db)
    return now


def _live(db) -> dict | None:
    """The broadcast on now, which takes over the screen: the room gathered for it (docs/live.md)."""
    on = live_banner(db)["on"]
    return on and {"key": on["key"], "title": on["title"], "url": url_for("tv.live", key=on["key"])}


def _tiles(db) -> list[dict]:
    """Videos and audio, newest first, a series once (it opens where this TV stopped, else at episode 1)."""
    items = [r for r in sq.browse_grouped(db, page_size=TILES * 2).items
             if r["kind"] in ("video", "audio") and r["playable"]][:TILES]
    going = {r["series_num"]: r for r in resume.continue_watching(db, known_terminal(), 20) if r["series_num"]}
    for r in items:
        if r.get("series"):
            first = going.get(r["series_num"]) or sq.episodes(db, r["series_num"])[0]
            r["play_id"] = first["id"]
        else:
            r["play_id"] = r["id"]
    return items


@bp.get("/")
def tiles():
    db = get_db()
    note("view", data={"page": "tv"})
    return render_template("tv/tiles.html", now=_now(), items=_tiles(db))


@bp.get("/play/<resource_id>")
def play(resource_id: str):
    db = get_db()
    res = cq.get(db, resource_id)
    if res["kind"] not in ("video", "audio") or not res["playable"]:
        abort(404)
    note("view", resource_id=res["id"], column_key=res["column_key"], data={"page": "tv"})
    sq.attach_series(db, [res])
    return render_template("tv/play.html", r=res, next_ep=sq.neighbours(db, res)[1],
                           tracks=sq.subtitles_of(db, res["num"]), tracks_on=node().cfg.web.subtitles_default,
                           start=resume.start_at(db, known_terminal(), res),
                           beacon_interval=node().cfg.web.beacon_interval_seconds)


@bp.get("/screen")
def screen():
    now = _now()
    if now["live"]:  # without JavaScript too: a broadcast on now is what the screen shows
        return redirect(now["live"]["url"])
    note("view", data={"page": "tv-screen", "playlist": now["playlist"]})
    return render_template("tv/screen.html", now=now, now_json=json.dumps(now, ensure_ascii=False),
                           poll=node().cfg["tv.poll_seconds"], tracks_on=node().cfg.web.subtitles_default)


@bp.get("/live/<key>")
def live(key: str):
    """The relay, full screen; back to the screening when it ends (tv.js polls ``/tv/api/now``)."""
    on = _live(get_db())
    if not on or on["key"] != key:
        return redirect(url_for("tv.screen"))
    note("view", data={"page": "tv-live", "broadcast": key})
    return render_template("tv/live.html", b=on, poll=node().cfg["tv.poll_seconds"],
                           beacon_seconds=node().cfg.web.beacon_interval_seconds)


@bp.get("/api/now")
def api_now():
    resp = jsonify(_now())
    resp.headers["Cache-Control"] = "no-store"
    return resp


def init_app(app) -> None:
    from edgenode.node.tv import admin_views

    app.register_blueprint(bp)
    admin_views.init_app(app)
