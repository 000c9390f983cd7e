"""The node page in words county staff read: the latest heartbeat as a summary, history charts,
the log and the batches in Chinese (docs/hub.md, "The node page").  Framework-free."""

from __future__ import annotations

import sqlite3
import time
from datetime import date, timedelta

from edgenode.hub import charts, heartbeat, stats
from edgenode.hub.days import local_day
from edgenode.hub.fleet import channel_zh
from edgenode.hub.problems import tz_label

LOG_ZH = {
    "ENROLLED": "服务点注册成功", "REVOKED": "服务点已注销", "IMPORT_USB": "从U盘导入了使用记录",
    "DIAGNOSTICS": "收到诊断包", "DIAGNOSTICS_REQUESTED": "县中心请求诊断包",
    "E_BAD_SIGNATURE": "签名不符，县中心拒收", "E_BATCH_FORMAT": "数据包格式错误，县中心拒收",
    "E_BATCH_CONFLICT": "同一编号的数据包内容不同，县中心拒收", "E_HEARTBEAT": "心跳数据有误",
    "E_NODE_REVOKED": "已注销的服务点仍在上报", "E_NODE_UNKNOWN": "未注册的服务点", "E_DIAGNOSTICS": "诊断包被拒收",
    "E_REPORT_FORMAT": "汇总报告格式错误", "E_REPORT_CONFLICT": "同一编号的汇总报告内容不同", "E_NOT_A_HUB": "不是下级平台",
    "E_CLOCK": "请求时间与县中心相差太大", "E_REPLAY": "重复的请求，已拒收",
}
LEVEL_ZH = {"info": "记录", "warning": "警告"}
BATCH_KIND_ZH = {"events": "逐条记录", "daily": "按日汇总"}
SOURCE_ZH = {"net": "网络", "usb": "U盘"}


def _gb(n) -> str:
    return f"{n / 1e9:.1f} GB" if isinstance(n, (int, float)) else "—"


def summary(row: dict, latest: dict | None, cfg) -> list[dict]:
    """The heartbeat in seven lines: 在线状态、磁盘、内存、版本、内容是否最新、最后上传、时钟 (and a few more)."""
    h, snap = cfg.hub, latest or {}
    disk = snap.get("disk") if isinstance(snap.get("disk"), dict) else {}
    out = [{"label": "在线状态", "value": row["status_zh"] + (f"（{_ago(row['age'])}前收到最后一次心跳）"
                                                              if row["age"] is not None else "（还没有收到心跳）"),
            "bad": row["status"] in ("offline", "late", "never")}]
    if row["disk_percent"] is not None:
        out.append({"label": "磁盘", "value": f"已用 {row['disk_percent']:.0f}%，剩余 {_gb(disk.get('free'))}，"
                                              f"共 {_gb(disk.get('total'))}",
                    "bad": row["disk_percent"] > h.alert_disk_percent})
    if row["mem_percent"] is not None:
        out.append({"label": "内存", "value": f"已用 {row['mem_percent']:.0f}%", "bad": False})
    out.append({"label": "版本", "value": row["version"] or "—", "bad": False})
    behind = [f"“{channel_zh(n)}”落后 {c['behind']} 期" for n, c in row["channels"].items() if c["behind"]]
    unknown = [n for n, c in row["channels"].items() if c["seq"] is None]
    content = "；".join(behind) if behind else ("都是最新的" if row["channels"] and not unknown else
                                                "还不知道（服务点没有报告内容期数）" if row["channels"] else "县中心尚未发布内容")
    out.append({"label": "内容是否最新", "value": content,
                "bad": any(c["behind"] and c["behind"] > h.alert_behind for c in row["channels"].values())})
    last_up = row["last_uplink"]
    backlog = row["outbox_batches"]
    out.append({"label": "最后上传", "value": (f"{_ago(time.time() - last_up)}前" if last_up else "还没有上传过")
                + (f"，还有 {backlog:.0f} 批记录待传" if backlog else ""),
                "bad": bool(backlog and backlog >= h.alert_backlog_batches), "at": last_up})
    skew = row["clock_skew"]
    if skew is None:
        clock = "不知道"
    else:
        clock = "准确" if abs(skew) < 60 else f"{'快' if skew > 0 else '慢'} {_ago(abs(skew))}"
        clock += "，已自动校时" if row["ntp_synced"] is True else "，未自动校时" if row["ntp_synced"] is False else ""
    out.append({"label": "时钟", "value": clock,
                "bad": skew is not None and abs(skew) > h.alert_clock_minutes * 60})
    if row["uptime"] is not None:
        out.append({"label": "已连续运行", "value": _ago(row["uptime"]), "bad": False})
    if row["resources"] is not None:
        out.append({"label": "可用资源", "value": f"{row['resources']:.0f} 个", "bad": False})
    return out


def _ago(seconds: float) -> str:
    s = max(0.0, seconds)
    if s < 3600:
        return f"{s / 60:.0f} 分钟"
    if s < 2 * 86400:
        return f"{s / 3600:.0f} 小时"
    return f"{s / 86400:.1f} 天"


def charts_for(conn: sqlite3.Connection, node_id: str, cfg) -> dict[str, str]:
    h = cfg.hub
    zone = tz_label(h.utc_offset_hours)
    hist = heartbeat.history(conn, node_id, h.heartbeat_history)
    disk = charts.time_chart([(x["received_at"], (x.get("disk") or {}).get("percent")) for x in hist],
                             "磁盘使用率", y_title="已用（%）", offset_hours=h.utc_offset_hours, zone=zone, y_max=100)
    gaps = charts.time_chart([(b["received_at"], round((b["received_at"] - a["received_at"]) / 3600, 2))
                              for a, b in zip(hist, hist[1:])], "两次心跳的间隔", y_title="间隔（小时）",
                             offset_hours=h.utc_offset_hours, zone=zone)
    per_day = {d["day"]: d["visits"] for d in stats.table(conn, "day", {"node_id": node_id})}
    today = date.fromisoformat(local_day(time.time(), h.utc_offset_hours))
    days = [(today - timedelta(days=i)).isoformat() for i in range(29, -1, -1)]
    usage = charts.bar_chart([(d[5:], per_day.get(d, 0)) for d in days], "近30天每日服务人次", unit="人次",
                             x_title=f"日期（{zone}）") if per_day else charts.note("近30天每日服务人次：暂无数据")
    return {"disk": disk, "usage": usage, "gaps": gaps}


def log_rows(rows: list[dict]) -> list[dict]:
    return [{**r, "what": LOG_ZH.get(r["code"], "其他记录"), "level_zh": LEVEL_ZH.get(r["level"], "记录")} for r in rows]


def batch_rows(rows: list[dict]) -> list[dict]:
    return [{**r, "kind_zh": BATCH_KIND_ZH.get(r["kind"], "其他"), "source_zh": SOURCE_ZH.get(r["source"], "其他")}
            for r in rows]
