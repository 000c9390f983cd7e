"""Heartbeat SQL (:mod:`edgenode.node.sync.heartbeat`'s minimal body), as functions that take the connection first."""

from __future__ import annotations

import sqlite3


def channel_seqs(conn: sqlite3.Connection) -> dict[str, int]:
    """The newest accepted bundle sequence per channel."""
    return {r[0]: r[1] for r in conn.execute("SELECT channel, seq FROM channel_state")}


def visible_resource_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM resources WHERE visible = 1").fetchone()[0]
