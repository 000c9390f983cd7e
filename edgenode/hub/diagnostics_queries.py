"""Diagnostics request SQL (``hub_diag_requests``): at most one open request per node.

Functions take the connection first.  The bundles themselves are files, not rows
(:mod:`edgenode.hub.diagnostics`).
"""

from __future__ import annotations

import sqlite3


def upsert_request(db: sqlite3.Connection, node_id: str, at: float, by: str) -> None:
    # Asking again only moves the time: the node uploads one bundle either way.
    db.execute("INSERT INTO hub_diag_requests (node_id, requested_at, requested_by) VALUES (?, ?, ?) "
               "ON CONFLICT (node_id) DO UPDATE SET requested_at = excluded.requested_at, "
               "requested_by = excluded.requested_by", (node_id, at, by))


def delete_request(db: sqlite3.Connection, node_id: str) -> None:
    db.execute("DELETE FROM hub_diag_requests WHERE node_id = ?", (node_id,))


def request_for(db: sqlite3.Connection, node_id: str) -> sqlite3.Row | None:
    """(requested_at, requested_by) of a node's open request, None when there is none."""
    return db.execute("SELECT requested_at, requested_by FROM hub_diag_requests WHERE node_id = ?",
                      (node_id,)).fetchone()
