"""The administrator's sync page at ``/admin/sync``: hub, outbox, link, windows, last runs;
"sync now" and "export usage logs to a USB stick".

"Sync now" starts ``edgenode sync now`` as its own process: a pull can hold the link
for hours and must never run inside a web worker.  The export is short and local
(seal + copy), so it runs in the request, onto a stick that health's USB list
offers (any other path is refused).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from flask import Blueprint, flash, redirect, render_template, request, url_for

from edgenode.core.errors import EdgenodeError
from edgenode.node.sources.usb import targets as usb_targets
from edgenode.node.web.auth import admin_nav, admin_required
from edgenode.node.web.context import get_db, node

log = logging.getLogger(__name__)
bp = Blueprint("admin_sync", __name__, url_prefix="/admin/sync", template_folder="templates")
STATE_ZH = {"done": "完成", "failed": "失败", "skipped": "跳过", "running": "进行中", "queued": "排队"}
KIND_ZH = {"uplink": "上传统计", "heartbeat": "心跳", "pull": "下载内容", "spool_scan": "卫星接收目录",
           "housekeeping": "维护"}


@bp.route("/")
@admin_required
def page():
    from edgenode.node.sync.status import status
    n = node()
    return render_template("admin/sync.html", st=status(n.cfg, get_db()), usb=usb_targets(n.cfg), kinds=KIND_ZH,
                           states=STATE_ZH)


@bp.route("/now", methods=["POST"])
@admin_required
def now():
    cfg = node().cfg
    subprocess.Popen([sys.executable, "-m", "edgenode", "--data-dir", str(cfg.data_path), "sync", "now"],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, env={**os.environ, "EDGENODE_DATA_DIR": str(cfg.data_path)})
    flash("已开始同步，稍后刷新本页查看结果。", "ok")
    return redirect(url_for(".page"))


@bp.route("/export", methods=["POST"])
@admin_required
def export():
    from edgenode.core.jobproc import call_or_raise
    cfg = node().cfg
    targets = {t["mount"]: t for t in usb_targets(cfg)}
    target = targets.get(request.form.get("target", ""))
    if target is None or not target["writable"]:
        flash("没有找到可写入的U盘，请重新插入后刷新页面。", "error")
        return redirect(url_for(".page"))
    try:
        result = call_or_raise(cfg, "edgenode.node.sync.export:export_to", target["mount"])
    except EdgenodeError as e:
        flash(e.zh, "error")
        return redirect(url_for(".page"))
    os.sync()  # the volunteer pulls the stick out as soon as the page says done
    log.info("usage logs exported to %s", result["path"])
    note = "（正在联网上传，最新的记录下次再导出）" if result.get("outbox_busy") else ""
    flash(f"已写入U盘：{result['batches']} 个统计数据包（{result['events']} 条记录）{note}。请交给县中心。", "ok")
    return redirect(url_for(".page"))


def init_app(app) -> None:
    app.register_blueprint(bp)
    admin_nav(app, "同步", "admin_sync.page", order=50)
