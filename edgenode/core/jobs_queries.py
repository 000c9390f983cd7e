"""SQL of the volatile ``jobs`` table (:mod:`edgenode.core.jobs`), as functions that take the connection
first.  Writers open no transaction: each statement commits on its own in autocommit mode.
"""

from __future__ import annotations

import sqlite3


def insert_running(conn: sqlite3.Connection, job_id: str, kind: str, title: str, now: float) -> None:
    conn.execute("INSERT INTO jobs (id, kind, state, title, started_at, updated_at) VALUES (?, ?, 'running', ?, ?, ?)",
                 (job_id, kind, title, now, now))


def update_fields(conn: sqlite3.Connection, job_id: str, sets: dict) -> None:
    """Set these columns of one job; the column names come from the caller's fixed list, never from input."""
    conn.execute(f"UPDATE jobs SET {', '.join(k + ' = ?' for k in sets)} WHERE id = ?", (*sets.values(), job_id))


def update_finished(conn: sqlite3.Connection, job_id: str, state: str, message: str, result: str | None,
                    now: float) -> None:
    conn.execute("UPDATE jobs SET state = ?, message = ?, result = ?, updated_at = ?, finished_at = ? WHERE id = ?",
                 (state, message, result, now, now, job_id))


def job_row(conn: sqlite3.Connection, job_id: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()


def recent_rows(conn: sqlite3.Connection, kind: str | None, limit: int) -> list[sqlite3.Row]:
    """The newest ``limit`` jobs, of one kind when ``kind`` is given."""
    if kind:
        rows = conn.execute("SELECT * FROM jobs WHERE kind = ? ORDER BY started_at DESC LIMIT ?", (kind, limit))
    else:
        rows = conn.execute("SELECT * FROM jobs ORDER BY started_at DESC LIMIT ?", (limit,))
    return rows.fetchall()


def fail_running(conn: sqlite3.Connection, kinds: tuple[str, ...], started_since: float, message: str,
                 now: float) -> None:
    """Mark ``failed`` every job of these kinds still ``running`` that started at or after ``started_since``."""
    marks = ",".join("?" * len(kinds))
    conn.execute(f"UPDATE jobs SET state = 'failed', message = ?, updated_at = ?, finished_at = ? "
                 f"WHERE state = 'running' AND kind IN ({marks}) AND started_at >= ?",
                 (message, now, now, *kinds, started_since))
