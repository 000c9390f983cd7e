"""Import results and the import history table."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import asdict, dataclass, field

from edgenode.node.imports import queries as iq
from edgenode.core.db import transaction


@dataclass
class ImportResult:
    bundle: str
    source: str
    result: str = "failed"          # imported | unchanged | failed | stale
    channel: str | None = None
    seq: int | None = None
    added: int = 0
    updated: int = 0
    withdrawn: int = 0
    files_copied: int = 0
    files_skipped: int = 0
    bytes_copied: int = 0
    bytes_total: int = 0
    duration: float = 0.0
    error_code: str | None = None
    error: str | None = None
    error_zh: str | None = None
    warnings: list[str] = field(default_factory=list)
    started_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result in ("imported", "unchanged")

    @property
    def resources(self) -> int:
        return self.added + self.updated

    def summary_zh(self) -> str:
        return summary_zh(self.result, self.resources, self.bytes_total, self.error_zh)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["summary_zh"] = self.summary_zh()
        return d


def human_bytes(n: int) -> str:
    """Decimal units as the stick's label shows them: 1.2 GB, 350 MB."""
    for unit, size in (("TB", 10 ** 12), ("GB", 10 ** 9), ("MB", 10 ** 6), ("KB", 10 ** 3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def summary_zh(result: str, resources: int, nbytes: int, error_zh: str | None = None) -> str:
    if result == "imported":
        return f"导入完成：{resources} 个资源，{human_bytes(nbytes)}"
    if result == "unchanged":
        return "内容包已导入过，没有变化"
    if result == "stale":
        return "内容包长时间不完整，等待人工处理"
    return f"导入失败：{error_zh or '未知错误'}"


def record(conn: sqlite3.Connection, r: ImportResult, finished_at: float) -> int:
    """Insert one history row; inside the import's own transaction when it succeeded."""
    with transaction(conn):
        return iq.insert_import(conn, r, finished_at)


def recent(conn: sqlite3.Connection, limit: int = 50) -> list[dict]:
    rows = iq.recent_imports(conn, limit)
    out = []
    for row in rows:
        d = dict(row)
        d["summary_zh"] = summary_zh(d["result"], d["added"] + d["updated"], d["bytes_total"],
                                     _zh_for(d["error_code"]))
        d["next_step_zh"] = next_step_zh(d["error_code"], d["error"]) if d["result"] == "failed" else ""
        d["key_id"] = untrusted_key_id(d["error"]) if d["error_code"] == "E_SIG_UNTRUSTED" else None
        out.append(d)
    return out


def outcome_of_job(conn: sqlite3.Connection, job_title: str, job_started_at: float) -> dict | None:
    """The recorded outcome of an import whose job row says "running" (``"<source>: <bundle>"``).

    The history row is in the main database; the job row is in volatile.db and its last
    update can fail (a full disk) after the outcome was recorded.  The record wins.
    """
    source, _, name = job_title.rpartition(": ")
    if not source or not name:
        return None
    row = iq.import_for_job(conn, source, name, job_started_at)
    if row is None:
        return None
    d = dict(row)
    d["summary_zh"] = summary_zh(d["result"], d["added"] + d["updated"], d["bytes_total"], _zh_for(d["error_code"]))
    return d


def stale_reported(conn: sqlite3.Connection, bundle: str) -> bool:
    return iq.stale_recorded(conn, bundle)


# Chinese texts for history rows, which keep only the code.
ERRORS_ZH = {
    "E_SIG_MISSING": "内容包没有签名",
    "E_SIG_INVALID": "签名校验失败",
    "E_SIG_UNTRUSTED": "签名密钥不受信任",
    "E_CHANNEL_FORBIDDEN": "密钥无权发布这个频道",
    "E_ROLLBACK": "内容包比已有的更旧",
    "E_MANIFEST_TOO_LARGE": "清单太大",
    "E_MANIFEST_INVALID": "清单格式不正确",
    "E_FORMAT_VERSION": "内容包格式版本不受支持",
    "E_HASH_MISMATCH": "文件内容校验失败",
    "E_SIZE_MISMATCH": "文件大小不符（可能不完整）",
    "E_MISSING_FILE": "内容包缺少文件",
    "E_BAD_PATH": "文件路径不安全",
    "E_DUPLICATE_ENTRY": "清单有重复条目",
    "E_NOT_REGULAR_FILE": "内容包里有链接或设备文件",
    "E_METADATA": "资源信息有误",
    "E_DISK_FULL": "磁盘空间不足",
    "E_SOURCE_IO": "读取 U 盘或来源失败（可能已拔出）",
    "E_NO_MANIFEST": "没有找到内容包清单",
    "E_MEDIA_CORRUPT": "媒体文件已损坏",
    "E_DB_BUSY": "本机正忙，请稍后重试",
    "E_DB_IO": "本机数据库读写出错，请联系县中心",
    "E_INTERNAL": "本机软件出错，请联系县中心",
}


def _zh_for(code: str | None) -> str | None:
    return ERRORS_ZH.get(code or "", code)


# What a volunteer can do about each refusal, in plain words.  Nothing here asks them to judge
# whether content is safe: a refusal about trust always goes to the county.
_ASK_COUNTY = "请联系县中心，告诉他们这一行的提示和时间。"
_RECOPY = "U 盘上的内容可能没有复制完整。请让县中心重新复制一个 U 盘，再插上。"
NEXT_STEPS_ZH = {
    "E_SIG_UNTRUSTED": "这个 U 盘上的内容不是本机认识的发布者签名的，所以没有导入。请不要自己处理，"
                       "联系县中心，告诉他们下面的密钥编号。",
    "E_SIG_MISSING": "这个 U 盘上的内容没有签名，不能导入。" + _ASK_COUNTY,
    "E_SIG_INVALID": "内容在签名之后被改动过，不能导入。" + _RECOPY,
    "E_CHANNEL_FORBIDDEN": "这个发布者无权发布这一类内容。" + _ASK_COUNTY,
    "E_ROLLBACK": "本机已经有更新的内容，这个 U 盘上的是旧版本，不需要导入。可以拔出 U 盘。",
    "E_HASH_MISMATCH": _RECOPY,
    "E_SIZE_MISMATCH": _RECOPY,
    "E_MISSING_FILE": _RECOPY,
    "E_SOURCE_IO": "读取 U 盘时出错（可能被拔出了）。重新插上 U 盘，会从中断的地方继续导入。",
    "E_DISK_FULL": "本机磁盘空间不够。请在“存储”页面清理不常用的内容，然后重新插上 U 盘。",
    "E_NO_ROOM": "本机磁盘空间不够。请在“存储”页面清理不常用的内容，然后重新插上 U 盘。",
    "E_DB_BUSY": "本机正忙。过几分钟重新插上 U 盘即可。",
    "E_NOT_REGULAR_FILE": "U 盘上有不该出现的特殊文件。" + _RECOPY,
    "E_FORMAT_VERSION": "本机软件版本太旧，读不了这个内容包。" + _ASK_COUNTY,
}


def next_step_zh(code: str | None, error: str | None = None) -> str:
    """The next step for a failed import, for the volunteer in front of the PC."""
    return NEXT_STEPS_ZH.get(code or "", "内容包有问题，没有导入。" + _ASK_COUNTY)


def untrusted_key_id(error: str | None) -> str | None:
    """The key id named in an E_SIG_UNTRUSTED message ("signed by key 0123ABCD…"), for the county."""
    m = re.search(r"signed by key ([0-9A-F]{16})", error or "")
    return m.group(1) if m else None
