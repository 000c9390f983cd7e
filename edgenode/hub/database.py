"""Opening the hub's own database file, ``DATA_DIR/hub.db``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edgenode.core.db import open_migrated
from edgenode.hub import contrib_schema, fanout_schema, problems_schema, rollout_schema, schema, tally_schema

SCHEMAS = [schema, tally_schema, problems_schema, contrib_schema, rollout_schema, fanout_schema]


def hub_db_path(cfg) -> Path:
    return cfg.data_path / "hub.db"


def open_hub(cfg, *, check: bool = False) -> sqlite3.Connection:
    """Open (creating and migrating) the hub database.

    ``synchronous=FULL``: an acknowledged batch must survive a power cut, because the
    node deletes its copy on our 200.  Heartbeat writes switch to NORMAL (see heartbeat.py).
    """
    return open_migrated(hub_db_path(cfg), SCHEMAS, check=check, restore_doc="docs/hub.md",
                         busy_ms=cfg["db.busy_timeout_ms"])
