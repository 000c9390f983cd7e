"""Resume points SQL (:mod:`edgenode.node.usage.resume`), as functions that take the connection first."""

from __future__ import annotations

import sqlite3


def position(conn: sqlite3.Connection, terminal: str, resource_id: str) -> float | None:
    row = conn.execute("SELECT position FROM resume_points WHERE terminal = ? AND resource_id = ?",
                       (terminal, resource_id)).fetchone()
    return row[0] if row else None


def recent(conn: sqlite3.Connection, terminal: str, limit: int) -> list[dict]:
    """This terminal's points on visible resources, newest first, with the resource's row."""
    return [dict(r) for r in conn.execute("""
        SELECT r.*, p.position FROM resume_points p JOIN resources r ON r.id = p.resource_id
        WHERE p.terminal = ? AND r.visible = 1 ORDER BY p.at DESC LIMIT ?""", (terminal, limit))]


def delete_before(conn: sqlite3.Connection, cutoff: float) -> int:
    return conn.execute("DELETE FROM resume_points WHERE at < ?", (cutoff,)).rowcount
