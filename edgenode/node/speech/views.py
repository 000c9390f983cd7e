"""朗读 on the portal: ``/speech/<resource>/<part>.ogg`` and the templates' ``speech_url``.

The file is found from the resource's current title and description (voice.py
names files by what they say), so nothing from the URL but a resource id and
one of two fixed parts ever reaches the file system: nothing outside
DATA_DIR/speech can be served.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g, send_file, url_for

from edgenode.node.catalog import queries as q
from edgenode.node.speech import voice
from edgenode.node.web.context import get_db, node

bp = Blueprint("speech", __name__)
PARTS = ("title", "full")


def _file(res: dict, part: str):
    path = voice.path_for(voice.speech_dir(node().cfg), voice.texts_of(res["title"], res["description"])[part])
    return path if path.is_file() else None


@bp.route("/speech/<resource_id>/<part>.ogg")
def audio(resource_id: str, part: str):
    if part not in PARTS:
        abort(404)
    res = q.get(get_db(), resource_id)  # 404 unless visible
    path = _file(res, part)
    if path is None:
        abort(404)
    resp = send_file(path, mimetype="audio/ogg", conditional=True, max_age=86400)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


MEMO_SIZE = 8192


def request_stamp() -> int:
    """voice.stamp, read once per request: the page cache's key and every card's 朗读 link ask for it."""
    stamp = g.get("_speech_stamp")
    if stamp is None:
        stamp = g._speech_stamp = voice.stamp(node().cfg)
    return stamp


def _made(res: dict, part: str) -> bool:
    """Whether the file exists, remembered: a page of cards asked the disk (and hashed the text)
    once per card per request.  A "no" is asked again once voice.made() has made files (its
    stamp moved); files are not removed while their resource is shown."""
    stamp = request_stamp()
    memo = current_app.extensions.setdefault("speech_made", {})
    key = (res["title"], res["description"], part)
    hit = memo.get(key)
    if hit is not None and (hit[1] or hit[0] == stamp):
        return hit[1]
    made = _file(res, part) is not None
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[key] = (stamp, made)
    return made


def speech_url(res: dict, part: str = "title") -> str | None:
    """The speech file's URL for a template, or None while it is not made yet."""
    if part not in PARTS or not res.get("id") or not _made(res, part):
        return None
    return url_for("speech.audio", resource_id=res["id"], part=part)


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["speech_url"] = speech_url
