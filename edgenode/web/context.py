"""Per-request access to the database and the node's shared objects."""

from __future__ import annotations

from flask import current_app, g

from edgenode.db import connect


def node():
    return current_app.extensions["edgenode"]


def get_db():
    if "db" not in g:
        g.db = connect(node().cfg.db_path)
    return g.db


def close_db(_exc=None):
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def init_app(app):
    app.teardown_appcontext(close_db)

    @app.context_processor
    def inject():
        from edgenode.catalog.model import COLUMNS, KINDS
        return {"COLUMNS": COLUMNS, "KINDS": KINDS, "node_name": node().cfg.node.name}
