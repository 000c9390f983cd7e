"""Usage figures SQL (:mod:`edgenode.node.usage.stats`): read-only, functions that take the connection first."""

from __future__ import annotations

import sqlite3

from edgenode.protocol import figures


def event_totals_since(conn: sqlite3.Connection, since: float) -> sqlite3.Row:
    """Plays, seconds, views and terminals of the events since ``since``, as defined in
    ``protocol/figures.py`` (the hub counts the same way)."""
    return conn.execute("""
        SELECT coalesce(sum(kind = ?), 0) AS plays,
               coalesce(sum(seconds), 0) AS seconds,
               coalesce(sum(kind = ?), 0) AS views,
               count(DISTINCT CASE WHEN terminal <> ? THEN terminal END) AS terminals
        FROM usage_events WHERE at >= ?""", (figures.PLAY, figures.VISIT, figures.ANONYMOUS, since)).fetchone()


def most_watched_rows(conn: sqlite3.Connection, since: float, limit: int) -> list[sqlite3.Row]:
    """Resources by watch time then plays, with catalogue title, kind and column where still present.

    ``since <= 0`` adds the folded totals of pruned events (``usage_totals``).
    """
    pruned = ("UNION ALL SELECT resource_id, plays, seconds FROM usage_totals WHERE plays > 0 OR seconds > 0"
              if since <= 0 else "")  # a resource only ever viewed (a PDF) was never watched
    return conn.execute(f"""
        SELECT t.resource_id, sum(t.plays) AS plays, sum(t.seconds) AS seconds, r.title, r.kind, r.column_key
        FROM (SELECT resource_id, sum(kind = 'play_start') AS plays, sum(seconds) AS seconds
              FROM usage_events WHERE at >= ? AND resource_id IS NOT NULL
                   AND kind IN ('play_start', 'progress', 'play_end')
              GROUP BY resource_id {pruned}) t
        LEFT JOIN resources r ON r.id = t.resource_id
        GROUP BY t.resource_id ORDER BY seconds DESC, plays DESC, t.resource_id LIMIT ?""",
                        (since, limit)).fetchall()


def popular_rows(conn: sqlite3.Connection, since: float, limit: int) -> list[sqlite3.Row]:
    """Visible resources (every column, plus ``score``) by plays x3 + views since ``since``, newest first on a tie."""
    return conn.execute("""
        SELECT r.*, p.score FROM (
            SELECT resource_id, sum(CASE kind WHEN 'play_start' THEN 3 WHEN 'view' THEN 1 ELSE 0 END) AS score
            FROM usage_events WHERE at >= ? AND resource_id IS NOT NULL AND kind IN ('play_start', 'view')
            GROUP BY resource_id) p
        JOIN resources r ON r.id = p.resource_id AND r.visible = 1
        ORDER BY p.score DESC, r.added_at DESC LIMIT ?""", (since, limit)).fetchall()


def last_seq(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(seq), 0) FROM usage_events").fetchone()[0]
