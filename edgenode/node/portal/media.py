"""Serving content-addressed media.

URLs name the blob's hash (``/media/<sha256>.<ext>``), so responses are
immutable and cacheable for a year.  Only blobs that a visible resource
references are served, and the path is derived from the validated hash, never
from the URL's text, so nothing outside the store is reachable.

Three ways the bytes leave the box (docs/serving.md):

* production, shipped nginx site: nginx serves ``/media/…`` itself from the
  store after asking ``/_auth/media/<name>`` here (``auth_request``; the yes/no
  is cached by nginx for a few seconds, so a player's many range requests
  cost Python one check);
* ``web.accel_redirect`` (nginx passing ``/media/`` to us): Python only
  authorises and answers ``X-Accel-Redirect`` to nginx's internal ``/_store/``;
* built-in: Flask's ``send_file(conditional=True)`` answers ranges (206/416)
  and conditional requests (304).
"""

from __future__ import annotations

import os

from flask import Blueprint, Response, abort, request, send_file
from werkzeug.http import parse_range_header

from edgenode.node.catalog import queries as q
from edgenode.node.catalog.media import MIME
from edgenode.core.store import SHA_RE
from edgenode.node.web.context import get_db, node

bp = Blueprint("media", __name__)

YEAR = 365 * 24 * 3600
IMMUTABLE = f"public, max-age={YEAR}, immutable"


def _servable(sha256: str) -> bool:
    return q.blob_servable(get_db(), sha256)


def _checked(name: str):
    """(sha256, ext, path) for a servable blob, else None."""
    sha256, _, ext = name.partition(".")
    if not SHA_RE.match(sha256) or (ext and ext not in MIME) or not _servable(sha256):
        return None
    store = node().store
    path = store.path_for(sha256)
    # A blob must be a regular file really inside the store: a planted symlink is refused.
    root = os.path.realpath(store.root)
    if path.is_symlink() or not path.is_file() or os.path.commonpath([os.path.realpath(path), root]) != root:
        return None
    return sha256, ext, path


@bp.route("/_auth/media/<name>")
def authorise(name: str):
    """nginx's auth_request: 204 when the blob may be served, 403 when not (nginx shows a 404)."""
    return Response(status=204 if _checked(name) else 403)


@bp.route("/media/<name>")
def blob(name: str):
    checked = _checked(name)
    if checked is None:
        abort(404)
    sha256, ext, path = checked
    store = node().store
    mimetype = MIME.get(ext, "application/octet-stream")
    if node().cfg.web.accel_redirect:
        # nginx takes Content-Type and Cache-Control from this answer and does
        # the rest (ranges, validators, sendfile) from its internal location.
        resp = Response(status=200, mimetype=mimetype)
        resp.headers["X-Accel-Redirect"] = "/_store/" + store.relpath(sha256)
        resp.headers["Cache-Control"] = IMMUTABLE
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp
    rng = parse_range_header(request.headers.get("Range"))
    if rng is not None and len(rng.ranges) > 1:
        # Werkzeug answers only single ranges; the RFC allows ignoring the
        # header, so several ranges get the whole file with 200.
        request.environ.pop("HTTP_RANGE", None)
    resp = send_file(path, mimetype=mimetype, conditional=True, etag=sha256, max_age=YEAR)
    resp.headers["Cache-Control"] = IMMUTABLE
    resp.headers["Accept-Ranges"] = "bytes"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp
