"""Enrolment SQL (:mod:`edgenode.node.sync.enroll`), as functions that take the connection first.

Writers run inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3


def record_enrolment(conn: sqlite3.Connection, hub_url: str, hub_name: str, node_id: str,
                     enrolled_at: float) -> None:
    """Insert or replace the one enrolment row."""
    conn.execute("INSERT INTO sync_enrolment (id, hub_url, hub_name, node_id, enrolled_at) VALUES (1, ?, ?, ?, ?) "
                 "ON CONFLICT(id) DO UPDATE SET hub_url = excluded.hub_url, hub_name = excluded.hub_name, "
                 "node_id = excluded.node_id, enrolled_at = excluded.enrolled_at",
                 (hub_url, hub_name, node_id, enrolled_at))


def enrolment_row(conn: sqlite3.Connection) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM sync_enrolment WHERE id = 1").fetchone()
