"""Adding one file by hand: the maintenance path beside the signed-bundle import.

Order matters for crash safety: probe and validate first, then put blobs in
the store, then one catalogue transaction.  A crash before the commit leaves
at most an unreferenced blob, which gc removes; never a half-added resource.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path

from edgenode.node.catalog import media
from edgenode.node.catalog import queries as q
from edgenode.node.catalog.subtitles import to_webvtt
from edgenode.protocol.metadata import validate_id, validate_metadata
from edgenode.core.db import transaction
from edgenode.node.storage.quota import make_room
from edgenode.core.store import Store


def make_id(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", path.stem).strip("-")[:40]
    return f"local-{stem + '-' if stem else ''}{uuid.uuid4().hex[:8]}"


def add_file(conn: sqlite3.Connection, store: Store, cfg, path: Path | str, meta: dict, *,
             resource_id: str | None = None, source: str = "cli", added_at: float | None = None,
             episode: tuple | None = None, subtitles=()) -> dict:
    """``episode``: (series num, season, episode); ``subtitles``: (language, label, WebVTT or SRT bytes)."""
    path = Path(path)
    clean = validate_metadata(meta)
    rid = validate_id(resource_id) if resource_id else make_id(path)
    facts = media.probe(path, ffprobe=cfg.media.ffprobe, ffmpeg=cfg.media.ffmpeg,
                        timeout=cfg.media.probe_timeout_seconds)
    make_room(conn, store, cfg, path.stat().st_size)  # storage: evict per policy, or E_NO_ROOM
    store.ensure_space(path.stat().st_size)
    main = store.put_file(path)
    poster = None
    poster_bytes = media.make_poster(path, facts, ffmpeg=cfg.media.ffmpeg, timeout=cfg.media.probe_timeout_seconds)
    if poster_bytes:
        poster = store.put_bytes(poster_bytes)
    tracks = [(lang, label, store.put_bytes(to_webvtt(data)), i == 0) for i, (lang, label, data) in enumerate(subtitles)]
    res = {
        "id": rid, "title": clean["title"], "description": clean["description"], "column_key": clean["column"],
        "kind": facts.kind, "sha256": main.sha256, "size": main.size, "mime": facts.mime, "ext": facts.ext,
        "duration": facts.duration, "width": facts.width, "height": facts.height, "codecs": facts.codecs,
        "playable": facts.playable, "poster_sha256": poster.sha256 if poster else None,
        "language": clean["language"], "source": source, "channel": None, "added_at": added_at,
        **dict(zip(("series_num", "season", "episode"), episode or ())),
    }
    with transaction(conn):
        q.record_blob(conn, main.sha256, main.size)
        if poster:
            q.record_blob(conn, poster.sha256, poster.size)
        for _lang, _label, put, _default in tracks:
            q.record_blob(conn, put.sha256, put.size)
        q.upsert_resource(conn, res, clean["tags"], [(lang, label, put.sha256, d) for lang, label, put, d in tracks])
    return q.get(conn, rid, include_hidden=True)
