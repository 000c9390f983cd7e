"""The tus 1.0.0 server for villagers' uploads: core, creation, termination, expiration.

Mounted at ``/api/v1/contrib/files`` (errors are JSON there, with the Chinese message
the page shows).  Creation is a CSRF-checked POST (the page sends the token in
``X-CSRFToken``); HEAD, PATCH and DELETE act on an upload URL holding 128 random
bits that only its creator has seen, so they are exempt: CSRFProtect would
otherwise read the body as a form before the view lifts the 1 MB request limit.  Why our own ~150 lines rather than a
library: docs/contrib.md ("Why this tus server").
"""

from __future__ import annotations

import base64
import binascii
import io
from email.utils import formatdate

from flask import Blueprint, Response, request, url_for

from edgenode.core.errors import EdgenodeError
from edgenode.node.campaigns import queries as cq
from edgenode.node.contrib import uploads
from edgenode.node.web.auth import csrf
from edgenode.node.web.context import get_db, node

VERSION = "1.0.0"
EXTENSIONS = "creation,termination,expiration"
bp = Blueprint("contrib_tus", __name__, url_prefix="/api/v1/contrib/files")


def parse_metadata(header: str) -> dict:
    """``key base64value,key2 base64value2`` → dict (values decoded as UTF-8)."""
    out = {}
    for pair in filter(None, (p.strip() for p in (header or "").split(","))):
        key, _, value = pair.partition(" ")
        try:
            out[key] = base64.b64decode(value, validate=True).decode("utf-8") if value else ""
        except (binascii.Error, UnicodeDecodeError):
            raise uploads.fail("E_CONTRIB_FIELD", f"Upload-Metadata {key!r} is not base64 UTF-8",
                               "上传信息格式错误，请刷新页面重试。") from None
    return out


def _int_header(name: str) -> int:
    value = request.headers.get(name, "")
    if not value.isdigit():
        raise uploads.fail("E_TUS_HEADER", f"{name} must be a non-negative integer", "上传请求格式错误，请刷新页面重试。")
    return int(value)


def _expires(cfg, uid: str) -> str:
    row = uploads.get(get_db(), uid)
    return formatdate(uploads.expires_at(cfg, row), usegmt=True)


def body_stream(environ: dict, stream):
    """What a PATCH body is read from: under gunicorn, for a body with a Content-Length (what nginx
    passes on), gunicorn's socket itself, so each byte is copied once, into the upload's buffer;
    through ``wsgi.input`` gunicorn and werkzeug copy it several times more, into fresh objects
    (docs/contrib.md "Upload speed": 0.4-0.7 s of the worker's CPU per 512 MB instead of ~0.33 s).  Any other server or body
    (chunked, or a gunicorn whose body reader is not the one checked for) reads through ``stream``."""
    try:
        from gunicorn.http.body import Body, LengthReader
        from gunicorn.http.unreader import SocketUnreader
    except ImportError:
        return stream
    body, sock = environ.get("wsgi.input"), environ.get("gunicorn.socket")
    reader = getattr(body, "reader", None)
    if (type(body) is Body and type(reader) is LengthReader and type(reader.unreader) is SocketUnreader
            and reader.unreader.sock is sock and isinstance(getattr(body, "buf", None), io.BytesIO)):
        return _SocketBody(body)
    return stream


class _SocketBody:
    """A Content-Length body read from gunicorn's socket.  What gunicorn already holds (read with
    the headers) comes first, taken from its own buffers without waiting for more (its ``Body.read``
    would wait for at least 1 KB); then ``recv_into``, counted off the reader's remaining length so
    gunicorn still knows where the body ends on a kept-alive connection."""

    def __init__(self, body):
        self.body, self.reader = body, body.reader

    def readinto(self, b) -> int:
        held = self.reader.unreader.buf.seek(0, io.SEEK_END)
        if self.body.buf.tell():
            data = self.body.read(min(len(b), self.body.buf.tell()))
        elif held and self.reader.length:
            data = self.reader.read(min(len(b), held, self.reader.length))
        else:
            want = min(len(b), self.reader.length)
            if want <= 0:
                return 0
            got = self.reader.unreader.sock.recv_into(b, want)
            self.reader.length -= got
            return got
        b[:len(data)] = data
        return len(data)


@bp.before_request
def check_version():
    if request.method != "OPTIONS" and request.headers.get("Tus-Resumable", VERSION) != VERSION:
        raise EdgenodeError("E_TUS_VERSION", "only tus 1.0.0 is supported", zh="上传程序版本不对，请刷新页面。", status=412)


@bp.after_request
def tus_headers(resp: Response) -> Response:
    resp.headers["Tus-Resumable"] = VERSION
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("", methods=["OPTIONS"])
def options():
    cfg = node().cfg
    return Response(status=204, headers={"Tus-Version": VERSION, "Tus-Extension": EXTENSIONS,
                                         "Tus-Max-Size": str(cfg["contrib.max_file_mb"] * uploads.MB)})


@bp.post("")
def create():
    cfg, db = node().cfg, get_db()
    length = _int_header("Upload-Length")
    meta = parse_metadata(request.headers.get("Upload-Metadata", ""))
    campaigns = {c["id"] for c in cq.list_campaigns(db, current=True)}
    uid = uploads.create(cfg, db, length, meta, campaigns=campaigns)
    return Response(status=201, headers={"Location": url_for(".upload", uid=uid), "Upload-Expires": _expires(cfg, uid)})


@bp.route("/<uid>", methods=["HEAD"], endpoint="upload")
def head(uid: str):
    at, length = uploads.offset(node().cfg, get_db(), uid)
    return Response(status=200, headers={"Upload-Offset": str(at), "Upload-Length": str(length)})


@bp.route("/<uid>", methods=["PATCH"])
@csrf.exempt
def patch(uid: str):
    cfg, db = node().cfg, get_db()
    if request.mimetype != "application/offset+octet-stream":
        raise EdgenodeError("E_TUS_CONTENT_TYPE", "PATCH needs Content-Type application/offset+octet-stream",
                            zh="上传请求格式错误，请刷新页面重试。", status=415)
    at = _int_header("Upload-Offset")
    # This body streams to disk, within the upload's own declared length (checked in append).
    request.max_content_length = cfg["contrib.max_file_mb"] * uploads.MB + 1
    size = uploads.append(cfg, db, uid, at, body_stream(request.environ, request.stream), request.content_length)
    return Response(status=204, headers={"Upload-Offset": str(size), "Upload-Expires": _expires(cfg, uid)})


@bp.route("/<uid>", methods=["DELETE"])
@csrf.exempt
def delete(uid: str):
    uploads.terminate(node().cfg, get_db(), uid)
    return Response(status=204)
