"""The province view: a provincial hub's counties, shown as a county hub shows its nodes (docs/hub.md)."""

from __future__ import annotations

import sqlite3

from edgenode.hub import province_queries as q


def has_counties(conn: sqlite3.Connection) -> bool:
    return q.has_counties(conn)
