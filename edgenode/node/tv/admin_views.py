"""/admin/tv: the point administrator's screening schedule (展播): playlists, time slots, the loop playlist.

Every view is ``admin_required``; every POST carries the app-wide CSRF token.  The same actions are
``edgenode tv`` commands (cli.py).
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from edgenode.core.errors import EdgenodeError
from edgenode.node.tv import screenings
from edgenode.node.web.auth import admin_nav, admin_required
from edgenode.node.web.context import get_db, node

bp = Blueprint("admin_tv", __name__, url_prefix="/admin/tv", template_folder="templates")


def _page(error: str | None = None, status: int = 200):
    db = get_db()
    return render_template("tv/admin.html", error=error, now=screenings.now_playing(db, screenings.clock(node().cfg)),
                           **screenings.overview(db)), status


def _do(action, done: str):
    try:
        action()
    except EdgenodeError as e:
        return _page(e.zh, e.status)
    flash(done)
    return redirect(url_for("admin_tv.index"), 303)


@bp.get("/")
@admin_required
def index():
    return _page()


@bp.post("/playlist")
@admin_required
def playlist():
    f = request.form
    items = (f.get("items") or "")[:20000].split()
    return _do(lambda: screenings.set_playlist(get_db(), (f.get("id") or "").strip(), f.get("title") or "", items),
               "节目单已保存")


@bp.post("/playlist/<pid>/delete")
@admin_required
def delete_playlist(pid: str):
    return _do(lambda: screenings.remove_playlist(get_db(), pid), "节目单已删除")


@bp.post("/slot")
@admin_required
def slot():
    f = request.form
    days = "".join(f.getlist("days")) or "1234567"
    return _do(lambda: screenings.add_slot(get_db(), f.get("start") or "", f.get("end") or "",
                                           f.get("playlist") or "", days), "展播时段已添加")


@bp.post("/slot/<int:num>/delete")
@admin_required
def delete_slot(num: int):
    return _do(lambda: screenings.remove_slot(get_db(), num), "展播时段已删除")


@bp.post("/loop")
@admin_required
def loop():
    return _do(lambda: screenings.set_loop(get_db(), request.form.get("playlist") or None), "空闲时循环播放的节目单已设置")


def init_app(app) -> None:
    app.register_blueprint(bp)
    admin_nav(app, "电视展播", "admin_tv.index", order=60)
