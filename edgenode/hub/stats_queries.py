"""Statistics SQL: the figures and unique terminals of :mod:`edgenode.hub.stats`, read from
the aggregates ingest writes (``hub_daily``, ``hub_monthly``, ``hub_monthly_col``,
``hub_terminals*``) and those downstream hubs forward (``hub_tier_*``).

Functions take the connection first and only read.  ``cols`` are the grouping columns
of the facts (``stats.GROUPS``); ``filters`` are already checked (``stats.check_filters``).
"""

from __future__ import annotations

import sqlite3

from edgenode.protocol import figures as defs  # the definitions of visits, plays, watch hours and terminals

_DAILY_FACTS = """
SELECT d.node_id, n.name, n.township, d.day, substr(d.day, 1, 7) AS month, d.column_key, '' AS resource_id,
       d.kind, d.n, d.seconds
  FROM hub_daily d JOIN hub_nodes n ON n.node_id = d.node_id
UNION ALL
SELECT t.node_id, coalesce(tn.name, ''), coalesce(tn.township, ''), t.day, substr(t.day, 1, 7), t.column_key, '',
       t.kind, t.n, t.seconds
  FROM hub_tier_daily t LEFT JOIN hub_tier_nodes tn ON tn.origin = t.origin AND tn.node_id = t.node_id
"""
# Month granularity reads the rollup; forwarded tier rows stay per day (they are replaced, not added).
_MONTHLY_FACTS = """
SELECT d.node_id, n.name, n.township, d.month, d.column_key, d.resource_id, d.kind, d.n, d.seconds
  FROM hub_monthly d JOIN hub_nodes n ON n.node_id = d.node_id
UNION ALL
SELECT t.node_id, coalesce(tn.name, ''), coalesce(tn.township, ''), substr(t.day, 1, 7), t.column_key, '',
       t.kind, t.n, t.seconds
  FROM hub_tier_daily t LEFT JOIN hub_tier_nodes tn ON tn.origin = t.origin AND tn.node_id = t.node_id
"""


_MONTHLY_COL_FACTS = """
SELECT d.node_id, n.name, n.township, d.month, d.column_key, '' AS resource_id, d.kind, d.n, d.seconds
  FROM hub_monthly_col d JOIN hub_nodes n ON n.node_id = d.node_id
UNION ALL
SELECT t.node_id, coalesce(tn.name, ''), coalesce(tn.township, ''), substr(t.day, 1, 7), t.column_key, '',
       t.kind, t.n, t.seconds
  FROM hub_tier_daily t LEFT JOIN hub_tier_nodes tn ON tn.origin = t.origin AND tn.node_id = t.node_id
"""


_SUMMARISED = """
SELECT d.node_id, n.name, n.township, d.day, substr(d.day, 1, 7) AS month, d.column_key, '' AS resource_id,
       max(d.u_summarised) AS u
  FROM hub_daily d JOIN hub_nodes n ON n.node_id = d.node_id
 WHERE d.u_summarised > 0 GROUP BY d.node_id, d.day, d.column_key
"""


def _facts(*, per_day: bool, per_resource: bool) -> str:
    """The narrowest facts subquery that still answers: per day, per resource, or per column and month."""
    if per_day:
        return _DAILY_FACTS
    return _MONTHLY_FACTS if per_resource else _MONTHLY_COL_FACTS


def _where(filters: dict, *, has_day: bool) -> tuple[str, list]:
    clauses, args = [], []
    for key in ("node_id", "township", "column_key", "resource_id"):
        if filters.get(key):
            clauses.append(f"{key} = ?")
            args.append(filters[key])
    # Ranges on the stored column (not substr()), so SQLite pushes them into each branch of
    # the UNION ALL and uses the day/month indexes.
    col = "day" if has_day else "month"
    if filters.get("month"):
        m = filters["month"]
        clauses.append(f"{col} >= ? AND {col} <= ?")
        args += [m + "-01", m + "-31"] if has_day else [m, m]
    if filters.get("year"):
        y = str(filters["year"])
        clauses.append(f"{col} >= ? AND {col} <= ?")
        args += [y + "-01-01", y + "-12-31"] if has_day else [y + "-01", y + "-12"]
    if has_day and filters.get("day"):
        clauses.append("day = ?")
        args.append(filters["day"])
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def figures(db: sqlite3.Connection, cols: tuple[str, ...], filters: dict, *, per_day: bool, per_resource: bool,
            limit: int | None = None) -> list[sqlite3.Row]:
    """Visits, plays and watch hours per ``cols``, most visits first."""
    cols_sql = ", ".join(cols)
    facts = _facts(per_day=per_day, per_resource=per_resource)
    where, args = _where(filters, has_day=per_day)
    return db.execute(
        f"SELECT {cols_sql}, sum(CASE WHEN kind = '{defs.VISIT}' THEN n ELSE 0 END) AS visits, "
        f"sum(CASE WHEN kind = '{defs.PLAY}' THEN n ELSE 0 END) AS plays, "
        f"round(sum(seconds) / 3600.0, 2) AS watch_hours FROM ({facts}){where} GROUP BY {cols_sql} "
        f"ORDER BY visits DESC, {cols_sql}" + (f" LIMIT {int(limit)}" if limit else ""), args).fetchall()


