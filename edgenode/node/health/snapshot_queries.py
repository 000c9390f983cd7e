"""Health snapshot SQL (:mod:`edgenode.node.health.snapshot`), as functions that take the connection first.

All of it reads: the catalogue's and the store's counts, the import history, the volatile ``jobs``
table, the integrity check and the newest recorded times.
"""

from __future__ import annotations

import sqlite3


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def visible_by_channel(conn: sqlite3.Connection) -> dict[str, int]:
    """Visible resources per channel (a resource without a channel counts under '')."""
    return {(r[0] or ""): r[1] for r in conn.execute(
        "SELECT channel, count(*) FROM resources WHERE visible = 1 GROUP BY channel")}


def blob_totals(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """``(blobs, bytes, blobs not ok)`` from the blobs table."""
    return tuple(conn.execute("SELECT count(*), coalesce(sum(size), 0), coalesce(sum(state != 'ok'), 0) FROM blobs"
                              ).fetchone())


def channel_seqs(conn: sqlite3.Connection) -> dict[str, int]:
    """The newest accepted bundle sequence per channel."""
    return {r[0]: r[1] for r in conn.execute("SELECT channel, seq FROM channel_state")}


def newest_store_check_id(conn: sqlite3.Connection) -> int | None:
    return conn.execute("SELECT max(id) FROM store_checks").fetchone()[0]


def newest_import_id(conn: sqlite3.Connection) -> int | None:
    return conn.execute("SELECT max(id) FROM imports").fetchone()[0]


def newest_import(conn: sqlite3.Connection) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM imports ORDER BY started_at DESC, id DESC LIMIT 1").fetchone()


def _newest_job(vconn: sqlite3.Connection, sql: str, kind: str) -> dict | None:
    row = vconn.execute(sql, (kind,)).fetchone()
    return dict(row) if row else None


def last_job_attempt(vconn: sqlite3.Connection, kind: str) -> dict | None:
    """``started_at`` and ``state`` of the newest job of this kind."""
    return _newest_job(vconn, "SELECT started_at, state FROM jobs WHERE kind = ? ORDER BY started_at DESC LIMIT 1",
                       kind)


def last_job_success(vconn: sqlite3.Connection, kind: str) -> dict | None:
    """``finished_at`` of the newest job of this kind that ended ``done``."""
    return _newest_job(vconn, "SELECT finished_at FROM jobs WHERE kind = ? AND state = 'done' "
                       "ORDER BY started_at DESC LIMIT 1", kind)


def last_job_failure(vconn: sqlite3.Connection, kind: str) -> dict | None:
    """``finished_at`` and ``message`` of the newest job of this kind that ended ``failed``."""
    return _newest_job(vconn, "SELECT finished_at, message FROM jobs WHERE kind = ? AND state = 'failed' "
                       "ORDER BY started_at DESC LIMIT 1", kind)


def quick_check_rows(conn: sqlite3.Connection) -> list[str]:
    """The lines ``PRAGMA quick_check`` answers: ``["ok"]`` for a sound database."""
    return [r[0] for r in conn.execute("PRAGMA quick_check")]


def newest_migration_at(conn: sqlite3.Connection) -> float | None:
    return conn.execute("SELECT max(applied_at) FROM schema_migrations").fetchone()[0]


def newest_store_check_at(conn: sqlite3.Connection) -> float | None:
    return conn.execute("SELECT max(at) FROM store_checks").fetchone()[0]
