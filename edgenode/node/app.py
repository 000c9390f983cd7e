"""The Flask app factory for the node's portal."""

from __future__ import annotations

import logging

from flask import Flask

from edgenode.core import registry
from edgenode.core.config import Config, load_config
from edgenode.core.db import open_main
from edgenode.core.keyfile import read_or_create
from edgenode.core.store import open_store

log = logging.getLogger(__name__)


class Node:
    """What every request needs, kept in ``app.extensions['edgenode']``."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.store = open_store(cfg)


def secret_key(cfg: Config) -> str:
    if cfg.web.secret_key:
        return cfg.web.secret_key
    # Losing it only signs the administrator out, so a damaged file is replaced rather than refused.
    return read_or_create(cfg.data_path / "secret_key", replace_damaged=True)


def create_app(cfg: Config | None = None, test_config: dict | None = None) -> Flask:
    if cfg is None:
        cfg = load_config(overrides=test_config)
    elif test_config:
        cfg = cfg.replace(**test_config)
    # Start-up checks once per process: integrity + migrations.  A broken
    # database stops the process here with a clear message, not per request.
    open_main(cfg, check=True).close()

    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.update(
        SECRET_KEY=secret_key(cfg),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False
    app.extensions["edgenode"] = Node(cfg)

    from edgenode.node.web import auth, context, errors, hotpath, i18n

    context.init_app(app)
    hotpath.init_app(app)
    errors.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)  # CSRFProtect for every form, login at /admin/login
    for ref in registry.refs("web"):  # each area's blueprints, bottom to top (node/areas.py)
        registry.resolve(ref)(app)
    return app
