"""SQL of the hub's live figures: ``live_view`` events per node and broadcast (``hub_monthly``)."""

from __future__ import annotations

import sqlite3


def live_views(conn: sqlite3.Connection, month: str | None = None) -> list[sqlite3.Row]:
    """``(node_id, name, township, broadcast, views, seconds)`` of enrolled nodes, one month or all."""
    where, args = ("AND m.month = ?", (month,)) if month else ("", ())
    return conn.execute(
        "SELECT m.node_id, n.name, n.township, m.resource_id AS broadcast, sum(m.n) AS views, "
        "sum(m.seconds) AS seconds FROM hub_monthly m JOIN hub_nodes n ON n.node_id = m.node_id "
        f"WHERE m.kind = 'live_view' {where} GROUP BY m.node_id, m.resource_id "
        "ORDER BY n.township, n.name, m.resource_id", args).fetchall()


def nodes(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Enrolled, unrevoked service points (not downstream hubs)."""
    return conn.execute("SELECT node_id, name, township FROM hub_nodes WHERE revoked_at IS NULL AND kind = 'node' "
                        "ORDER BY township, name").fetchall()
