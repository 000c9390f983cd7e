"""Tier SQL: this hub's upstream (``hub_upstream``), the reads that build a report for it,
and what downstream hubs report here (``hub_tier_reports``, ``hub_tier_nodes``,
``hub_tier_daily``, ``hub_tier_terminals``).

Functions take the connection first.  Writers run inside the caller's transaction
(:mod:`edgenode.hub.tiers` owns it).
"""

from __future__ import annotations

import sqlite3

# -- this hub's upstream ---------------------------------------------------------------------------


def upstream(db: sqlite3.Connection) -> sqlite3.Row | None:
    """The one upstream row (id 1), None when this hub is not enrolled upstream."""
    return db.execute("SELECT * FROM hub_upstream WHERE id = 1").fetchone()


def set_upstream(db: sqlite3.Connection, url: str, enrolled_at: float) -> None:
    db.execute("INSERT INTO hub_upstream (id, url, enrolled_at) VALUES (1, ?, ?) "
               "ON CONFLICT (id) DO UPDATE SET url = excluded.url, enrolled_at = excluded.enrolled_at",
               (url, enrolled_at))


def set_pending_report(db: sqlite3.Connection, report_no: int, body: bytes, cutoff: float) -> None:
    # Kept until acknowledged and resent byte for byte, so a lost answer reads "duplicate" upstream.
    db.execute("UPDATE hub_upstream SET pending_no = ?, pending_body = ?, pending_cutoff = ? WHERE id = 1",
               (report_no, body, cutoff))


def acknowledge_pending_report(db: sqlite3.Connection, sent_at: float) -> None:
    db.execute("UPDATE hub_upstream SET last_report_no = pending_no, cutoff = pending_cutoff, "
               "pending_no = NULL, pending_body = NULL, pending_cutoff = NULL, last_sent_at = ? WHERE id = 1",
               (sent_at,))


# -- building a report -----------------------------------------------------------------------------


def touched_daily(db: sqlite3.Connection, since: float) -> list[list]:
    """``[node_id, day, column_key, kind, n, seconds]`` of every (node, day) with a row updated after ``since``."""
    touched = "SELECT DISTINCT node_id, day FROM hub_daily WHERE updated_at > ?"
    return [list(r) for r in db.execute(
        f"SELECT d.node_id, d.day, d.column_key, d.kind, sum(d.n), sum(d.seconds) FROM hub_daily d "
        f"JOIN ({touched}) t ON t.node_id = d.node_id AND t.day = d.day GROUP BY 1, 2, 3, 4", (since,))]


def summarised_terminals_by_column(db: sqlite3.Connection, node_id: str, month: str) -> dict[str, int]:
    """Terminal counts the node sent with summarised ("daily") batches in a month, per column."""
    return dict(db.execute(
        "SELECT column_key, sum(u) FROM (SELECT column_key, day, max(u_summarised) AS u FROM hub_daily "
        "WHERE node_id = ? AND substr(day, 1, 7) = ? AND u_summarised > 0 GROUP BY column_key, day) "
        "GROUP BY column_key", (node_id, month)))


def terminals_by_column(db: sqlite3.Connection, node_id: str, month: str) -> dict[str, int]:
    return dict(db.execute("SELECT column_key, count(DISTINCT terminal) FROM hub_terminals "
                           "WHERE node_id = ? AND month = ? GROUP BY column_key", (node_id, month)))


def terminals_in_month(db: sqlite3.Connection, node_id: str, month: str) -> int:
    return db.execute("SELECT count(DISTINCT terminal) FROM hub_terminals WHERE node_id = ? AND month = ?",
                      (node_id, month)).fetchone()[0]


def village_nodes(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """(node_id, name, township) of nodes enrolled as village nodes, not as hubs."""
    return db.execute("SELECT node_id, name, township FROM hub_nodes WHERE kind = 'node'").fetchall()


def tier_daily_since(db: sqlite3.Connection, since: float) -> list[list]:
    return [list(r) for r in db.execute("SELECT origin, node_id, day, column_key, kind, n, seconds "
                                        "FROM hub_tier_daily WHERE updated_at > ?", (since,))]


def tier_terminals_since(db: sqlite3.Connection, since: float) -> list[list]:
    return [list(r) for r in db.execute("SELECT origin, node_id, month, column_key, u "
                                        "FROM hub_tier_terminals WHERE updated_at > ?", (since,))]


def tier_nodes(db: sqlite3.Connection) -> list[sqlite3.Row]:
    return db.execute("SELECT origin, node_id, name, township FROM hub_tier_nodes").fetchall()


# -- reports received from downstream hubs ---------------------------------------------------------


def report_sha(db: sqlite3.Connection, via: str, report_no: int) -> str | None:
    row = db.execute("SELECT sha256 FROM hub_tier_reports WHERE via = ? AND report_no = ?", (via, report_no)).fetchone()
    return None if row is None else row[0]


def insert_report(db: sqlite3.Connection, via: str, report_no: int, sha: str, received_at: float, rows: int) -> None:
    db.execute("INSERT INTO hub_tier_reports (via, report_no, sha256, received_at, rows) VALUES (?, ?, ?, ?, ?)",
               (via, report_no, sha, received_at, rows))


def upsert_tier_nodes(db: sqlite3.Connection, rows: list[tuple]) -> None:
    """Rows ``(origin, node_id, name, township, via)``."""
    db.executemany("INSERT INTO hub_tier_nodes (origin, node_id, name, township, via) VALUES (?, ?, ?, ?, ?) "
                   "ON CONFLICT DO UPDATE SET name = excluded.name, township = excluded.township, via = excluded.via",
                   rows)


# Forwarded figures are absolute: replace, never add, and never let an older report win.

def replace_tier_daily(db: sqlite3.Connection, rows: list[tuple]) -> None:
    """Rows ``(origin, node_id, day, column_key, kind, n, seconds, report_no, updated_at)``."""
    db.executemany(
        "INSERT INTO hub_tier_daily (origin, node_id, day, column_key, kind, n, seconds, report_no, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET n = excluded.n, seconds = excluded.seconds, "
        "report_no = excluded.report_no, updated_at = excluded.updated_at "
        "WHERE excluded.report_no >= hub_tier_daily.report_no", rows)


def replace_tier_terminals(db: sqlite3.Connection, rows: list[tuple]) -> None:
    """Rows ``(origin, node_id, month, column_key, u, report_no, updated_at)``."""
    db.executemany(
        "INSERT INTO hub_tier_terminals (origin, node_id, month, column_key, u, report_no, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET u = excluded.u, report_no = excluded.report_no, "
        "updated_at = excluded.updated_at WHERE excluded.report_no >= hub_tier_terminals.report_no", rows)


def count_report_on_hub(db: sqlite3.Connection, via: str, at: float) -> None:
    """Count a stored report on the downstream hub's own row, as a batch is counted on a node's."""
    db.execute("UPDATE hub_nodes SET last_batch_at = ?, batches = batches + 1 WHERE node_id = ?", (at, via))
