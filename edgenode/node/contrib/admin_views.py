"""``/admin/contrib``: the point administrator reviews villagers' uploads (play, approve, reject with
reason) and sees each one's state on its way to the county."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, send_file, url_for

from edgenode.core.errors import EdgenodeError, NotFound
from edgenode.node.contrib import moderation
from edgenode.node.contrib.process import ready_file
from edgenode.node.contrib import uploads
from edgenode.node.web.auth import admin_nav, admin_required
from edgenode.node.web.context import get_db, node

bp = Blueprint("admin_contrib", __name__, url_prefix="/admin/contrib", template_folder="templates")
MIME = {"mp4": "video/mp4", "m4a": "audio/mp4", "jpg": "image/jpeg"}


@bp.get("/")
@admin_required
def page():
    return render_template("contrib/admin.html", items=moderation.listing(get_db()))


@bp.get("/<cid>/file")
@admin_required
def media(cid: str):
    row = moderation.get(get_db(), cid)
    poster = request.args.get("poster") == "1"
    path = (uploads.area(node().cfg, "ready") / f"{cid}.poster.jpg") if poster else ready_file(node().cfg, row)
    if not row["ext"] or not path.is_file():
        raise NotFound("the file is not on this node (uploaded, rejected or not processed)", zh="文件不在本服务点。")
    return send_file(path, mimetype="image/jpeg" if poster else MIME.get(row["ext"]), conditional=True)


@bp.post("/<cid>/approve")
@admin_required
def approve(cid: str):
    try:
        moderation.approve(node().cfg, get_db(), cid)
        flash("已批准：下次联网时送往县中心。", "ok")
    except EdgenodeError as e:
        flash(e.zh, "error")
    return redirect(url_for(".page"))


@bp.post("/<cid>/reject")
@admin_required
def reject(cid: str):
    try:
        moderation.reject(node().cfg, get_db(), cid, request.form.get("reason", ""))
        flash("已退回，文件已删除。", "ok")
    except EdgenodeError as e:
        flash(e.zh, "error")
    return redirect(url_for(".page"))


def init_app(app) -> None:
    app.register_blueprint(bp)
    admin_nav(app, "群众作品", "admin_contrib.page", order=45)
