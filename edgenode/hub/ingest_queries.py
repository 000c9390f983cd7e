"""Ingest SQL: batch rows (``hub_batches``), the per-day and per-month aggregates, the
terminal ids, and each node's batch counters in ``hub_nodes``.

Functions take the connection first.  The writers run inside the one transaction
:func:`edgenode.hub.ingest.ingest_batch` opens per batch, so a batch's figures
commit with its batch row or not at all.
"""

from __future__ import annotations

import sqlite3
from typing import Iterable, Iterator

# -- batch rows ------------------------------------------------------------------------------------


def batch_sha(db: sqlite3.Connection, node_id: str, batch_no: int) -> str | None:
    """The stored sha256 of this batch, None when it was never stored."""
    row = db.execute("SELECT sha256 FROM hub_batches WHERE node_id = ? AND batch_no = ?",
                     (node_id, batch_no)).fetchone()
    return None if row is None else row[0]


def insert_batch(db: sqlite3.Connection, node_id: str, batch_no: int, sha: str, header: dict, received_at: float,
                 source: str) -> None:
    # The primary key (node_id, batch_no) is the dedup guard: a racing second insert raises IntegrityError.
    db.execute("INSERT INTO hub_batches (node_id, batch_no, sha256, kind, count, first_seq, last_seq, "
               "sealed_at, received_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (node_id, batch_no, sha, header["kind"], header["count"], header["first_seq"],
                header["last_seq"], header["sealed_at"], received_at, source))


def batch_nos_after(db: sqlite3.Connection, node_id: str, after: int) -> Iterator[int]:
    """Stored batch numbers above ``after``, ascending; read lazily so a caller may stop early."""
    return (r[0] for r in db.execute("SELECT batch_no FROM hub_batches WHERE node_id = ? AND batch_no > ? "
                                     "ORDER BY batch_no", (node_id, after)))


def recent_batches(db: sqlite3.Connection, node_id: str, limit: int = 20) -> list[dict]:
    return [dict(r) for r in db.execute(
        "SELECT batch_no, kind, count, received_at, source FROM hub_batches WHERE node_id = ? "
        "ORDER BY batch_no DESC LIMIT ?", (node_id, limit))]


# -- aggregates ------------------------------------------------------------------------------------
# Upserts add: a batch reaches them once (its row above is the guard), so adding is exact.


def add_daily(db: sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Rows ``(node_id, day, column_key, kind, n, seconds, u_summarised, updated_at)``."""
    db.executemany(
        "INSERT INTO hub_daily (node_id, day, column_key, kind, n, seconds, u_summarised, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET n = n + excluded.n, "
        "seconds = seconds + excluded.seconds, u_summarised = u_summarised + excluded.u_summarised, "
        "updated_at = excluded.updated_at", rows)


def add_monthly(db: sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Rows ``(node_id, month, column_key, resource_id, kind, n, seconds)``."""
    db.executemany(
        "INSERT INTO hub_monthly (node_id, month, column_key, resource_id, kind, n, seconds) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET n = n + excluded.n, "
        "seconds = seconds + excluded.seconds", rows)


def add_monthly_col(db: sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Rows ``(month, node_id, column_key, kind, n, seconds)``."""
    db.executemany(
        "INSERT INTO hub_monthly_col (month, node_id, column_key, kind, n, seconds) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO UPDATE SET n = n + excluded.n, seconds = seconds + excluded.seconds", rows)


def add_monthly_res(db: sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Rows ``(month, column_key, resource_id, kind, n, seconds)``, resources only."""
    db.executemany(
        "INSERT INTO hub_monthly_res (month, column_key, resource_id, kind, n, seconds) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO UPDATE SET n = n + excluded.n, seconds = seconds + excluded.seconds", rows)


# -- terminal ids ----------------------------------------------------------------------------------


def add_terminals(db: sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Rows ``(node_id, month, column_key, resource_id, terminal)``."""
    db.executemany("INSERT OR IGNORE INTO hub_terminals (node_id, month, column_key, resource_id, terminal) "
                   "VALUES (?, ?, ?, ?, ?)", rows)


def add_terminals_col(db: sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Rows ``(month, node_id, column_key, terminal)``."""
    db.executemany("INSERT OR IGNORE INTO hub_terminals_col (month, node_id, column_key, terminal) "
                   "VALUES (?, ?, ?, ?)", rows)


def add_terminals_year_col(db: sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Rows ``(year, node_id, column_key, terminal)``."""
    db.executemany("INSERT OR IGNORE INTO hub_terminals_year_col (year, node_id, column_key, terminal) "
                   "VALUES (?, ?, ?, ?)", rows)


def add_terminals_year_node(db: sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Rows ``(year, node_id, terminal)``."""
    db.executemany("INSERT OR IGNORE INTO hub_terminals_year_node (year, node_id, terminal) VALUES (?, ?, ?)", rows)


def add_terminals_node(db: sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Rows ``(month, node_id, terminal)``."""
    db.executemany("INSERT OR IGNORE INTO hub_terminals_node (month, node_id, terminal) VALUES (?, ?, ?)", rows)


# -- the node's counters ---------------------------------------------------------------------------


def node_contiguous(db: sqlite3.Connection, node_id: str) -> int:
    return db.execute("SELECT contiguous FROM hub_nodes WHERE node_id = ?", (node_id,)).fetchone()[0]


def node_batch_marks(db: sqlite3.Connection, node_id: str) -> sqlite3.Row | None:
    """(contiguous, max_batch_no) of a node, None for an unknown one."""
    return db.execute("SELECT contiguous, max_batch_no FROM hub_nodes WHERE node_id = ?", (node_id,)).fetchone()


def count_batch_on_node(db: sqlite3.Connection, node_id: str, batch_no: int, contiguous: int, events: int,
                        at: float) -> None:
    db.execute("UPDATE hub_nodes SET contiguous = ?, max_batch_no = max(max_batch_no, ?), "
               "batches = batches + 1, events = events + ?, last_batch_at = ? WHERE node_id = ?",
               (contiguous, batch_no, events, at, node_id))


def stored_totals(db: sqlite3.Connection) -> tuple[int, int]:
    """(batches, events) stored over every node."""
    b, e = db.execute("SELECT coalesce(sum(batches), 0), coalesce(sum(events), 0) FROM hub_nodes").fetchone()
    return b, e
