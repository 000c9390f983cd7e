"""The Flask app factory for the county hub (``edgenode hub serve``, gunicorn ``edgenode.hub.wsgi:app``)."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from edgenode.core.config import Config, load_config
from edgenode.hub.database import open_hub
from edgenode.core.keyfile import read_or_create


class Hub:
    """What every hub request needs, kept in ``app.extensions['edgenode_hub']``."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        # Config.__getattr__ builds a section object per access; the hot ingest path reads
        # several [hub] settings per request, so keep the section once.
        self.settings = cfg.hub
        self.db_path = str(cfg.data_path / "hub.db")  # pathlib per request showed in the profile


def hub_secret_key(cfg: Config) -> str:
    if cfg.hub.secret_key:
        return cfg.hub.secret_key
    return read_or_create(cfg.data_path / "hub_secret_key", replace_damaged=True)  # loss = staff sign in again


def create_hub_app(cfg: Config | None = None, test_config: dict | None = None) -> Flask:
    if cfg is None:
        cfg = load_config(overrides=test_config)
    elif test_config:
        cfg = cfg.replace(**test_config)
    open_hub(cfg, check=True).close()  # integrity + migrations once per process

    # No static folder: every URL but the node-facing API needs a login, and the
    # pages carry their small CSS inline.
    app = Flask(__name__, template_folder="templates", static_folder=None)
    app.config.update(
        SECRET_KEY=hub_secret_key(cfg),
        SESSION_COOKIE_NAME="edgenode_hub",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        MAX_CONTENT_LENGTH=cfg.hub.max_batch_mb * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the 8-hour session
    )
    app.json.ensure_ascii = False
    app.extensions["edgenode_hub"] = Hub(cfg)

    from edgenode.hub.web import api, context, errors, pages, stats_pages, auth

    context.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(stats_pages.bp)
    from edgenode.hub.web import tally_pages  # votes, requests, feedback
    app.register_blueprint(tally_pages.bp)
    from edgenode.hub.web import staff_pages  # the audit log (administrators only)
    app.register_blueprint(staff_pages.bp)
    from edgenode.hub.web import province_pages  # a provincial hub's counties
    app.register_blueprint(province_pages.bp)
    from edgenode.hub.web import province_rollout_pages  # a province's rollout to its counties
    app.register_blueprint(province_rollout_pages.bp)
    from edgenode.hub.web import contrib_pages  # villagers' works: the nodes' uploads, the review queue
    contrib_pages.init_app(app)
    from edgenode.hub.web import rollout_pages  # software rollouts (docs/updates.md)
    app.register_blueprint(rollout_pages.bp)
    return app
