"""Opening the hub's own database file, ``DATA_DIR/hub.db``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edgenode.db import connect, migrate, quick_check
from edgenode.errors import DatabaseError

SCHEMAS = ["edgenode.hub.schema", "edgenode.hub.tally_schema"]


def hub_db_path(cfg) -> Path:
    return cfg.data_path / "hub.db"


def open_hub(cfg, *, check: bool = False) -> sqlite3.Connection:
    """Open (creating and migrating) the hub database.

    ``synchronous=FULL``: an acknowledged batch must survive a power cut, because the
    node deletes its copy on our 200.  Heartbeat writes switch to NORMAL (see heartbeat.py).
    """
    cfg.data_path.mkdir(parents=True, exist_ok=True)
    path = hub_db_path(cfg)
    conn = connect(path)
    try:
        if check:
            quick_check(conn, path)
        migrate(conn, SCHEMAS)
    except sqlite3.DatabaseError as e:
        conn.close()
        raise DatabaseError(f"{path}: {e}. Restore it from a backup (see docs/hub.md).") from None
    except BaseException:
        conn.close()
        raise
    return conn
