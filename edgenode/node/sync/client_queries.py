"""Hub client SQL (:mod:`edgenode.node.sync.client`), as functions that take the connection first."""

from __future__ import annotations

import sqlite3


def enrolled_hub_url(conn: sqlite3.Connection) -> str | None:
    """The hub URL recorded at enrolment, or None before enrolment."""
    row = conn.execute("SELECT hub_url FROM sync_enrolment WHERE id = 1").fetchone()
    return row["hub_url"] if row else None
