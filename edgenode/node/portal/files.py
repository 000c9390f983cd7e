"""A resource's file under its own title: ``/r/<id>/file/<title>.<ext>``.

Browsers name a file after the last part of its URL (or Content-Disposition):
under ``/media/<sha256>.pdf`` Chrome's PDF viewer showed the hash as the
document's name, and its download button saved it so.  Here the URL ends with
the title and the right extension, and Content-Disposition says the same
(RFC 6266 ``filename*``); the bytes still come from the store by the
resource's hash (the name in the URL is never used to find anything), sent
by nginx through media.blob's X-Accel-Redirect.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, abort

from edgenode.node.catalog import queries as q
from edgenode.node.portal import media
from edgenode.node.web.context import get_db

bp = Blueprint("files", __name__)
_UNSAFE = str.maketrans({c: "-" for c in '/\\:*?"<>|\r\n\t'})


def file_name(res: dict) -> str:
    """The title as a file name, with the file's extension."""
    base = (res["title"] or res["id"]).translate(_UNSAFE).strip(" .")[:80] or res["id"]
    return f"{base}.{res['ext']}" if res["ext"] else base


@bp.route("/r/<resource_id>/file/<path:name>")
def named(resource_id: str, name: str):
    res = q.get(get_db(), resource_id)  # 404 unless visible
    resp = media.blob(f"{res['sha256']}.{res['ext']}" if res["ext"] else res["sha256"])
    if resp.status_code >= 400:
        abort(resp.status_code)
    fname = file_name(res)
    # Old browsers read only filename=: the id when the title has no ASCII letters or digits.
    stem = fname.rsplit(".", 1)[0].encode("ascii", "ignore").decode().strip(" .-")
    ascii_name = fname.encode("ascii", "ignore").decode() if any(c.isalnum() for c in stem) else file_name(
        {"title": res["id"], "id": res["id"], "ext": res["ext"]})
    resp.headers["Content-Disposition"] = (f'inline; filename="{ascii_name}"; '
                                           f"filename*=UTF-8''{quote(fname, safe='')}")
    return resp


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["file_name"] = file_name
