"""Usage figures for the dashboard and the portal's "popular" list.

Read-only SQL over ``usage_events`` (see ``schema.py``; all-time figures add
``usage_totals``, the folded remains of pruned events): a play is one
``play_start`` event; watch time is the sum of ``seconds`` that progress and
end beacons add.  Periods follow the appliance's local clock (today from
midnight, the week from Monday, the month from the 1st).
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timedelta


def period_starts(now: float | None = None) -> dict[str, float]:
    local = datetime.fromtimestamp(time.time() if now is None else now)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "today": today.timestamp(),
        "week": (today - timedelta(days=today.weekday())).timestamp(),
        "month": today.replace(day=1).timestamp(),
    }


def totals_since(conn: sqlite3.Connection, since: float) -> dict:
    row = conn.execute("""
        SELECT coalesce(sum(kind = 'play_start'), 0) AS plays,
               coalesce(sum(seconds), 0) AS seconds,
               coalesce(sum(kind = 'view'), 0) AS views,
               count(DISTINCT CASE WHEN kind = 'play_start' THEN terminal END) AS terminals
        FROM usage_events WHERE at >= ?""", (since,)).fetchone()
    return {"plays": row["plays"], "views": row["views"], "terminals": row["terminals"],
            "watch_hours": round(row["seconds"] / 3600, 2)}


def summary(conn: sqlite3.Connection, now: float | None = None) -> dict:
    """Plays, page views and watch hours for today, this week and this month."""
    return {name: totals_since(conn, start) for name, start in period_starts(now).items()}


def most_watched(conn: sqlite3.Connection, *, since: float = 0, limit: int = 10) -> list[dict]:
    """Resources by watch time, then plays; titles from the catalogue where still present.

    ``since=0`` means all time: the totals of events already pruned from the node
    (``usage/retention.py``) are added in.
    """
    pruned = ("UNION ALL SELECT resource_id, plays, seconds FROM usage_totals WHERE plays > 0 OR seconds > 0"
              if since <= 0 else "")  # a resource only ever viewed (a PDF) was never watched
    rows = conn.execute(f"""
        SELECT t.resource_id, sum(t.plays) AS plays, sum(t.seconds) AS seconds, r.title, r.kind, r.column_key
        FROM (SELECT resource_id, sum(kind = 'play_start') AS plays, sum(seconds) AS seconds
              FROM usage_events WHERE at >= ? AND resource_id IS NOT NULL
                   AND kind IN ('play_start', 'progress', 'play_end')
              GROUP BY resource_id {pruned}) t
        LEFT JOIN resources r ON r.id = t.resource_id
        GROUP BY t.resource_id ORDER BY seconds DESC, plays DESC, t.resource_id LIMIT ?""",
                        (since, limit)).fetchall()
    return [{**dict(r), "watch_hours": round(r["seconds"] / 3600, 2)} for r in rows]


def popular(conn: sqlite3.Connection, *, days: int = 30, limit: int = 8, now: float | None = None) -> list[dict]:
    """Visible resources most played or viewed lately, for the home page."""
    since = (time.time() if now is None else now) - days * 86400
    rows = conn.execute("""
        SELECT r.*, p.score FROM (
            SELECT resource_id, sum(CASE kind WHEN 'play_start' THEN 3 WHEN 'view' THEN 1 ELSE 0 END) AS score
            FROM usage_events WHERE at >= ? AND resource_id IS NOT NULL AND kind IN ('play_start', 'view')
            GROUP BY resource_id) p
        JOIN resources r ON r.id = p.resource_id AND r.visible = 1
        ORDER BY p.score DESC, r.added_at DESC LIMIT ?""", (since, limit)).fetchall()
    return [dict(r) for r in rows]


def last_seq(conn: sqlite3.Connection) -> int:
    """The newest event's sequence number: cheap to poll, so caches can tell when usage changed."""
    return conn.execute("SELECT coalesce(max(seq), 0) FROM usage_events").fetchone()[0]
