"""The fleet view: one row per enrolled node with its state and problems.

Status comes from the age of the last heartbeat (``hub.late_hours``,
``hub.offline_days``); problems are the rules below evaluated on the latest
snapshot and on the uploads the hub refused (thresholds: the ``hub.*`` settings,
docs/hub.md "Problems first").  Framework-free: the problem list, the fleet
table, ``/metrics``, the CLI and the alert job all read it, so they agree.
"""

from __future__ import annotations

import json
import sqlite3
import time

from edgenode.hub import heartbeat_queries, problems_queries, publish_queries
from edgenode.protocol.metadata import COLUMNS

STATUS_ZH = {"online": "在线", "late": "迟报", "offline": "离线", "never": "从未上报", "revoked": "已注销"}
# The order is the problem list's: most severe first.
PROBLEM_ZH = {"offline": "离线", "late": "迟报", "never": "从未上报", "disk": "磁盘将满", "integrity": "内容损坏",
              "clock": "时钟不准", "behind": "内容落后", "backlog": "上传积压", "imports": "上传被拒收",
              "security": "安全更新未装", "conflict": "数据包冲突", "gap": "数据包缺号"}
SEVERITY = {k: i for i, k in enumerate(PROBLEM_ZH)}
ACTION_ZH = {
    "offline": "电话联系管理员：请检查服务点是否通电开机，网线或卫星接收是否正常。",
    "late": "电话询问管理员服务点是否开机、能否上网；一两天内仍无心跳就会变成离线。",
    "never": "电话联系管理员，确认服务点已开机联网，并且填写的县中心地址正确。",
    "disk": "请管理员在服务点管理页删除不用的内容或下架旧节目，必要时更换更大的硬盘。",
    "integrity": "请管理员在服务点重新导入出错的内容；可先点“请求诊断包”查看哪些文件损坏。",
    "clock": "请管理员检查服务点的日期和时间；联网后会自动校时，时钟不准会让统计记到错误的日期。",
    "behind": "请检查服务点能否连上县中心拉取内容，或由志愿者用U盘把最新内容送去导入。",
    "backlog": "请检查服务点的网络；长期断网的，可用U盘导出使用记录，带回县中心导入。",
    "imports": "点开服务点查看最近记录；多次出现请请求诊断包并联系技术支持。",
    "security": "服务点联网时会在维护时段自动安装；长期不联网的，请志愿者用U盘带去县中心最新的软件发布包。",
    "conflict": "同一编号的数据包内容不同：请请求诊断包并联系技术支持。",
    "gap": "等服务点补传缺少的数据包；长期缺号请用U盘导出记录带回导入。",
}
REFUSAL_ZH = {"E_BAD_SIGNATURE": "签名不符", "E_BATCH_FORMAT": "数据包格式错误", "E_BATCH_CONFLICT": "编号重复但内容不同"}
CHANNEL_ZH = {**COLUMNS, "county": "县级自办"}


def _num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _get(d, *path):
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def latest_channels(conn: sqlite3.Connection) -> dict[str, int]:
    return publish_queries.latest_channels(conn)


INTEGRITY_WARNINGS = {"W_STORE_BAD", "W_DB_CHECK"}  # edgenode/node/health/warnings.py


def integrity_failed(snap: dict) -> bool:
    # The compact heartbeat (health.snapshot.compact) lists warning codes; a node may also send
    # {"integrity": {"ok": false}}, and the full health snapshot carries content.last_verify.ok.
    warnings = snap.get("warnings")
    return (_get(snap, "integrity", "ok") is False or _get(snap, "content", "last_verify", "ok") is False
            or (isinstance(warnings, list) and bool(INTEGRITY_WARNINGS.intersection(
                w for w in warnings if isinstance(w, str)))))


def snapshot_facts(snap: dict | None) -> dict:
    """The figures of a heartbeat the fleet view uses, checked for type; what does not depend on the time."""
    snap = snap or {}
    node_channels = _get(snap, "catalog", "channels")
    return {
        "wall": _num(_get(snap, "clock", "wall")) or _num(snap.get("at")),
        "channel_seq": {k: _num(v) for k, v in node_channels.items()} if isinstance(node_channels, dict) else {},
        "version": snap["version"][:40] if isinstance(snap.get("version"), str) else None,
        "disk_percent": _num(_get(snap, "disk", "percent")), "cpu_percent": _num(snap.get("cpu_percent")),
        "mem_percent": _num(snap.get("mem_percent")), "uptime": _num(snap.get("uptime")),
        "resources": _num(_get(snap, "catalog", "resources")),
        "last_pull": _num(snap.get("last_pull")), "last_uplink": _num(snap.get("last_uplink")),
        "outbox_batches": _num(_get(snap, "outbox", "batches")), "outbox_bytes": _num(_get(snap, "outbox", "bytes")),
        "ntp_synced": _get(snap, "clock", "ntp_synced"), "integrity_failed": integrity_failed(snap),
        "software": snap.get("software") if isinstance(snap.get("software"), dict) else None,
        "security_count": _num(_get(snap, "software", "security", "count")),
        "security_since": _num(_get(snap, "software", "security", "since")),
    }


