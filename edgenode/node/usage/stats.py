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

from edgenode.node.usage import stats_queries as q


def period_starts(now: float | None = None) -> dict[str, float]:
    local = datetime.fromtimestamp(time.time() if now is None else now)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "today": today.timestamp(),
        "week": (today - timedelta(days=today.weekday())).timestamp(),
        "month": today.replace(day=1).timestamp(),
    }


def totals_since(conn: sqlite3.Connection, since: float) -> dict:
    row = q.event_totals_since(conn, since)
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
    rows = q.most_watched_rows(conn, since, limit)
    return [{**dict(r), "watch_hours": round(r["seconds"] / 3600, 2)} for r in rows]


def popular(conn: sqlite3.Connection, *, days: int = 30, limit: int = 8, now: float | None = None) -> list[dict]:
    """Visible resources most played or viewed lately, for the home page."""
    since = (time.time() if now is None else now) - days * 86400
    rows = q.popular_rows(conn, since, limit)
    return [dict(r) for r in rows]


def last_seq(conn: sqlite3.Connection) -> int:
    """The newest event's sequence number: cheap to poll, so caches can tell when usage changed."""
    return q.last_seq(conn)
