"""朗读's SQL.  Functions take the connection first."""

from __future__ import annotations

import sqlite3


def queue_changed_since(conn: sqlite3.Connection, since: float, now: float) -> int:
    """Queue every visible resource added or updated since ``since`` (an import's start)."""
    return conn.execute("INSERT OR REPLACE INTO speech_queue (resource_num, queued_at) "
                        "SELECT num, ? FROM resources WHERE visible = 1 AND updated_at >= ?", (now, since)).rowcount


def queued(conn: sqlite3.Connection, limit: int) -> list[dict]:
    """Queued visible resources, latest queued first, with what they say."""
    return [dict(r) for r in conn.execute(
        "SELECT r.num, r.title, r.description FROM speech_queue s JOIN resources r ON r.num = s.resource_num "
        "WHERE r.visible = 1 ORDER BY s.queued_at DESC, r.num DESC LIMIT ?", (limit,))]


def dequeue(conn: sqlite3.Connection, nums: list[int]) -> None:
    conn.executemany("DELETE FROM speech_queue WHERE resource_num = ?", [(n,) for n in nums])


def drop_hidden(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM speech_queue WHERE resource_num IN (SELECT num FROM resources WHERE visible = 0)")


def visible_texts(conn: sqlite3.Connection) -> list[dict]:
    """Every visible resource, newest first, with what it says."""
    return [dict(r) for r in conn.execute(
        "SELECT num, title, description FROM resources WHERE visible = 1 ORDER BY added_at DESC, num DESC")]


def queue_length(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM speech_queue").fetchone()[0]