NODE_KEYS = ("node_id", "name", "township", "version", "kind", "contiguous", "max_batch_no", "batches", "events",
             "last_batch_at", "enrolled_at", "revoked_at")
FACT_KEYS = ("disk_percent", "cpu_percent", "mem_percent", "uptime", "resources", "last_pull", "last_uplink",
             "outbox_batches", "outbox_bytes", "ntp_synced", "integrity_failed", "software", "security_count",
             "security_since")


def node_row(node: dict, facts: dict, received_at: float | None, channels: dict[str, int], h,
             now: float) -> dict:
    """One node's row from its :func:`snapshot_facts`.  ``h``: the [hub] settings section (``cfg.hub``, built
    once by the caller: building it costs more than a row)."""
    row = {k: node[k] for k in NODE_KEYS}
    age = None if received_at is None else now - received_at
    if node["revoked_at"]:
        status = "revoked"
    elif age is None:
        status = "never"
    elif age > h.offline_days * 86400:
        status = "offline"
    elif age > h.late_hours * 3600:
        status = "late"
    else:
        status = "online"
    wall = facts["wall"]
    node_seq = facts["channel_seq"]
    chan = {}
    for name, latest in channels.items():
        seq = node_seq.get(name)
        chan[name] = {"seq": seq, "latest": latest, "behind": None if seq is None else max(0, latest - seq)}
    if facts["version"] is not None:
        row["version"] = facts["version"]  # the node's latest word, newer than its enrolment
    row.update({k: facts[k] for k in FACT_KEYS})
    row.update(status=status, status_zh=STATUS_ZH[status], last_heartbeat_at=received_at, age=age, channels=chan,
               clock_skew=None if wall is None or received_at is None else wall - received_at,
               gap=node["max_batch_no"] > node["contiguous"])
    row["problems"] = [] if status == "revoked" else _problems(row, node, h, now)
    return row


def _p(kind: str, detail: str, since: float | None, subject: str = "") -> dict:
    return {"rule": kind, "kind": kind, "zh": PROBLEM_ZH[kind], "detail": detail, "since": since,
            "subject": subject, "action": ACTION_ZH[kind], "severity": SEVERITY[kind]}


def _problems(row: dict, node: dict, h, now: float) -> list[dict]:
    """What needs doing at this node, in plain Chinese, most severe first (docs/hub.md, "Problems first")."""
    out, age, hb = [], row["age"], row["last_heartbeat_at"]
    if row["status"] == "offline":
        out.append(_p("offline", f"已经 {age / 86400:.1f} 天没有收到心跳（超过 {h.offline_days:g} 天算离线）", hb))
    elif row["status"] == "late":
        out.append(_p("late", f"已经 {age / 3600:.0f} 小时没有收到心跳（超过 {h.late_hours:g} 小时算迟报）", hb))
    elif row["status"] == "never" and now - node["enrolled_at"] > h.late_hours * 3600:
        out.append(_p("never", "注册后一直没有收到心跳", node["enrolled_at"]))
    if row["disk_percent"] is not None and row["disk_percent"] > h.alert_disk_percent:
        out.append(_p("disk", f"磁盘已用 {row['disk_percent']:.0f}%（超过 {h.alert_disk_percent:g}% 需要处理）", hb))
    if row["integrity_failed"]:
        out.append(_p("integrity", "内容文件或数据库的完整性检查没有通过", hb))
    skew = row["clock_skew"]
    if skew is not None and abs(skew) > h.alert_clock_minutes * 60:
        out.append(_p("clock", f"服务点时钟{'快' if skew > 0 else '慢'}了 {_minutes(abs(skew))}"
                               f"（允许 {h.alert_clock_minutes:g} 分钟以内）", hb))
    for name, c in row["channels"].items():
        if c["behind"] is not None and c["behind"] > h.alert_behind:
            out.append(_p("behind", f"“{channel_zh(name)}”频道落后 {c['behind']} 期（本机第 {c['seq']} 期，"
                                    f"最新第 {c['latest']} 期）", hb, subject=name))
    backlog = row["outbox_batches"]
    if backlog is not None and backlog >= h.alert_backlog_batches:
        out.append(_p("backlog", f"有 {backlog:.0f} 批使用记录还没传到县中心（达到 {h.alert_backlog_batches} 批"
                                 "需要处理）", hb))
    refused = node.get("refused")
    if refused:
        out.append(_p("imports", f"最近 {refused['n']} 次上传被县中心拒收（{REFUSAL_ZH.get(refused['code'], '数据包有误')}）",
                      refused["first_at"]))
    pending, since = row["security_count"], row["security_since"]
    if pending and since is not None and now - since > h.security_update_days * 86400:
        out.append(_p("security", f"有 {pending:.0f} 个系统安全更新已等待 {(now - since) / 86400:.0f} 天没有安装", since))
    return out


