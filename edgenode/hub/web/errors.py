"""The hub's error handler: one JSON shape under /api, Chinese pages for staff."""

from __future__ import annotations

import logging

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from edgenode.errors import EdgenodeError
from edgenode.web.errors import ZH, error_payload

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/metrics"


def render_error(status: int, code: str, message: str, zh: str):
    if _wants_json():
        return jsonify(error_payload(code, message, zh)), status
    return render_template("hub/error.html", status=status, message=zh), status


def init_app(app):
    @app.errorhandler(EdgenodeError)
    def domain_error(e: EdgenodeError):
        log.info("%s %s -> %s", request.method, request.path, e)
        return render_error(e.status, e.code, e.message, e.zh)

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if e.code is None or e.code < 400:
            return e
        return render_error(e.code, f"E_HTTP_{e.code}", e.description or e.name, ZH.get(e.code, e.name))

    @app.errorhandler(Exception)
    def crash(e: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(500, "E_INTERNAL", "internal error", ZH[500])
