"""The Flask app factory for the node's portal."""

from __future__ import annotations

import logging

from flask import Flask

from edgenode.config import Config, load_config
from edgenode.db import open_main
from edgenode.keyfile import read_or_create
from edgenode.store import open_store

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

    from edgenode.web import admin, auth, beacons, context, errors, i18n, media, portal

    context.init_app(app)
    errors.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)  # CSRFProtect for every form, login at /admin/login
    app.register_blueprint(portal.bp)
    app.register_blueprint(media.bp)
    app.register_blueprint(admin.bp)
    beacons.init_app(app)  # terminal cookie, page views, player beacons
    __import__("edgenode.web.health", fromlist=["init_app"]).init_app(app)  # /api/health, /metrics, /admin/health
    __import__("edgenode.web.activities", fromlist=["init_app"]).init_app(app)  # activities, campaigns, feedback
    __import__("edgenode.web.admin_activities", fromlist=["init_app"]).init_app(app)  # /admin/activities
    __import__("edgenode.web.admin_imports", fromlist=["init_app"]).init_app(app)  # /admin/imports
    __import__("edgenode.web.admin_storage", fromlist=["init_app"]).init_app(app)  # /admin/storage, POST /request/<id>
    __import__("edgenode.web.admin_sync", fromlist=["init_app"]).init_app(app)  # /admin/sync
    return app