def _minutes(seconds: float) -> str:
    m = seconds / 60
    return f"{m:.0f} 分钟" if m < 120 else f"{m / 60:.1f} 小时" if m < 2880 else f"{m / 1440:.0f} 天"


def channel_zh(name: str) -> str:
    return CHANNEL_ZH.get(name, name)


def fleet_row(conn: sqlite3.Connection, cfg, node_id: str, *, now: float | None = None) -> dict | None:
    """One node's row, as :func:`fleet` would give it."""
    rows = fleet(conn, cfg, now=now, node_id=node_id)
    return rows[0] if rows else None


def fleet(conn: sqlite3.Connection, cfg, *, now: float | None = None, node_id: str | None = None) -> list[dict]:
    """Every enrolled village node (downstream hubs are the province view's: hub/province.py)."""
    now = time.time() if now is None else now
    channels = latest_channels(conn)
    rows = heartbeat_queries.nodes_with_latest_time(conn, node_id)
    snaps = _snapshots(conn, rows)
    h = cfg.hub
    refused = problems_queries.refusals_since_last_batch(conn, now - h.alert_refusal_days * 86400)
    raised = problems_queries.open_alert_times(conn)
    conflicts: dict[str, list] = {}
    for (rule, nid, subject), at in raised.items():
        if rule == "conflict":
            conflicts.setdefault(nid, []).append((subject, at))
    out = []
    for r in rows:
        node = dict(r)
        if node["kind"] == "hub":
            continue
        node["refused"] = refused.get(node["node_id"])
        row = node_row(node, snaps.get(node["node_id"]) or EMPTY, node.pop("hb_at"), channels, h, now)
        _add_alert_times(row, raised, conflicts.get(row["node_id"], ()))
        out.append(row)
    return out


EMPTY = snapshot_facts({})
# Facts of the latest heartbeats by (database, node, received_at): a page of 2,000 nodes parses only the
# heartbeats that arrived since the last page, not 2,000 JSON bodies.  Never mutated once stored.
_SNAPS: dict[tuple[str, str], tuple[float, dict]] = {}


def _snapshots(conn: sqlite3.Connection, rows) -> dict[str, dict]:
    """``{node_id: snapshot_facts}`` of the nodes' latest heartbeats."""
    path = heartbeat_queries.database_path(conn)
    out, stale = {}, []
    for r in rows:
        if r["hb_at"] is None:
            continue
        hit = _SNAPS.get((path, r["node_id"]))
        if hit is not None and hit[0] == r["hb_at"]:
            out[r["node_id"]] = hit[1]
        else:
            stale.append(r["node_id"])
    if len(_SNAPS) > 50_000:
        _SNAPS.clear()
    for nid, (at, body) in heartbeat_queries.latest_bodies(conn, stale).items():
        try:
            snap = json.loads(body)
        except ValueError:
            snap = {}
        facts = snapshot_facts(snap if isinstance(snap, dict) else {})
        _SNAPS[(path, nid)] = (at, facts)
        out[nid] = facts
    return out


def _add_alert_times(row: dict, raised: dict[tuple, float], conflicts) -> None:
    """Since when: the earlier of the heartbeat that shows a problem and the hourly check's first sight of it;
    a batch conflict is known only from its alert."""
    if row["status"] == "revoked":
        return
    nid = row["node_id"]
    for p in row["problems"]:
        first = raised.get((p["kind"], nid, p["subject"]))
        if first is not None and p["kind"] not in ("offline", "late", "never"):
            p["since"] = first if p["since"] is None else min(first, p["since"])
    for subject, at in conflicts:
        row["problems"].append(_p("conflict", "同一编号的数据包或汇总报告收到了两份不同的内容", at, subject))


def summary(rows: list[dict], channels: dict[str, int]) -> dict:
    active = [r for r in rows if r["status"] != "revoked"]
    by_status = {s: sum(1 for r in active if r["status"] == s) for s in ("online", "late", "offline", "never")}
    at_latest = {name: sum(1 for r in active if r["channels"].get(name, {}).get("behind") == 0)
                 for name in channels}
    return {"nodes": len(active), "by_status": by_status,
            "problem_nodes": sum(1 for r in active if r["problems"]),
            "problems": sum(len(r["problems"]) for r in active),
            "channels": {name: {"latest": seq, "at_latest": at_latest[name]} for name, seq in channels.items()}}
