"""Province-view SQL: the county hubs enrolled here (``hub_nodes`` of kind 'hub') and what they reported.

Functions take the connection first; read-only.
"""

from __future__ import annotations

import sqlite3


def has_counties(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM hub_nodes WHERE kind = 'hub' AND revoked_at IS NULL LIMIT 1").fetchone() is not None


def counties(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """The county hubs enrolled here: ``node_id, name, version`` (its last report's), ``enrolled_at, revoked_at,
    last_batch_at`` (last report), ``batches`` (reports stored)."""
    return db.execute("SELECT node_id, name, township, version, enrolled_at, revoked_at, last_batch_at, batches "
                      "FROM hub_nodes WHERE kind = 'hub' ORDER BY name, node_id").fetchall()


def fleet_summaries(db: sqlite3.Connection) -> dict[str, tuple[str, float]]:
    """``{via: (body, at)}``: each county's latest fleet summary."""
    return {r[0]: (r[1], r[2]) for r in db.execute("SELECT via, body, at FROM hub_tier_fleet")}


def upsert_fleet(db: sqlite3.Connection, via: str, report_no: int, body: str, at: float) -> None:
    db.execute("INSERT INTO hub_tier_fleet (via, report_no, body, at) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE "
               "SET report_no = excluded.report_no, body = excluded.body, at = excluded.at "
               "WHERE excluded.report_no >= hub_tier_fleet.report_no", (via, report_no, body, at))


def visits_by_county(db: sqlite3.Connection, first_day: str, last_day: str) -> dict[str, int]:
    """服务人次 (``view`` events) per county hub between two statistics days, inclusive."""
    return dict(db.execute(
        "SELECT t.via, sum(d.n) FROM hub_tier_daily d JOIN hub_tier_nodes t ON t.origin = d.origin "
        "AND t.node_id = d.node_id WHERE d.kind = 'view' AND d.day BETWEEN ? AND ? GROUP BY t.via",
        (first_day, last_day)))


def nodes_by_county(db: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """``{via: (nodes, townships)}`` of the village nodes a county's reports named."""
    return {r[0]: (r[1], r[2]) for r in db.execute(
        "SELECT via, count(*), count(DISTINCT township) FROM hub_tier_nodes GROUP BY via")}
