"""Import results and the import history table."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field

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
        return conn.execute(
            "INSERT INTO imports (started_at, finished_at, source, bundle, channel, seq, result, added, updated, "
            "withdrawn, files_copied, files_skipped, bytes_copied, bytes_total, duration, error_code, error, warnings) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (r.started_at, finished_at, r.source, r.bundle, r.channel, r.seq, r.result, r.added, r.updated,
             r.withdrawn, r.files_copied, r.files_skipped, r.bytes_copied, r.bytes_total, r.duration, r.error_code,
             r.error, "\n".join(r.warnings))).lastrowid


def recent(conn: sqlite3.Connection, limit: int = 50) -> list[dict]:
    rows = conn.execute("SELECT * FROM imports ORDER BY started_at DESC, id DESC LIMIT ?", (limit,)).fetchall()
    out = []
    for row in rows:
        d = dict(row)
        d["summary_zh"] = summary_zh(d["result"], d["added"] + d["updated"], d["bytes_total"],
                                     _zh_for(d["error_code"]))
        out.append(d)
    return out


def stale_reported(conn: sqlite3.Connection, bundle: str) -> bool:
    return conn.execute("SELECT 1 FROM imports WHERE bundle = ? AND result = 'stale'", (bundle,)).fetchone() is not None


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
}


def _zh_for(code: str | None) -> str | None:
    return ERRORS_ZH.get(code or "", code)
