"""Contributions at the county: the nodes' signed upload API and the staff's review queue.

``/api/v1/contrib/*`` is node-facing (signed requests, listed in ``api.NODE_FACING``
and exempt from CSRF); ``/contrib/*`` needs a staff login like every hub page.
"""

from __future__ import annotations

import json

from flask import Blueprint, flash, jsonify, redirect, render_template, request, send_file, url_for

from edgenode.core.errors import EdgenodeError, NotFound
from edgenode.hub import contrib, contrib_review as review
from edgenode.hub.signing import verify_request
from edgenode.hub.web.context import cfg, get_db
from edgenode.protocol.metadata import COLUMNS

api_bp = Blueprint("hub_contrib_api", __name__, url_prefix="/api/v1/contrib")
bp = Blueprint("hub_contrib", __name__, url_prefix="/contrib")
MIME = {"mp4": "video/mp4", "m4a": "audio/mp4", "jpg": "image/jpeg"}


def _signed() -> tuple[dict, bytes]:
    body = request.get_data(cache=False)
    node, _ts = verify_request(get_db(), request.method, request.path, request.headers, body)
    return node, body


def _json(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise contrib.bad("the body is not JSON") from None


@api_bp.post("/offer")
def offer():
    node, body = _signed()
    return jsonify(contrib.offer(get_db(), cfg(), node, _json(body)))


@api_bp.post("/<cid>/chunk")
def chunk(cid: str):
    node, body = _signed()
    return jsonify(contrib.chunk(get_db(), cfg(), node, cid, request.headers.get("X-Edgenode-Offset"), body))


@api_bp.post("/status")
def status():
    node, body = _signed()
    return jsonify(contrib.states(get_db(), node, _json(body)))


@bp.get("/")
def queue():
    return render_template("contrib/queue.html", items=review.listing(get_db()), columns=COLUMNS)


@bp.get("/<node_id>/<cid>/file")
def media(node_id: str, cid: str):
    row = review.get(get_db(), node_id[:64], cid[:64])
    path = contrib.work_path(cfg(), row)
    if row["state"] == "receiving" or not path.is_file():
        raise NotFound("the file has not arrived completely", zh="文件还没有完整收到。")
    return send_file(path, mimetype=MIME.get(row["ext"]), conditional=True)


@bp.post("/<node_id>/<cid>/adopt")
def adopt(node_id: str, cid: str):
    f = request.form
    try:
        review.adopt(get_db(), node_id, cid, title=f.get("title", ""), credit=f.get("credit"),
                     column=f.get("column", "shequ"), campaign=f.get("campaign"))
        flash("已采用。")
    except EdgenodeError as e:
        flash(e.zh)
    return redirect(url_for(".queue"))


@bp.post("/<node_id>/<cid>/decline")
def decline(node_id: str, cid: str):
    try:
        review.decline(get_db(), node_id, cid, request.form.get("reason", ""))
        flash("已标记为未采用。")
    except EdgenodeError as e:
        flash(e.zh)
    return redirect(url_for(".queue"))


@bp.post("/<node_id>/<cid>/forward")
def forward(node_id: str, cid: str):
    from edgenode.hub import contrib_forward
    try:
        contrib_forward.mark(get_db(), node_id, cid)
        flash("将在下次维护时转送上级平台。")
    except EdgenodeError as e:
        flash(e.zh)
    return redirect(url_for(".queue"))


@bp.post("/publish")
def publish():
    try:
        out = review.publish(get_db(), cfg())
        flash(f"已发布 {out['works']} 个作品：{out['channel']} 第 {out['seq']} 期。")
    except EdgenodeError as e:
        flash(e.zh)
    return redirect(url_for(".queue"))


def init_app(app) -> None:
    from edgenode.hub.web.auth import csrf

    csrf.exempt(api_bp)  # signed by node keys, not by a browser session
    app.register_blueprint(api_bp)
    app.register_blueprint(bp)
