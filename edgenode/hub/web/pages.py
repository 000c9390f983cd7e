"""Staff pages: fleet dashboard, node detail, enrolment management, alerts, /metrics."""

from __future__ import annotations

import threading
import time

from flask import (Blueprint, Response, abort, current_app, flash, redirect, render_template, request, send_file,
                   session, url_for)
from markupsafe import Markup

from edgenode.core.errors import EdgenodeError
from edgenode.hub import (alerts, diagnostics as diag, fanout, fleet, heartbeat, ingest, ingest_queries, nodeview, problems,
                          registry)
from edgenode.hub.web.context import cfg, get_db, hub

bp = Blueprint("hub_pages", __name__)

SORTS = {"name", "status", "disk_percent", "cpu_percent", "mem_percent", "uptime", "version",
         "last_heartbeat_at", "outbox_batches", "problems"}
STATUS_ORDER = {"offline": 0, "never": 1, "late": 2, "online": 3, "revoked": 4}


def _sort_key(field: str):
    def key(r):
        v = r.get(field)
        if field == "problems":
            return (min((p["severity"] for p in v), default=99), -len(v))
        if field == "status":
            return STATUS_ORDER[v]
        return (v is None, v if v is not None else 0)
    return key


# The fleet as of about hub.fleet_cache_seconds ago (plus one rebuild), per worker process: the dashboard and
# the fleet table at 2,000 nodes then cost their rendering, not 2,000 rows each (docs/hub.md "Cost").
# Staff notes, the node page and every write read the database itself.
_FLEET: dict[str, tuple[float, list[dict]]] = {}
_FLEET_LOCK = threading.Lock()


def _snapshot_cache(rows: list[dict]) -> dict:
    """A dict that lives as long as this fleet snapshot: what is rendered from it is rendered once."""
    hit = _PER_SNAPSHOT.get(id(rows))
    if hit is None or hit[0] is not rows:
        _PER_SNAPSHOT.clear()  # one snapshot at a time per worker
        hit = _PER_SNAPSHOT[id(rows)] = (rows, {})
    return hit[1]


_PER_SNAPSHOT: dict[int, tuple[list, dict]] = {}


def _renderer(rows: list[dict], name: str, key, **context):
    """A function rendering template ``name`` for one row or entry, once per snapshot and key."""
    done = _snapshot_cache(rows).setdefault(name, {})
    template = current_app.jinja_env.get_template(name)
    context.update(node_url=url_for("hub_pages.node_detail", node_id="NODE")[:-4], channel_zh=fleet.channel_zh)

    def render(item: dict) -> Markup:
        k = key(item)
        html = done.get(k)
        if html is None:
            html = done[k] = Markup(template.render(**context, r=item, e=item))
        return html
    return render


def _fleet_rows(db) -> list[dict]:
    c = cfg()
    ttl = c.hub.fleet_cache_seconds
    if ttl <= 0:
        return fleet.fleet(db, c)
    key = hub().db_path
    hit = _FLEET.get(key)
    if hit is None:
        with _FLEET_LOCK:  # the first page of a worker builds; the others wait for its rows
            hit = _FLEET.get(key)
            if hit is None:
                hit = _FLEET[key] = (time.monotonic(), fleet.fleet(db, c))
    elif time.monotonic() - hit[0] >= ttl and key not in _REBUILDING:
        # Stale: this page shows the old rows and a thread builds the next ones, so no page waits for 2,000 rows.
        _REBUILDING.add(key)
        threading.Thread(target=_rebuild, args=(key, c), daemon=True).start()
    return hit[1]


_REBUILDING: set[str] = set()


def _rebuild(key: str, c) -> None:
    from edgenode.core.db import connect
    try:
        conn = connect(key)
        try:
            _FLEET[key] = (time.monotonic(), fleet.fleet(conn, c))
        finally:
            conn.close()
    finally:
        _REBUILDING.discard(key)


@bp.get("/")
def dashboard():
    """Problems first: what needs doing, most severe first; the fleet table is one click away."""
    db = get_db()
    rows = _fleet_rows(db)
    plist = problems.problem_list(db, cfg(), rows=rows)
    cache = _snapshot_cache(rows)
    if "summary" not in cache:
        cache["summary"] = fleet.summary(rows, fleet.latest_channels(db))
    entry_html = _renderer(rows, "hub/problem_entry.html", lambda e: (e["node_id"], e["kind"], e["subject"]),
                           note_url=url_for("hub_pages.problem_note_form"))
    return render_template("hub/dashboard.html", p=plist, summary=cache["summary"], channel_zh=fleet.channel_zh,
                           entry_html=entry_html)


