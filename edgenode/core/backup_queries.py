"""Backup SQL (:mod:`edgenode.core.backup`), as functions that take the connection first."""

from __future__ import annotations

import sqlite3


def quick_check_rows(conn: sqlite3.Connection) -> list[str]:
    """The lines ``PRAGMA quick_check`` answers: ``["ok"]`` for a sound database."""
    return [r[0] for r in conn.execute("PRAGMA quick_check")]
