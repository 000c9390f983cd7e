"""One error handler: Chinese HTML pages for people, one JSON shape for /api."""

from __future__ import annotations

import logging

from flask import jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from edgenode.core.errors import STATUS_ZH as ZH, EdgenodeError, error_payload

log = logging.getLogger(__name__)

# English message ids; the Chinese lives in the zh_Hans_CN catalogue.
MESSAGES = {
    400: _l("Something is wrong with that request"), 401: _l("Please sign in first"),
    403: _l("You are not allowed to do that"), 404: _l("This page could not be found"),
    405: _l("That action is not supported here"), 413: _l("What you sent is too large"),
    416: _l("The requested range is not valid"), 429: _l("Too many attempts; please try again later"),
    500: _l("Something went wrong on the server"),
}


def localized(status: int, default: str) -> str:
    return str(MESSAGES[status]) if status in MESSAGES else default


def render_error(status: int, code: str, message: str, zh: str):
    if request.path.startswith("/api/"):
        return jsonify(error_payload(code, message, zh)), status
    return render_template("error.html", status=status, message=zh), status


def init_app(app):
    """Register the handlers: JSON under /api/, Chinese pages everywhere else."""

    @app.errorhandler(EdgenodeError)
    def domain_error(e: EdgenodeError):
        log.info("%s %s -> %s", request.method, request.path, e)
        return render_error(e.status, e.code, e.message, e.zh)

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if e.code is None or e.code < 400:
            return e
        body, status = render_error(e.code, f"E_HTTP_{e.code}", e.description or e.name, localized(e.code, e.name))
        resp = app.make_response((body, status))
        # Keep the protocol headers Werkzeug attaches (Content-Range on 416, Allow on 405).
        for key, value in e.get_response().headers.items():
            if key.lower() not in ("content-type", "content-length"):
                resp.headers[key] = value
        return resp

    @app.errorhandler(Exception)
    def crash(e: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(500, "E_INTERNAL", "internal error", localized(500, ZH[500]))
