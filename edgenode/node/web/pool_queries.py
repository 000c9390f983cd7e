"""SQL run on the web workers' pooled connections."""

from __future__ import annotations

import sqlite3


def limit_page_cache(conn: sqlite3.Connection, kib: int) -> None:
    """Cap this connection's own page cache (SQLite reads a negative size as KiB, not pages)."""
    conn.execute(f"PRAGMA cache_size = -{int(kib)}")
