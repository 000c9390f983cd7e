"""Per-request access to the database and the node's shared objects.

Connections come from a small per-process pool instead of being opened and
closed per request: closing the last connection to a WAL database
checkpoints and deletes the WAL, and reopening recreates it, which cost
~35 ms per page on the reference machine.  A connection goes back to the pool
only outside a transaction.
"""

from __future__ import annotations

import queue

from flask import current_app, g

from edgenode.node.web.pool_queries import limit_page_cache
from edgenode.core.db import connect

POOL_SIZE = 16
# Each pooled connection keeps its own page cache for the life of the worker;
# SQLite's default (2 MiB) times the pool made worker RSS creep up under load.
# The catalogue's hot pages stay in the OS page cache anyway.
CACHE_KIB = 512


def node():
    return current_app.extensions["edgenode"]


def _pool() -> queue.LifoQueue:
    return current_app.extensions["edgenode_db_pool"]


def get_db():
    if "db" not in g:
        try:
            g.db = _pool().get_nowait()
        except queue.Empty:
            g.db = connect(node().cfg.db_path)
            limit_page_cache(g.db, CACHE_KIB)
    return g.db


def close_db(_exc=None):
    conn = g.pop("db", None)
    if conn is None:
        return
    if conn.in_transaction:  # a view failed mid-write: never hand on an open transaction
        conn.rollback()
    try:
        _pool().put_nowait(conn)
    except queue.Full:
        conn.close()


def init_app(app):
    app.extensions["edgenode_db_pool"] = queue.LifoQueue(maxsize=POOL_SIZE)
    app.teardown_appcontext(close_db)

    @app.context_processor
    def inject():
        from edgenode.protocol.metadata import COLUMNS, KINDS
        return {"COLUMNS": COLUMNS, "KINDS": KINDS, "node_name": node().cfg.node.name}
