"""The administrator's storage page at ``/admin/storage``: space, subscriptions, pins, requests, transcoding.

Every action is a plain function of ``edgenode.node.storage`` that the CLI also calls.
``init_app`` also registers the portal's 可预约下载 blueprint (``storage_request``).
"""

from __future__ import annotations

import itertools

from flask import Blueprint, flash, redirect, render_template, request, url_for

from edgenode.core.errors import EdgenodeError
from edgenode.node.storage import eviction, quota, requests, state, subscriptions, transcode
from edgenode.node.storage import views as storage_request
from edgenode.node.web.auth import admin_nav, admin_required
from edgenode.node.web.context import get_db, node

bp = Blueprint("admin_storage", __name__, url_prefix="/admin/storage", template_folder="templates")

REASONS = {"unreferenced": "已撤下", "original": "转换前原件", "expired": "已过期", "never": "不再订阅",
           "lru": "久未播放"}


def _first(gen, n: int) -> list:
    """The next ``n`` victims without ordering objects for the whole catalogue."""
    try:
        return list(itertools.islice(gen, n))
    finally:
        gen.close()


@bp.route("/")
@admin_required
def page():
    db, n = get_db(), node()
    state.reconcile(db)
    return render_template("admin/storage.html", s=quota.status(db, n.store, n.cfg),
                           subs=subscriptions.listing(db, n.cfg), modes=subscriptions.MODE_ZH,
                           reqs=requests.listing(db, include_fulfilled=True, limit=100),
                           t=transcode.status(db, n.cfg), next_victims=_first(eviction.iter_candidates(db, n.cfg), 10),
                           reasons=REASONS)


@bp.route("/subscribe", methods=["POST"])
@admin_required
def subscribe():
    channel, mode = request.form.get("channel", "")[:64], request.form.get("mode", "")
    try:
        subscriptions.set_mode(get_db(), channel, mode)
    except EdgenodeError as e:
        flash(e.zh, "error")
    else:
        flash(f"频道 {channel} 已设为：{subscriptions.MODE_ZH[mode]}", "ok")
    return redirect(url_for(".page"))


@bp.route("/pin", methods=["POST"])
@admin_required
def pin():
    rid = request.form.get("resource_id", "").strip()[:128]
    pinned = request.form.get("action") != "unpin"
    try:
        state.set_pin(get_db(), rid, pinned)
    except EdgenodeError as e:
        flash(e.zh, "error")
    else:
        flash(f"{rid}：{'已固定保存' if pinned else '已取消固定'}", "ok")
    return redirect(url_for(".page"))


@bp.route("/evict", methods=["POST"])
@admin_required
def evict():
    n = node()
    try:
        p = quota.evict_now(get_db(), n.store, n.cfg, 0)
    except EdgenodeError as e:
        flash(e.zh, "error")
    else:
        flash(f"已腾出 {p.freeing / 1024 ** 2:.1f} MB（{len(p.victims)} 个文件）" if p.victims else
              "空间充足，无需删除。", "ok")
    return redirect(url_for(".page"))


def init_app(app) -> None:
    app.register_blueprint(bp)
    storage_request.init_app(app)
    admin_nav(app, "存储", "admin_storage.page", order=40)
