"""SQL on the hub database as a whole, rather than on one concept's tables.

Functions take the connection first.  Each concept's own statements live in its
``*_queries`` module (``registry_queries``, ``ingest_queries``, ...).
"""

from __future__ import annotations

import sqlite3


def checkpoint_wal(db: sqlite3.Connection) -> None:
    # PASSIVE never waits for readers or writers: housekeeping must not stall ingest.
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
