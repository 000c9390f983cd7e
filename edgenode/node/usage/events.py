"""Recording usage events: one transaction per call, never raising into playback."""

from __future__ import annotations

import json
import sqlite3
import time
from functools import lru_cache
from pathlib import Path

from edgenode.core.db import transaction
from edgenode.node.usage import events_queries as q

PLAYER_KINDS = {"play_start", "progress", "play_end"}
KINDS = {"view", "play_start", "progress", "play_end", "search", "download", "request"}  # request: 可预约下载 (storage)


@lru_cache(maxsize=1)
def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def record(conn: sqlite3.Connection, events: list[dict]) -> int:
    """Append events in one transaction; returns how many were stored.

    Each event: kind, terminal, and optionally resource_id, column_key, seconds, data.
    """
    now, mono, boot = time.time(), time.monotonic(), boot_id()
    rows = [(e.get("at", now), mono, boot, e["terminal"], e["kind"], e.get("resource_id"), e.get("column_key"),
             float(e.get("seconds") or 0), json.dumps(e["data"], ensure_ascii=False) if e.get("data") else None)
            for e in events]
    # The player's position, for 继续观看 (resume.py): the last one reported per terminal and resource.
    points = [(e["terminal"], e["resource_id"], float(e["data"]["position"]), e.get("at", now)) for e in events
              if e["kind"] in PLAYER_KINDS and e.get("resource_id") and isinstance(e.get("data"), dict)
              and isinstance(e["data"].get("position"), (int, float))]
    with transaction(conn):
        q.insert_events(conn, rows)
        if points:
            q.save_positions(conn, points)
    return len(rows)
