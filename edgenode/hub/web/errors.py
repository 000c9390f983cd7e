"""The hub's error handling: the project's one JSON shape under /api and for /metrics, Chinese
pages for staff.

The hub has no message catalogue, so the Chinese is the fixed per-status text of
``core.errors``; the node's handler (``node/web/errors.py``) localises instead.
"""

from __future__ import annotations

import logging

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from edgenode.core.errors import STATUS_ZH, EdgenodeError, error_payload

log = logging.getLogger(__name__)
JSON_PREFIXES = ("/api/", "/metrics")


def render_error(status: int, code: str, message: str, zh: str):
    if request.path.startswith(JSON_PREFIXES):
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
        body, status = render_error(e.code, f"E_HTTP_{e.code}", e.description or e.name,
                                    STATUS_ZH.get(e.code, e.name))
        resp = app.make_response((body, status))
        for key, value in e.get_response().headers.items():  # Allow on 405, Retry-After
            if key.lower() not in ("content-type", "content-length"):
                resp.headers[key] = value
        return resp

    @app.errorhandler(Exception)
    def crash(e: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(500, "E_INTERNAL", "internal error", STATUS_ZH[500])
