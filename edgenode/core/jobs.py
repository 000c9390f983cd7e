"""Background job state and progress, kept in the volatile database.

Admin actions run as CLI commands or as jobs; both report progress here so
the admin page can poll it.  Losing this file loses only progress displays.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

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
    conn.execute("INSERT INTO jobs (id, kind, state, title, started_at, updated_at) VALUES (?, ?, 'running', ?, ?, ?)",
                 (job_id, kind, title, now, now))
    return job_id


def progress(conn: sqlite3.Connection, job_id: str, **fields) -> None:
    allowed = {"bytes_done", "bytes_total", "files_done", "files_total", "message"}
    sets = {k: v for k, v in fields.items() if k in allowed}
    sets["updated_at"] = time.time()
    conn.execute(f"UPDATE jobs SET {', '.join(k + ' = ?' for k in sets)} WHERE id = ?", (*sets.values(), job_id))


def finish(conn: sqlite3.Connection, job_id: str, state: str, message: str = "", result: dict | None = None) -> None:
    now = time.time()
    conn.execute("UPDATE jobs SET state = ?, message = ?, result = ?, updated_at = ?, finished_at = ? WHERE id = ?",
                 (state, message, json.dumps(result, ensure_ascii=False) if result is not None else None, now, now,
                  job_id))


def get(conn: sqlite3.Connection, job_id: str) -> dict | None:
    row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return _row(row) if row else None


def recent(conn: sqlite3.Connection, kind: str | None = None, limit: int = 20) -> list[dict]:
    if kind:
        rows = conn.execute("SELECT * FROM jobs WHERE kind = ? ORDER BY started_at DESC LIMIT ?", (kind, limit))
    else:
        rows = conn.execute("SELECT * FROM jobs ORDER BY started_at DESC LIMIT ?", (limit,))
    return [_row(r) for r in rows]


def _row(row) -> dict:
    d = dict(row)
    d["result"] = json.loads(d["result"]) if d["result"] else None
    return d
