"""How an import attempt ends: its failure code, its history row, and its row in the jobs table.

Every attempt ends with exactly one outcome, whatever went wrong (issue 16): the pipeline
turns an SQLite error into a stable code here, records the history row even past a busy
database, and mirrors progress and the end into ``volatile.db`` for the admin page.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from edgenode.core.errors import EdgenodeError
from edgenode.node.imports.history import ImportResult, record

log = logging.getLogger(__name__)

# Failures of this node, not of the bundle: a source that keeps the bundle (the spool) leaves it
# where it is, to be tried again at the next scan, instead of setting it aside as refused.
RETRY_LATER = frozenset({"E_SOURCE_IO", "E_DISK_FULL", "E_NO_ROOM", "E_DB_BUSY", "E_DB_IO"})


def database_failure(e: sqlite3.Error) -> tuple[str, str, str]:
    """(code, message, Chinese text) for an SQLite error that escaped an import's transaction."""
    name = getattr(e, "sqlite_errorname", "") or ""
    if name == "SQLITE_FULL" or "disk is full" in str(e):
        return ("E_DISK_FULL", f"the disk filled up while saving the import: {e}",
                "磁盘已满，内容未导入；请清理空间后重新插入 U 盘")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(e):
        return ("E_DB_BUSY", f"the database stayed busy past the timeout: {e}",
                "本机正忙，内容未导入；请稍后重新插入 U 盘")
    return ("E_DB_IO", f"the database could not be written ({name or type(e).__name__}): {e}",
            "本机数据库读写出错，内容未导入；请联系县中心")


def record_outcome(conn: sqlite3.Connection, result: ImportResult, attempts: int = 3) -> None:
    """The history row of an attempt that did not import, waiting out a busy database a while.

    A failure for ``database is locked`` would otherwise lose its own row to the same lock;
    each attempt waits up to ``db.busy_timeout_ms``.
    """
    for attempt in range(attempts):
        try:
            record(conn, result, time.time())
            return
        except sqlite3.OperationalError as e:
            if database_failure(e)[0] != "E_DB_BUSY" or attempt == attempts - 1:
                log.error("could not record the import result (%s): %s", result.error_code, e)
                return
        except sqlite3.Error as e:
            log.error("could not record the import result (%s): %s", result.error_code, e)
            return


class Job:
    """Mirror progress into the volatile jobs table so the admin page can poll it."""

    INTERVAL = 0.5

    def __init__(self, cfg, result: ImportResult):
        self.id = self.conn = None
        self.last = 0.0
        try:
            from edgenode.core import jobs
            from edgenode.core.db import open_volatile
            self.jobs = jobs
            self.conn = open_volatile(cfg)
            self.id = jobs.start(self.conn, "import", f"{result.source}: {Path(result.bundle).name}")
        except (sqlite3.Error, EdgenodeError, OSError):
            log.warning("progress display unavailable", exc_info=True)

    def update(self, p) -> None:
        now = time.monotonic()
        if self.id is None or (now - self.last < self.INTERVAL and p.phase not in ("committed", "done")):
            return
        self.last = now
        try:
            self.jobs.progress(self.conn, self.id, bytes_done=p.bytes_done, bytes_total=p.bytes_total,
                               files_done=p.files_done, files_total=p.files_total, message=f"{p.phase} {p.current}")
        except sqlite3.Error:
            pass

    def finish(self, result: ImportResult) -> None:
        if self.id is None:
            return
        try:
            state = {"imported": "done", "unchanged": "skipped"}.get(result.result, "failed")
            self.jobs.finish(self.conn, self.id, state, result.summary_zh(), result.as_dict())
        except sqlite3.Error:
            pass
        finally:
            self.conn.close()
