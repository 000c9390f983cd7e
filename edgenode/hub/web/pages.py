"""Staff pages: fleet dashboard, node detail, enrolment management, alerts, /metrics."""

from __future__ import annotations

import time

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, send_file, session, url_for

from edgenode.core.errors import EdgenodeError
from edgenode.hub import alerts, charts, diagnostics as diag, fanout, fleet, heartbeat, ingest, ingest_queries, registry
from edgenode.hub.web.context import cfg, get_db

bp = Blueprint("hub_pages", __name__)

SORTS = {"name", "township", "status", "disk_percent", "cpu_percent", "mem_percent", "uptime", "version",
         "last_heartbeat_at", "outbox_batches", "problems"}
STATUS_ORDER = {"offline": 0, "never": 1, "late": 2, "online": 3, "revoked": 4}


def _sort_key(field: str):
    def key(r):
        v = r.get(field)
        if field == "problems":
            return -len(v)
        if field == "status":
            return STATUS_ORDER[v]
        return (v is None, v if v is not None else 0)
    return key


@bp.get("/")
def dashboard():
    db = get_db()
    rows = fleet.fleet(db, cfg())
    channels = fleet.latest_channels(db)
    summary = fleet.summary(rows, channels)
    q = (request.args.get("q") or "").strip()
    status = request.args.get("status") or ""
    only_problems = request.args.get("problems") == "1"
    shown = [r for r in rows
             if (not q or q in r["name"] or q in r["township"] or r["node_id"].startswith(q))
             and (not status or r["status"] == status) and (not only_problems or r["problems"])]
    sort = request.args.get("sort") if request.args.get("sort") in SORTS else "problems"
    desc = request.args.get("dir") == "desc"
    shown.sort(key=_sort_key(sort), reverse=desc)
    return render_template("hub/dashboard.html", rows=shown, summary=summary, channels=channels, q=q,
                           status=status, only_problems=only_problems, sort=sort, desc=desc,
                           alerts=alerts.open_alerts(db)[:50], now=time.time(), tree=fanout.tree(db),
                           egress=fanout.egress_report(db, cfg())[:24])


@bp.get("/nodes/<node_id>")
def node_detail(node_id: str):
    db = get_db()
    try:
        node = registry.get_node(db, node_id)
    except EdgenodeError:
        abort(404)
    row = next((r for r in fleet.fleet(db, cfg()) if r["node_id"] == node_id), None)
    hist = heartbeat.history(db, node_id, cfg().hub.heartbeat_history)
    disk = charts.line_chart([(h["received_at"], (h.get("disk") or {}).get("percent")) for h in hist],
                             "磁盘使用率", y_max=100, unit="%")
    beats = charts.line_chart([(b["received_at"], (b["received_at"] - a["received_at"]) / 3600)
                               for a, b in zip(hist, hist[1:])], "心跳间隔", unit="小时")
    from edgenode.hub import stats
    days = list(reversed(stats.table(db, "day", {"node_id": node_id})))
    days.sort(key=lambda d: d["day"])
    usage = charts.bar_chart([(d["day"][5:], d["visits"]) for d in days[-30:]], "近30天服务人次", unit="人次")
    latest = heartbeat.latest(db, node_id)
    return render_template("hub/node.html", node=node, row=row, disk_chart=disk, beat_chart=beats,
                           usage_chart=usage, log=registry.recent_log(db, node_id, 30), gaps=ingest.gaps(db, node_id),
                           alerts=alerts.open_alerts(db, node_id), latest=latest, diag=diag.latest(cfg(), node_id),
                           diag_requested=diag.requested(db, node_id),
                           batches=ingest_queries.recent_batches(db, node_id, 20))


@bp.get("/nodes/<node_id>/diagnostics.tar.gz")
def node_diagnostics(node_id: str):
    if not registry.NODE_ID.match(node_id):
        abort(404)
    info = diag.latest(cfg(), node_id)
    if info is None:
        abort(404)
    return send_file(info["path"], mimetype="application/gzip", as_attachment=True,
                     download_name=f"diagnostics-{node_id[:8]}.tar.gz")


@bp.post("/nodes/<node_id>/diagnostics/request")
def node_diagnostics_request(node_id: str):
    if not registry.NODE_ID.match(node_id):
        abort(404)
    db = get_db()
    if registry.get_node(db, node_id).get("revoked_at"):  # unknown: E_NODE_UNKNOWN, a 404
        flash("这个节点已注销，不能再请求诊断包。")
        return redirect(url_for("hub_pages.node_detail", node_id=node_id))
    diag.request_bundle(db, node_id, by=session.get("staff", ""))
    flash("已请求诊断包：服务点下次发心跳时会上传（通常在15分钟内，断网时等到下次联网）。")
    return redirect(url_for("hub_pages.node_detail", node_id=node_id))


@bp.post("/nodes/<node_id>/edit")
def node_edit(node_id: str):
    name = request.form.get("name")
    township = request.form.get("township")
    registry.rename(get_db(), node_id, name=name if name else None, township=township)
    flash("已保存。")
    return redirect(url_for("hub_pages.node_detail", node_id=node_id))


@bp.post("/nodes/<node_id>/revoke")
def node_revoke(node_id: str):
    if request.form.get("confirm") != node_id[:6]:
        flash("请输入节点编号的前6位以确认注销。")
        return redirect(url_for("hub_pages.node_detail", node_id=node_id))
    registry.revoke(get_db(), node_id)
    flash("节点已注销：之后它的所有上报都会被拒绝。")
    return redirect(url_for("hub_pages.node_detail", node_id=node_id))


@bp.route("/enrol", methods=["GET", "POST"])
def enrol():
    db = get_db()
    code = None
    if request.method == "POST":
        code = registry.new_code(db, township=(request.form.get("township") or "")[:100],
                                 days=cfg().hub.enroll_code_days)
    return render_template("hub/enrol.html", code=code, codes=registry.list_codes(db)[:100],
                           hub_url=request.host_url.rstrip("/"))


@bp.post("/enrol/revoke")
def enrol_revoke():
    n = registry.revoke_code(get_db(), request.form.get("hint", ""))
    flash(f"已作废 {n} 个注册码。")
    return redirect(url_for("hub_pages.enrol"))


@bp.post("/alerts/<int:alert_id>/ack")
def alert_ack(alert_id: int):
    alerts.acknowledge(get_db(), alert_id)
    return redirect(url_for("hub_pages.dashboard"))


@bp.post("/alerts/evaluate")
def alerts_evaluate():
    r = alerts.evaluate(get_db(), cfg())
    flash(f"新告警 {len(r['opened'])} 条，解除 {len(r['cleared'])} 条。")
    return redirect(url_for("hub_pages.dashboard"))


@bp.get("/metrics")
def metrics():
    return Response(alerts.metrics_text(get_db(), cfg()), mimetype="text/plain; version=0.0.4")
