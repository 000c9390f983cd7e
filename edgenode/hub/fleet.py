"""The fleet view: one row per enrolled node with its state and problems.

Status comes from the age of the last heartbeat (``hub.late_hours``,
``hub.offline_days``); problems are the alert rules of :mod:`edgenode.hub.rules`
evaluated on the latest snapshot.  Framework-free: the dashboard, ``/metrics``,
the CLI and the alert job all read it.
"""

from __future__ import annotations

import json
import sqlite3
import time

from edgenode.hub import heartbeat_queries, publish_queries

STATUS_ZH = {"online": "在线", "late": "迟报", "offline": "离线", "never": "从未上报", "revoked": "已注销"}
PROBLEM_ZH = {"offline": "离线", "disk": "磁盘将满", "behind": "内容落后", "clock": "时钟不准",
              "integrity": "完整性检查失败", "conflict": "数据包冲突", "gap": "数据包缺号",
              "security": "系统安全更新未安装"}


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


def node_row(node: dict, snap: dict | None, received_at: float | None, channels: dict[str, int], cfg,
             now: float) -> dict:
    h = cfg.hub
    snap = snap or {}
    row = {k: node[k] for k in ("node_id", "name", "township", "version", "kind", "contiguous", "max_batch_no",
                                "batches", "events", "last_batch_at", "enrolled_at", "revoked_at")}
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
    wall = _num(_get(snap, "clock", "wall")) or _num(snap.get("at"))
    skew = None if wall is None or received_at is None else wall - received_at
    node_channels = _get(snap, "catalog", "channels") or {}
    chan = {}
    for name, latest in channels.items():
        seq = _num(node_channels.get(name)) if isinstance(node_channels, dict) else None
        chan[name] = {"seq": seq, "latest": latest, "behind": None if seq is None else max(0, latest - seq)}
    if isinstance(snap.get("version"), str):
        row["version"] = snap["version"][:40]  # the node's latest word, newer than its enrolment
    row.update(
        status=status, status_zh=STATUS_ZH[status], last_heartbeat_at=received_at, age=age,
        disk_percent=_num(_get(snap, "disk", "percent")), cpu_percent=_num(snap.get("cpu_percent")),
        mem_percent=_num(snap.get("mem_percent")), uptime=_num(snap.get("uptime")),
        resources=_num(_get(snap, "catalog", "resources")), channels=chan,
        last_pull=_num(snap.get("last_pull")), last_uplink=_num(snap.get("last_uplink")),
        outbox_batches=_num(_get(snap, "outbox", "batches")), outbox_bytes=_num(_get(snap, "outbox", "bytes")),
        clock_skew=skew, ntp_synced=_get(snap, "clock", "ntp_synced"), integrity_failed=integrity_failed(snap),
        gap=node["max_batch_no"] > node["contiguous"],
    )
    problems = []
    if status == "revoked":
        row["problems"] = []
        return row
    if status in ("offline",):
        problems.append(("offline", f"{age / 86400:.1f} 天无心跳"))
    if row["disk_percent"] is not None and row["disk_percent"] > h.alert_disk_percent:
        problems.append(("disk", f"磁盘已用 {row['disk_percent']:.0f}%"))
    for name, c in chan.items():
        if c["behind"] is not None and c["behind"] > h.alert_behind:
            problems.append(("behind", f"{name} 落后 {c['behind']} 期"))
    if skew is not None and abs(skew) > h.alert_clock_minutes * 60:
        problems.append(("clock", f"时钟偏差 {skew / 60:+.0f} 分钟"))
    if row["integrity_failed"]:
        problems.append(("integrity", "内容完整性检查失败"))
    pending, since = _num(_get(snap, "software", "security", "count")), _num(_get(snap, "software", "security", "since"))
    if pending and since is not None and now - since > h.security_update_days * 86400:
        problems.append(("security", f"{pending:.0f} 个系统安全更新已等待 {(now - since) / 86400:.0f} 天"))
    row["software"] = snap.get("software") if isinstance(snap.get("software"), dict) else None
    row["problems"] = [{"rule": r, "zh": PROBLEM_ZH[r], "detail": d} for r, d in problems]
    return row


def fleet(conn: sqlite3.Connection, cfg, *, now: float | None = None) -> list[dict]:
    now = time.time() if now is None else now
    channels = latest_channels(conn)
    rows = heartbeat_queries.nodes_with_latest(conn)
    out = []
    for r in rows:
        node = dict(r)
        snap = json.loads(node.pop("hb_body")) if node["hb_body"] else None
        out.append(node_row(node, snap, node.pop("hb_at"), channels, cfg, now))
    return out


def summary(rows: list[dict], channels: dict[str, int]) -> dict:
    active = [r for r in rows if r["status"] != "revoked"]
    by_status = {s: sum(1 for r in active if r["status"] == s) for s in ("online", "late", "offline", "never")}
    at_latest = {name: sum(1 for r in active if r["channels"].get(name, {}).get("behind") == 0)
                 for name in channels}
    return {"nodes": len(active), "by_status": by_status,
            "problem_nodes": sum(1 for r in active if r["problems"]),
            "problems": sum(len(r["problems"]) for r in active),
            "channels": {name: {"latest": seq, "at_latest": at_latest[name]} for name, seq in channels.items()}}
