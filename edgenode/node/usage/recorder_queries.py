"""SQL of the usage writer's connection (:mod:`edgenode.node.usage.recorder`)."""

from __future__ import annotations

import sqlite3


def limit_page_cache(conn: sqlite3.Connection, kib: int) -> None:
    """Cap this connection's page cache at ``kib`` KiB."""
    conn.execute(f"PRAGMA cache_size = -{int(kib)}")
