"""Config thresholds turned into warnings every view shows the same way.

Each warning has a stable code (for the hub, metrics and scripts), an English
message for operators and a plain Chinese sentence for the volunteer who looks
after the reading room.  Thresholds: ``health.disk_warn_percent``,
``health.sync_warn_days``, ``health.clock_warn_unsynced`` and
``health.clock_behind_warn_seconds``.
"""

from __future__ import annotations

import sqlite3
import time

DAY = 86400.0

# Every code this module can raise, with its Chinese title; docs/health.md lists them.
CODES = {
    "W_DISK_FULL": "磁盘空间不足",
    "W_SYNC_STALE": "长时间未同步",
    "W_SYNC_NEVER": "从未与县中心同步",
    "W_CLOCK_UNSYNCED": "时钟未同步",
    "W_CLOCK_BEHIND": "时钟被调慢了",
    "W_DB_CHECK": "数据库检查未通过",
    "W_STORE_BAD": "有内容文件损坏",
    "W_HEALTH_PARTIAL": "部分状态读取失败",
}


def _warn(code: str, level: str, message: str, zh: str) -> dict:
    return {"code": code, "level": level, "title_zh": CODES[code], "message": message, "message_zh": zh}


def _days(n: float) -> str:
    return f"{n:g}"


def evaluate(cfg, snap: dict, conn: sqlite3.Connection | None = None, now: float | None = None) -> list[dict]:
    """The warnings for a snapshot, most serious first."""
    now = time.time() if now is None else now
    out: list[dict] = []
    h = cfg.health

    disk = (snap.get("system") or {}).get("disk")
    if disk and disk["percent"] >= h.disk_warn_percent:
        free_gb = disk["free_bytes"] / 1024 ** 3
        out.append(_warn("W_DISK_FULL", "error" if disk["percent"] >= 98 else "warning",
                         f"data disk is {disk['percent']:.0f}% full ({free_gb:.1f} GB free; "
                         f"threshold {h.disk_warn_percent:g}%)",
                         f"磁盘空间不足：已用 {disk['percent']:.0f}%，只剩 {free_gb:.1f} GB。请删除不用的内容或联系县中心。"))

    sync = snap.get("sync")
    if sync is not None:
        last = sync.get("last_contact")
        limit = h.sync_warn_days * DAY
        if last is not None and now - last > limit:
            days = (now - last) / DAY
            out.append(_warn("W_SYNC_STALE", "warning",
                             f"no successful sync with the hub for {days:.1f} days (threshold {h.sync_warn_days:g})",
                             f"超过 {_days(h.sync_warn_days)} 天未同步：上次成功同步是 {days:.0f} 天前。请检查网络或用U盘交换数据。"))
        elif last is None:
            installed = (snap.get("software") or {}).get("installed_at")
            if installed is not None and now - installed > limit:
                out.append(_warn("W_SYNC_NEVER", "warning",
                                 f"installed {(now - installed) / DAY:.1f} days ago and never synced with the hub",
                                 f"超过 {_days(h.sync_warn_days)} 天未同步：本服务点还从未与县中心同步过。"))

    clock = snap.get("clock")
    if clock is not None:
        if h.clock_warn_unsynced and clock.get("ntp_synchronized") is False:
            out.append(_warn("W_CLOCK_UNSYNCED", "warning",
                             f"system clock is not NTP-synchronised (source: {clock.get('ntp_source')})",
                             "时钟未同步：电脑时间可能不准，统计数据的时间会出错。联网后会自动校准。"))
        behind = clock.get("behind_recorded_s") or 0.0
        if behind > h.clock_behind_warn_seconds:
            out.append(_warn("W_CLOCK_BEHIND", "error",
                             f"wall clock is {behind:.0f} s behind the newest time this node recorded",
                             f"时钟未同步：电脑时间比已记录的时间慢了 {behind / 60:.0f} 分钟，请校准时间。"))

    software = snap.get("software")
    if software is not None and not software["quick_check"]["ok"]:
        out.append(_warn("W_DB_CHECK", "error", f"database quick_check failed: {software['quick_check']['result']}",
                         "数据库检查未通过：请联系县中心技术人员。"))

    content = snap.get("content")
    if content is not None:
        verify = content.get("last_verify")
        bad = content["store"]["not_ok"]
        if bad or (verify and not verify["ok"]):
            n = max(bad, (verify or {}).get("bad", 0) + (verify or {}).get("missing", 0))
            out.append(_warn("W_STORE_BAD", "warning", f"{n} content file(s) failed verification and are hidden",
                             f"有 {n} 个内容文件损坏或丢失，已暂停播放。重新导入内容包即可修复。"))

    if snap.get("errors"):
        names = ", ".join(sorted(snap["errors"]))
        out.append(_warn("W_HEALTH_PARTIAL", "warning", f"could not read: {names}",
                         f"部分状态读取失败（{names}），请生成诊断包交给县中心。"))

    order = {"error": 0, "warning": 1}
    out.sort(key=lambda w: order.get(w["level"], 2))
    return out
