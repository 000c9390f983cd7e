"""Screening schedules (展播): what the administrator sets (admin page, CLI) and what the TV shows now."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from edgenode.core.db import transaction
from edgenode.node.catalog import queries as cq
from edgenode.node.catalog import series_queries as sq
from edgenode.node.tv import queries as q
from edgenode.node.tv.schedule import ScheduleError, check_playlist_id, check_slot, choose, next_change
from edgenode.protocol.metadata import clean_text, MetadataError

LOCAL = "local"
MAX_ITEMS = 200


def _title(title) -> str:
    try:
        return clean_text(title, "title", max_len=100, required=True)
    except MetadataError as e:
        raise ScheduleError(e.message, e.zh) from None


def set_playlist(conn: sqlite3.Connection, pid: str, title: str, items: list[str]) -> dict:
    """Create or replace one of this point's playlists; every item must be a visible resource."""
    pid = check_playlist_id(pid)
    items = [i.strip() for i in items if i and i.strip()]
    if not items or len(items) > MAX_ITEMS:
        raise ScheduleError(f"a playlist needs 1 to {MAX_ITEMS} resource ids", f"节目单需要 1 到 {MAX_ITEMS} 个节目")
    for rid in items:
        if not cq.is_visible(conn, rid):
            raise ScheduleError(f"no visible resource {rid[:80]!r}", f"没有找到节目“{rid[:40]}”")
    with transaction(conn):
        if q.playlist_source(conn, pid) not in (None, LOCAL):
            raise ScheduleError(f"{pid}: a county playlist; choose another id", "这是县中心的节目单，请换一个编号")
        q.put_playlist(conn, pid, _title(title), items, LOCAL)
    return {"id": pid, "title": title, "items": items}


def _require(conn, pid: str) -> None:
    if q.playlist_source(conn, pid) is None:
        raise ScheduleError(f"no playlist {pid[:60]!r}", "没有这个节目单")


def add_slot(conn: sqlite3.Connection, start: str, end: str, pid: str, days: str = "1234567") -> int:
    start, end, days = check_slot(start, end, days)
    with transaction(conn):
        _require(conn, pid)
        return q.add_slot(conn, start, end, pid, days, LOCAL)


def remove_slot(conn: sqlite3.Connection, num: int) -> bool:
    with transaction(conn):
        return q.delete_slot(conn, num) > 0


def remove_playlist(conn: sqlite3.Connection, pid: str) -> bool:
    with transaction(conn):
        if q.playlist_source(conn, pid) != LOCAL:
            return False
        return q.delete_playlist(conn, pid) > 0


def set_loop(conn: sqlite3.Connection, pid: str | None) -> None:
    """The playlist this point loops between screenings (None: the county's, else the newest videos)."""
    with transaction(conn):
        if pid:
            _require(conn, pid)
        q.set_loop(conn, LOCAL, pid)


def clock(cfg) -> datetime:
    """The TV's local time: the node's, moved by ``tv.clock_offset_seconds`` (faked in tests)."""
    return datetime.now() + timedelta(seconds=cfg["tv.clock_offset_seconds"])


def _item(r: dict, subtitles: list[dict]) -> dict:
    return {"id": r["id"], "title": r["title"], "kind": r["kind"], "src": f"/media/{r['sha256']}.{r['ext']}",
            "poster": f"/media/{r['poster_sha256']}.jpg" if r["poster_sha256"] else None,
            "tracks": [{"src": f"/media/{t['sha256']}.vtt", "lang": t["language"], "label": t["label"]}
                       for t in subtitles]}


def now_playing(conn: sqlite3.Connection, now: datetime) -> dict:
    """What the TV shows at ``now``: the playlist, why, its playable items and when to look again."""
    slots = q.slots(conn)
    pid, why, slot = choose(slots, q.loops(conn), now)
    items = q.playable_items(conn, pid) if pid else []
    if not items:
        pid, why, items = None, "newest", q.newest_playable(conn)
    return {"playlist": pid or "newest", "title": (q.playlist_title(conn, pid) if pid else None) or "最新节目",
            "why": why, "slot": slot and {k: slot[k] for k in ("start", "end", "source")},
            "now": now.strftime("%Y-%m-%d %H:%M:%S"), "next_change": next_change(slots, now).strftime("%H:%M"),
            "items": [_item(r, sq.subtitles_of(conn, r["num"])) for r in items]}


def overview(conn: sqlite3.Connection) -> dict:
    return {"playlists": q.playlists(conn), "slots": q.slots(conn), "loops": q.loops(conn)}
