"""Diagnostics bundle SQL (:mod:`edgenode.node.health.diagnostics`), as functions that take the connection first."""

from __future__ import annotations

import sqlite3


def recent_imports(conn: sqlite3.Connection, limit: int) -> list[dict]:
    """The newest ``limit`` rows of the import history, newest first."""
    return [dict(r) for r in conn.execute("SELECT * FROM imports ORDER BY started_at DESC LIMIT ?", (limit,))]
