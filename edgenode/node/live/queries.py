"""The live area's SQL: broadcasts, the relayed segments, the schedules' sequence numbers."""

from __future__ import annotations

import sqlite3
import time

from edgenode.core.db import transaction

COLUMNS = ("key", "channel", "id", "title", "description", "start", "end", "stream_url", "poster", "cancelled")


def upsert_broadcast(conn: sqlite3.Connection, b: dict, source: str) -> None:
    """Insert or update one scheduled broadcast (joins the caller's transaction)."""
    conn.execute(
        "INSERT INTO live_broadcasts (key, channel, id, title, description, start, end, stream_url, poster, "
        "cancelled, source, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET title = excluded.title, description = excluded.description, "
        "start = excluded.start, end = excluded.end, stream_url = excluded.stream_url, poster = excluded.poster, "
        "cancelled = excluded.cancelled, source = excluded.source, updated_at = excluded.updated_at",
        (*(int(b[c]) if c == "cancelled" else b[c] for c in COLUMNS), source, time.time()))


def channel_broadcasts(conn: sqlite3.Connection, channel: str) -> list[dict]:
    rows = conn.execute("SELECT * FROM live_broadcasts WHERE channel = ? AND cancelled = 0", (channel,))
    return [dict(r) for r in rows]


def get(conn: sqlite3.Connection, key: str) -> dict | None:
    row = conn.execute("SELECT * FROM live_broadcasts WHERE key = ?", (key,)).fetchone()
    return dict(row) if row else None


def listing(conn: sqlite3.Connection, since: float, limit: int = 50) -> list[dict]:
    """Broadcasts not cancelled that end after ``since``, or have a replay, soonest first."""
    rows = conn.execute("SELECT * FROM live_broadcasts WHERE cancelled = 0 AND (end > ? OR replay_state IS NOT NULL) "
                        "ORDER BY start LIMIT ?", (since, limit))
    return [dict(r) for r in rows]


def due(conn: sqlite3.Connection, now: float, lead: float) -> dict | None:
    """The broadcast whose window (opened ``lead`` seconds early) holds ``now``."""
    row = conn.execute("SELECT * FROM live_broadcasts WHERE cancelled = 0 AND start - ? <= ? AND end > ? "
                       "ORDER BY start LIMIT 1", (lead, now, now)).fetchone()
    return dict(row) if row else None


def awaiting_replay(conn: sqlite3.Connection, now: float, give_up_before: float) -> list[dict]:
    """Ended broadcasts without a replay yet (any but those whose window ended before ``give_up_before``,
    which are finished as they are)."""
    rows = conn.execute("SELECT * FROM live_broadcasts WHERE cancelled = 0 AND end <= ? AND replay_state IS NULL "
                        "ORDER BY end", (now,))
    return [dict(r) | {"give_up": r["end"] < give_up_before} for r in rows]


def set_state(conn: sqlite3.Connection, key: str, state: str, code: str | None = None,
              zh: str | None = None) -> None:
    with transaction(conn):
        conn.execute("UPDATE live_broadcasts SET state = ?, error_code = ?, error_zh = ? WHERE key = ?",
                     (state, code, zh, key))


def set_origin_segments(conn: sqlite3.Connection, key: str, n: int) -> None:
    with transaction(conn):
        conn.execute("UPDATE live_broadcasts SET origin_segments = ? WHERE key = ?", (n, key))


def set_replay(conn: sqlite3.Connection, key: str, state: str, resource: str | None, missing: float) -> None:
    with transaction(conn):
        conn.execute("UPDATE live_broadcasts SET replay_state = ?, replay_resource = ?, missing_seconds = ? "
                     "WHERE key = ?", (state, resource, missing, key))


def add_segment(conn: sqlite3.Connection, key: str, seq: int, duration: float, size: int, sha256: str,
                how: str) -> None:
    with transaction(conn):
        conn.execute("INSERT OR REPLACE INTO live_segments (broadcast, seq, duration, size, sha256, how, fetched_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", (key, seq, duration, size, sha256, how, time.time()))


def segments(conn: sqlite3.Connection, key: str) -> list[dict]:
    rows = conn.execute("SELECT seq, duration, size, sha256, how, fetched_at FROM live_segments WHERE broadcast = ? "
                        "ORDER BY seq", (key,))
    return [dict(r) for r in rows]


def schedule_seq(conn: sqlite3.Connection, channel: str) -> tuple[int, str] | None:
    row = conn.execute("SELECT seq, sha256 FROM live_schedules WHERE channel = ?", (channel,)).fetchone()
    return (row[0], row[1]) if row else None


def save_schedule_seq(conn: sqlite3.Connection, channel: str, seq: int, sha256: str) -> None:
    conn.execute("INSERT INTO live_schedules (channel, seq, sha256, applied_at) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT (channel) DO UPDATE SET seq = excluded.seq, sha256 = excluded.sha256, "
                 "applied_at = excluded.applied_at", (channel, seq, sha256, time.time()))
