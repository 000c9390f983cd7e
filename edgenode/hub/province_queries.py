"""Province-view SQL: the county hubs enrolled here (``hub_nodes`` of kind 'hub') and what they reported.

Functions take the connection first; read-only.
"""

from __future__ import annotations

import sqlite3


def has_counties(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM hub_nodes WHERE kind = 'hub' AND revoked_at IS NULL LIMIT 1").fetchone() is not None
