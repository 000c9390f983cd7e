"""The province view: a provincial hub's counties, shown as a county hub shows its nodes
(docs/hub.md, "The province view"): problems first, then totals per county.

A county hub is enrolled here with kind ``hub`` and reports hourly (hub/tiers.py); each
report also carries its fleet summary (:func:`fleet_brief`), so the province sees how
many of a county's nodes are offline without seeing the nodes' heartbeats.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import date, timedelta

from edgenode.hub import fleet as fleet_mod, problems_queries, province_queries as q
from edgenode.hub.days import local_day

KIND_ZH = {"offline": "离线", "late": "迟报", "never": "从未上报", "conflict": "数据冲突", "nodes": "服务点离线多"}
SEVERITY = {k: i for i, k in enumerate(KIND_ZH)}
ACTION_ZH = {
    "offline": "电话联系县级支中心：请检查县平台服务器是否开机、能否连上省平台。",
    "late": "电话询问县级支中心，县平台每小时上报一次，可能是网络中断。",
    "never": "请县级支中心执行 “上级平台注册” 后的首次上报，并检查省平台地址。",
    "conflict": "同一编号的汇总报告内容不同：请县级支中心联系技术支持。",
    "nodes": "请县级支中心查看“待处理的问题”，逐个联系离线的服务点。",
}
FLEET_KEYS = ("nodes", "online", "late", "offline", "never", "problem_nodes")


def has_counties(conn: sqlite3.Connection) -> bool:
    return q.has_counties(conn)


def fleet_brief(conn: sqlite3.Connection, cfg, *, now: float | None = None) -> dict:
    """What a county tells its province about its nodes, with every report."""
    rows = [r for r in fleet_mod.fleet(conn, cfg, now=now) if r["status"] != "revoked"]
    out = {k: sum(1 for r in rows if r["status"] == k) for k in ("online", "late", "offline", "never")}
    out.update(nodes=len(rows), problem_nodes=sum(1 for r in rows if r["problems"]))
    return out


def clean_brief(raw) -> dict | None:
    """A received fleet summary with only known, non-negative integer fields; None when unusable."""
    if not isinstance(raw, dict):
        return None
    out = {k: raw.get(k) for k in FLEET_KEYS}
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**7 for v in out.values()):
        return None
    return out


def store_brief(conn: sqlite3.Connection, via: str, report_no: int, raw, at: float) -> None:
    """In the caller's transaction (tiers.receive_report's)."""
    brief = clean_brief(raw)
    if brief is not None:
        q.upsert_fleet(conn, via, report_no, json.dumps(brief), at)


def _county_problems(c: dict, brief: dict | None, conflicts: list, h, now: float) -> list[dict]:
    out = []
    last = c["last_batch_at"]
    if last is None:
        if now - c["enrolled_at"] > h.late_hours * 3600:
            out.append(("never", "注册后一直没有收到上报", c["enrolled_at"]))
    elif now - last > h.offline_days * 86400:
        out.append(("offline", f"已经 {(now - last) / 86400:.1f} 天没有上报（超过 {h.offline_days:g} 天算离线）", last))
    elif now - last > h.late_hours * 3600:
        out.append(("late", f"已经 {(now - last) / 3600:.0f} 小时没有上报（超过 {h.late_hours:g} 小时算迟报）", last))
    for subject, at in conflicts:
        out.append(("conflict", "同一编号的汇总报告收到了两份不同的内容", at))
    if brief and brief["nodes"]:
        silent = brief["offline"] + brief["late"] + brief["never"]
        share = 100 * silent / brief["nodes"]
        if share >= h.alert_county_offline_percent:
            out.append(("nodes", f"{brief['nodes']} 个服务点中 {silent} 个离线、迟报或从未上报（{share:.0f}%，"
                                 f"达到 {h.alert_county_offline_percent:g}% 需要处理）", c["brief_at"]))
    return [{"kind": k, "zh": KIND_ZH[k], "detail": d, "since": s, "action": ACTION_ZH[k], "severity": SEVERITY[k]}
            for k, d, s in out]


def counties(conn: sqlite3.Connection, cfg, *, now: float | None = None) -> dict:
    """``{"rows": one per county, "problems": most severe first, "totals": {...}}``."""
    now = time.time() if now is None else now
    h = cfg.hub
    today = date.fromisoformat(local_day(now, h.utc_offset_hours))
    first = today.replace(day=1)
    prev_first = (first - timedelta(days=1)).replace(day=1)
    this_month = q.visits_by_county(conn, first.isoformat(), today.isoformat())
    last_month = q.visits_by_county(conn, prev_first.isoformat(), (first - timedelta(days=1)).isoformat())
    briefs = q.fleet_summaries(conn)
    named = q.nodes_by_county(conn)
    conflicts: dict[str, list] = {}
    for (rule, node_id, subject), at in problems_queries.open_alert_times(conn).items():
        if rule == "conflict":
            conflicts.setdefault(node_id, []).append((subject, at))
    rows, plist = [], []
    for r in q.counties(conn):
        c = dict(r)
        if c["revoked_at"]:
            continue
        body, c["brief_at"] = briefs.get(c["node_id"], (None, None))
        brief = json.loads(body) if body else None
        c.update(brief=brief, nodes=brief["nodes"] if brief else named.get(c["node_id"], (0, 0))[0],
                 visits_month=this_month.get(c["node_id"], 0), visits_last_month=last_month.get(c["node_id"], 0))
        c["problems"] = _county_problems(c, brief, conflicts.get(c["node_id"], []), h, now)
        plist += [{**p, "node_id": c["node_id"], "name": c["name"] or "（未命名县级平台）"} for p in c["problems"]]
        rows.append(c)
    plist.sort(key=lambda p: (p["severity"], p["since"] or now, p["name"]))
    totals = {"counties": len(rows), "nodes": sum(c["nodes"] for c in rows),
              "problem_counties": sum(1 for c in rows if c["problems"]),
              "visits_month": sum(c["visits_month"] for c in rows),
              "visits_last_month": sum(c["visits_last_month"] for c in rows),
              "month": first.strftime("%Y年%m月").replace("年0", "年")}
    return {"rows": rows, "problems": plist, "totals": totals}
