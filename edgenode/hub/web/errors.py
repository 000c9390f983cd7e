"""The hub's error handling: the node's one handler with the hub's template and wording.

JSON (the project's one error shape) under /api and for /metrics; Chinese pages for staff.
"""

from __future__ import annotations

from edgenode.web import errors


def init_app(app):
    errors.init_app(app, template="hub/error.html", json_prefixes=("/api/", "/metrics"),
                    localize=errors.fixed_chinese)
