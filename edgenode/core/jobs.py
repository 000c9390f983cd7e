"""Background job state and progress, kept in the volatile database.

Admin actions run as CLI commands or as jobs; both report progress here so
the admin page can poll it.  Losing this file loses only progress displays.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

from edgenode.core import jobs_queries as q

AREA = "jobs"
MIGRATIONS = [
    (1, "jobs", """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'skipped')),
        title TEXT NOT NULL DEFAULT '',
        bytes_done INTEGER NOT NULL DEFAULT 0,
        bytes_total INTEGER NOT NULL DEFAULT 0,
        files_done INTEGER NOT NULL DEFAULT 0,
        files_total INTEGER NOT NULL DEFAULT 0,
        message TEXT NOT NULL DEFAULT '',
        result TEXT,
        started_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE INDEX jobs_kind_started ON jobs (kind, started_at);
    """),
]


def start(conn: sqlite3.Connection, kind: str, title: str = "") -> str:
    job_id = uuid.uuid4().hex
    now = time.time()
    q.insert_running(conn, job_id, kind, title, now)
    return job_id


def progress(conn: sqlite3.Connection, job_id: str, **fields) -> None:
    allowed = {"bytes_done", "bytes_total", "files_done", "files_total", "message"}
    sets = {k: v for k, v in fields.items() if k in allowed}
    sets["updated_at"] = time.time()
    q.update_fields(conn, job_id, sets)


def finish(conn: sqlite3.Connection, job_id: str, state: str, message: str = "", result: dict | None = None) -> None:
    now = time.time()
    q.update_finished(conn, job_id, state, message,
                      json.dumps(result, ensure_ascii=False) if result is not None else None, now)


def get(conn: sqlite3.Connection, job_id: str) -> dict | None:
    row = q.job_row(conn, job_id)
    return _row(row) if row else None


def recent(conn: sqlite3.Connection, kind: str | None = None, limit: int = 20) -> list[dict]:
    return [_row(r) for r in q.recent_rows(conn, kind, limit)]


def _row(row) -> dict:
    d = dict(row)
    d["result"] = json.loads(d["result"]) if d["result"] else None
    return d