SNOOZE_CHOICES = [(4, "4 小时"), (24, "1 天"), (72, "3 天"), (168, "7 天")]


@bp.get("/fleet")
def fleet_table():
    """Every node, grouped by township, sortable by query string (no JavaScript)."""
    db = get_db()
    rows = _fleet_rows(db)
    channels = fleet.latest_channels(db)
    q = (request.args.get("q") or "").strip()
    status = request.args.get("status") or ""
    only_problems = request.args.get("problems") == "1"
    shown = [r for r in rows
             if (not q or q in r["name"] or q in r["township"] or r["node_id"].startswith(q))
             and (not status or r["status"] == status) and (not only_problems or r["problems"])]
    sort = request.args.get("sort") if request.args.get("sort") in SORTS else "problems"
    desc = request.args.get("dir") == "desc"
    shown.sort(key=_sort_key(sort), reverse=desc)
    groups: dict[str, list] = {}
    for r in shown:
        groups.setdefault(r["township"] or "（未分乡镇）", []).append(r)
    return render_template("hub/fleet.html", groups=sorted(groups.items()), shown=len(shown), row_html=_renderer(rows, "hub/fleet_row.html", lambda r: r["node_id"]),
                           summary=fleet.summary(rows, channels), q=q, status=status, only_problems=only_problems,
                           sort=sort, desc=desc, channel_zh=fleet.channel_zh, statuses=fleet.STATUS_ZH,
                           tree=fanout.tree(db), egress=fanout.egress_report(db, cfg())[:24])


@bp.get("/problems/note")
def problem_note_form():
    a = request.args
    db = get_db()
    plist = problems.problem_list(db, cfg(), rows=_fleet_rows(db))
    e = next((x for x in plist["open"] + plist["handled"] if x["node_id"] == a.get("node_id")
              and x["kind"] == a.get("kind") and x["subject"] == a.get("subject", "")), None)
    if e is None:
        flash("这个问题现在已经不存在（可能刚刚恢复），无需处理。")
        return redirect(url_for("hub_pages.dashboard"))
    return render_template("hub/problem_note.html", e=e, snooze_choices=SNOOZE_CHOICES)


@bp.post("/problems/note")
def problem_note():
    f = request.form
    hours = f.get("hours", type=float) if f.get("action") == "snooze" else None
    back = url_for("hub_pages.dashboard") + "#problems"
    try:
        r = problems.note(get_db(), cfg(), f.get("node_id", ""), f.get("kind", ""), f.get("subject", ""),
                          action=f.get("action", ""), reason=f.get("reason", ""), by=session.get("staff", ""),
                          hours=hours)
    except EdgenodeError as e:
        flash(e.zh or "操作没有成功。")
        return redirect(back)
    flash(f"已{'确认' if r['action'] == 'ack' else '暂缓'}：{r['name']} · {r['problem']}。")
    return redirect(back)


@bp.post("/problems/reopen")
def problem_reopen():
    f = request.form
    problems.reopen(get_db(), f.get("node_id", ""), f.get("kind", ""), f.get("subject", ""))
    flash("已重新列为待处理。")
    return redirect(url_for("hub_pages.dashboard") + "#problems")


@bp.get("/nodes/<node_id>")
def node_detail(node_id: str):
    db = get_db()
    try:
        node = registry.get_node(db, node_id)
    except EdgenodeError:
        abort(404)
    c = cfg()
    row = fleet.fleet_row(db, c, node_id)
    latest = heartbeat.latest(db, node_id)
    return render_template("hub/node.html", node=node, row=row, latest=latest,
                           facts=nodeview.summary(row, latest, c) if row else None,
                           charts=nodeview.charts_for(db, node_id, c), log=nodeview.log_rows(registry.recent_log(db, node_id, 30)),
                           gaps=ingest.gaps(db, node_id), diag=diag.latest(c, node_id),
                           diag_requested=diag.requested(db, node_id),
                           batches=nodeview.batch_rows(ingest_queries.recent_batches(db, node_id, 20)))


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


@bp.post("/alerts/evaluate")
def alerts_evaluate():
    r = alerts.evaluate(get_db(), cfg())
    _FLEET.pop(hub().db_path, None)  # staff asked for a fresh look
    flash(f"检查完毕：新发现 {len(r['opened'])} 个问题，{len(r['cleared'])} 个问题已恢复。")
    return redirect(url_for("hub_pages.dashboard"))


@bp.get("/metrics")
def metrics():
    return Response(alerts.metrics_text(get_db(), cfg()), mimetype="text/plain; version=0.0.4")
