"""Usage retention SQL (:mod:`edgenode.node.usage.retention`), as functions that take the connection first.

Writers run inside the caller's transaction: folding, deleting and recording one chunk must commit together.
"""

from __future__ import annotations

import sqlite3


def chunk_end(conn: sqlite3.Connection, upto: int, cutoff: float, limit: int) -> tuple[int | None, int]:
    """``(newest seq, count)`` of the first ``limit`` events at or below ``upto`` and older than ``cutoff``."""
    row = conn.execute("SELECT max(seq), count(*) FROM (SELECT seq FROM usage_events WHERE seq <= ? AND at < ? "
                       "ORDER BY seq LIMIT ?)", (upto, cutoff, limit)).fetchone()
    return row[0], row[1]


def fold_into_totals(conn: sqlite3.Connection, upto: int, cutoff: float) -> None:
    """Add the plays, views and seconds of the events about to be deleted to ``usage_totals``."""
    conn.execute("""
        INSERT INTO usage_totals (resource_id, plays, views, seconds)
        SELECT resource_id, sum(kind = 'play_start'), sum(kind = 'view'), sum(seconds)
        FROM usage_events WHERE seq <= ? AND at < ? AND resource_id IS NOT NULL GROUP BY resource_id
        ON CONFLICT (resource_id) DO UPDATE SET plays = plays + excluded.plays,
            views = views + excluded.views, seconds = seconds + excluded.seconds""", (upto, cutoff))


def delete_events(conn: sqlite3.Connection, upto: int, cutoff: float) -> int:
    """Delete the events at or below ``upto`` and older than ``cutoff``; returns how many went."""
    return conn.execute("DELETE FROM usage_events WHERE seq <= ? AND at < ?", (upto, cutoff)).rowcount


def record_pruned(conn: sqlite3.Connection, upto: int, events: int, at: float) -> None:
    """Raise the pruned high-water mark to ``upto`` and add ``events`` to the pruned count."""
    conn.execute("""INSERT INTO usage_pruned (id, upto_seq, events, at) VALUES (1, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET upto_seq = max(upto_seq, excluded.upto_seq),
                        events = events + excluded.events, at = excluded.at""",
                 (upto, events, at))


def pruned_upto(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT upto_seq FROM usage_pruned WHERE id = 1").fetchone()
    return row[0] if row else 0
