"""SQL of the hub's live figures: ``live_view`` events per node and broadcast (``hub_monthly``)."""

from __future__ import annotations

import sqlite3


def _period(period: str | None) -> tuple[str, tuple]:
    """A month ``YYYY-MM``, a year ``YYYY`` (a range of the primary key's first column), or every month."""
    if not period:
        return "", ()
    if len(period) == 4:
        return "AND m.month BETWEEN ? AND ?", (f"{period}-01", f"{period}-12")
    return "AND m.month = ?", (period,)


def live_views(conn: sqlite3.Connection, period: str | None = None) -> list[sqlite3.Row]:
    """``(node_id, name, township, broadcast, views, seconds)`` of enrolled nodes: a month, a year, or all."""
    where, args = _period(period)
    return conn.execute(
        "SELECT m.node_id, n.name, n.township, m.resource_id AS broadcast, sum(m.n) AS views, "
        "sum(m.seconds) AS seconds FROM hub_monthly m JOIN hub_nodes n ON n.node_id = m.node_id "
        f"WHERE m.kind = 'live_view' {where} GROUP BY m.node_id, m.resource_id "
        "ORDER BY n.township, n.name, m.resource_id", args).fetchall()


def live_rows(conn: sqlite3.Connection, period: str) -> list[sqlite3.Row]:
    """``(node_id, name, township, month, broadcast, views, seconds)`` of a month or a year, in the report's order:
    one scan of the period's rows serves both live sections."""
    where, args = _period(period)
    return conn.execute(
        "SELECT m.node_id, n.name, n.township, m.month, m.resource_id AS broadcast, sum(m.n) AS views, "
        "sum(m.seconds) AS seconds FROM hub_monthly m JOIN hub_nodes n ON n.node_id = m.node_id "
        f"WHERE m.kind = 'live_view' {where} GROUP BY m.node_id, m.month, m.resource_id "
        "ORDER BY n.township, n.name, m.node_id, m.resource_id, m.month", args).fetchall()


def any_live(conn: sqlite3.Connection, period: str) -> bool:
    """Whether any point watched a broadcast in the period, from the county-wide per-resource rollup: a county
    without live broadcasts pays a few hundred rows for its report, not a scan of every node's."""
    where, args = _period(period)
    return conn.execute(f"SELECT 1 FROM hub_monthly_res m WHERE m.kind = 'live_view' {where} LIMIT 1",
                        args).fetchone() is not None


def nodes(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Enrolled, unrevoked service points (not downstream hubs)."""
    return conn.execute("SELECT node_id, name, township FROM hub_nodes WHERE revoked_at IS NULL AND kind = 'node' "
                        "ORDER BY township, name").fetchall()
