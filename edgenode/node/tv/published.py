"""County screening schedules inside signed bundles (the import pipeline's hooks).

A manifest may carry one ``screenings`` object beside ``resources``, covered by
its minisign signature like everything else (docs/bundle-format.md)::

    "screenings": {"playlists": [{"id": "morning", "title": "早间农技", "items": ["rice-01", "pushi.opera-01"]}],
                   "slots": [{"start": "08:00", "end": "10:00", "playlist": "morning", "days": "12345"}],
                   "loop": "morning"}

Playlist ids become ``<channel>.<id>``; an item is a manifest id of the same
channel or a full catalogue id (with a dot).  A channel's later bundle with a
``screenings`` section replaces that channel's whole schedule; one without it
leaves the schedule alone.  A bad section refuses the bundle before its payload
is copied (``E_MANIFEST_INVALID``).
"""

from __future__ import annotations

import sqlite3

from edgenode.core.errors import EdgenodeError
from edgenode.node.tv import queries as q
from edgenode.node.tv.schedule import ScheduleError, check_playlist_id, check_slot
from edgenode.protocol import strictjson

MAX_PLAYLISTS = 50
MAX_SLOTS = 100
MAX_ITEMS = 500


class ScreeningsError(EdgenodeError):
    def __init__(self, message: str):
        super().__init__("E_MANIFEST_INVALID", f"screenings: {message}", zh="内容包中的展播安排有误，未导入",
                         status=400)


def _item(channel: str, value) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 160:
        raise ScreeningsError("items must be resource ids")
    return value if "." in value else f"{channel}.{value}"


def _playlists(raw, channel: str) -> list[tuple[str, str, list[str]]]:
    if not isinstance(raw, list) or len(raw) > MAX_PLAYLISTS:
        raise ScreeningsError(f"playlists: a list of at most {MAX_PLAYLISTS}")
    out = []
    for p in raw:
        if not isinstance(p, dict) or set(p) - {"id", "title", "items"}:
            raise ScreeningsError("each playlist is {id, title, items}")
        title, items = p.get("title"), p.get("items")
        if not isinstance(title, str) or not title.strip() or len(title) > 100:
            raise ScreeningsError("a playlist needs a title of up to 100 characters")
        if not isinstance(items, list) or not 0 < len(items) <= MAX_ITEMS:
            raise ScreeningsError(f"a playlist needs 1 to {MAX_ITEMS} items")
        out.append((f"{channel}.{check_playlist_id(p.get('id'))}", title.strip(), [_item(channel, i) for i in items]))
    return out


def parse(data: bytes, channel: str) -> dict | None:
    """The manifest's screenings, checked and with full ids; None when it has none."""
    doc = strictjson.loads(data.decode("utf-8"))
    raw = doc.get("screenings") if isinstance(doc, dict) else None
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"playlists", "slots", "loop"}:
        raise ScreeningsError("must be an object with playlists, slots and loop")
    try:
        playlists = _playlists(raw.get("playlists") or [], channel)
        ids = {p[0] for p in playlists}
        slots = raw.get("slots") or []
        if not isinstance(slots, list) or len(slots) > MAX_SLOTS:
            raise ScreeningsError(f"slots: a list of at most {MAX_SLOTS}")
        out_slots = []
        for s in slots:
            if not isinstance(s, dict) or set(s) - {"start", "end", "playlist", "days"}:
                raise ScreeningsError("each slot is {start, end, playlist, days}")
            pid = f"{channel}.{s.get('playlist')}"
            if pid not in ids:
                raise ScreeningsError(f"slot names an unknown playlist {str(s.get('playlist'))[:40]!r}")
            out_slots.append((*check_slot(s.get("start"), s.get("end"), s.get("days") or "1234567"), pid))
        loop = raw.get("loop")
        if loop is not None and f"{channel}.{loop}" not in ids:
            raise ScreeningsError(f"loop names an unknown playlist {str(loop)[:40]!r}")
    except ScheduleError as e:
        raise ScreeningsError(e.message) from None
    return {"playlists": playlists, "slots": out_slots, "loop": f"{channel}.{loop}" if loop is not None else None}


def check_manifest_sections(data: bytes, channel: str) -> None:
    parse(data, channel)


def sections_from_source(src_dir) -> dict:
    """The publisher's side (``protocol/build.py``): ``SRC/screenings.json`` becomes the manifest's
    ``screenings``, checked with the node's own rules so the county cannot publish what nodes refuse."""
    from pathlib import Path
    path = Path(src_dir) / "screenings.json"
    if not path.is_file():
        return {}
    try:
        doc = strictjson.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ScreeningsError(f"{path}: not JSON: {str(e)[:80]}") from None
    parse(strictjson.dumps({"screenings": doc}).encode("utf-8"), "x")
    return {"screenings": doc}


def commit_hook(conn: sqlite3.Connection, manifest, data: bytes, result) -> None:
    """Inside the import's transaction: replace this channel's county schedule."""
    s = parse(data, manifest.channel)
    if s is None:
        return
    source = f"county:{manifest.channel}"
    q.clear_source(conn, source)
    for pid, title, items in s["playlists"]:
        owner = q.playlist_source(conn, pid)
        if owner not in (None, source):
            raise ScreeningsError(f"playlist {pid} belongs to {owner}")
        q.put_playlist(conn, pid, title, items, source)
    for start, end, days, pid in s["slots"]:
        q.add_slot(conn, start, end, pid, days, source)
    q.set_loop(conn, source, s["loop"])
