"""Link back-off SQL (``sync_link``, :mod:`edgenode.node.sync.probe`), as functions that take the connection
first.  Writers run inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3


def next_try_at(conn: sqlite3.Connection, target: str) -> float | None:
    """When ``target`` may be tried again, or None when it never failed."""
    row = conn.execute("SELECT next_try_at FROM sync_link WHERE target = ?", (target,)).fetchone()
    return row["next_try_at"] if row else None


def failures(conn: sqlite3.Connection, target: str) -> int:
    """Consecutive failures recorded for ``target`` (0 without a row)."""
    row = conn.execute("SELECT failures FROM sync_link WHERE target = ?", (target,)).fetchone()
    return row["failures"] if row else 0


def record_failure(conn: sqlite3.Connection, target: str, failures: int, next_try_at: float, error: str) -> None:
    conn.execute("INSERT INTO sync_link (target, failures, next_try_at, last_error) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT(target) DO UPDATE SET failures = excluded.failures, "
                 "next_try_at = excluded.next_try_at, last_error = excluded.last_error",
                 (target, failures, next_try_at, error))


def record_success(conn: sqlite3.Connection, target: str, now: float) -> None:
    """Clear ``target``'s failures and back-off and stamp ``last_ok_at``."""
    conn.execute("INSERT INTO sync_link (target, failures, next_try_at, last_error, last_ok_at) "
                 "VALUES (?, 0, 0, '', ?) ON CONFLICT(target) DO UPDATE SET failures = 0, next_try_at = 0, "
                 "last_error = '', last_ok_at = excluded.last_ok_at", (target, now))


def link_rows(conn: sqlite3.Connection) -> list[dict]:
    return [dict(r) for r in conn.execute("SELECT * FROM sync_link ORDER BY target")]