def totals(db: sqlite3.Connection, filters: dict, *, per_day: bool, per_resource: bool) -> dict:
    """Visits, plays, events and watch hours over everything matching ``filters``."""
    facts = _facts(per_day=per_day, per_resource=per_resource)
    where, args = _where(filters, has_day=per_day)
    return dict(db.execute(f"SELECT coalesce(sum(CASE WHEN kind = '{defs.VISIT}' THEN n END), 0) AS visits, "
                           f"coalesce(sum(CASE WHEN kind = '{defs.PLAY}' THEN n END), 0) AS plays, "
                           f"coalesce(sum(n), 0) AS events, "
                           f"round(coalesce(sum(seconds), 0) / 3600.0, 2) AS watch_hours "
                           f"FROM ({facts}){where}", args).fetchone())


def months(db: sqlite3.Connection) -> list[str]:
    """Every month with figures, newest first."""
    return [r[0] for r in db.execute(f"SELECT DISTINCT month FROM ({_MONTHLY_COL_FACTS}) ORDER BY month DESC")]


# -- unique terminals (kept per month, never per day) ----------------------------------------------


def local_terminals(db: sqlite3.Connection, cols: tuple[str, ...], filters: dict, *, per_resource: bool,
                    per_column: bool, within_month: bool) -> dict[tuple, int]:
    """``{cols values: terminals}`` from this hub's own terminal ids."""
    cols_sql = ", ".join(cols)
    where, args = _where(filters, has_day=False)
    # The narrowest table that still tells terminals apart for this grouping.  Terminal ids are
    # per node and each table's key makes (node, terminal) unique per row within a month, so
    # within one month a count(*) is exact; across months a terminal must be counted once.
    if per_resource:
        table, col_expr, res_expr = "hub_terminals", "h.column_key", "h.resource_id"
    elif per_column:
        table, col_expr, res_expr = "hub_terminals_col", "h.column_key", "''"
    else:
        table, col_expr, res_expr = "hub_terminals_node", "''", "''"
    count = "count(*)" if within_month else "count(DISTINCT node_id || ':' || terminal)"
    local = (f"SELECT h.node_id, n.name, n.township, h.month, {col_expr} AS column_key, {res_expr} AS resource_id, "
             f"h.terminal FROM {table} h JOIN hub_nodes n ON n.node_id = h.node_id")
    return {tuple(r[:-1]): r[-1] for r in db.execute(
        f"SELECT {cols_sql}, {count} FROM ({local}){where} GROUP BY {cols_sql}", args)}


def forwarded_terminals(db: sqlite3.Connection, cols: tuple[str, ...], filters: dict, *,
                        per_column: bool) -> list[tuple[tuple, int | None]]:
    """``(cols values, terminals)`` as counted by the downstream hubs."""
    cols_sql = ", ".join(cols)
    where, args = _where(filters, has_day=False)
    # The '*' row is the node's month total; per-column rows serve only a per-column grouping.
    tier_col = "column_key <> '*'" if per_column else "column_key = '*'"
    tier = ("SELECT t.node_id, coalesce(tn.name, '') AS name, coalesce(tn.township, '') AS township, t.month, "
            "t.column_key, '' AS resource_id, t.u FROM hub_tier_terminals t LEFT JOIN hub_tier_nodes tn "
            f"ON tn.origin = t.origin AND tn.node_id = t.node_id WHERE {tier_col.replace('column_key', 't.column_key')}")
    return [(tuple(r[:-1]), r[-1]) for r in db.execute(
        f"SELECT {cols_sql}, sum(u) FROM ({tier}){where} GROUP BY {cols_sql}", args)]


def summarised_terminals(db: sqlite3.Connection, cols: tuple[str, ...],
                         filters: dict) -> list[tuple[tuple, int | None]]:
    """``(cols values, terminals)`` sent as counts with summarised ("daily") batches."""
    cols_sql = ", ".join(cols)
    where, args = _where(filters, has_day=True)
    return [(tuple(r[:-1]), r[-1]) for r in db.execute(
        f"SELECT {cols_sql}, sum(u) FROM ({_SUMMARISED}){where} GROUP BY {cols_sql}", args)]
