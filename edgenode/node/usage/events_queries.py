"""Usage event SQL (:mod:`edgenode.node.usage.events`), as functions that take the connection first.

Writers run inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3


def insert_events(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """Append ``(at, mono, boot_id, terminal, kind, resource_id, column_key, seconds, data)`` rows."""
    conn.executemany("INSERT INTO usage_events (at, mono, boot_id, terminal, kind, resource_id, column_key, "
                     "seconds, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def save_positions(conn: sqlite3.Connection, points: list[tuple]) -> None:
    """(terminal, resource_id, position, at): the newest report wins."""
    conn.executemany("""INSERT INTO resume_points (terminal, resource_id, position, at) VALUES (?, ?, ?, ?)
        ON CONFLICT (terminal, resource_id) DO UPDATE SET position = excluded.position, at = excluded.at
        WHERE excluded.at >= resume_points.at""", points)
