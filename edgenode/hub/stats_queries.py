"""Statistics SQL: the figures and unique terminals of :mod:`edgenode.hub.stats`, read from
the aggregates ingest writes (``hub_daily``, ``hub_monthly``, ``hub_monthly_col``,
``hub_terminals*``) and those downstream hubs forward (``hub_tier_*``).

Functions take the connection first and only read.  ``cols`` are the grouping columns
of the facts (``stats.GROUPS``); ``filters`` are already checked (``stats.check_filters``).
"""

from __future__ import annotations

import sqlite3

from edgenode.protocol import figures as defs  # the definitions of visits, plays, watch hours and terminals

# The facts each table reads: the narrowest rollup that answers, plus the rows downstream hubs
# forwarded (per day; they are replaced, not added).  Node names and townships are joined in only
# when the grouping or a filter needs them: over a county's year that join is millions of lookups.
_ROLLUPS = {  # (per_day, per_resource) -> (table, day expression, month expression, resource expression)
    (True, False): ("hub_daily", "d.day", "substr(d.day, 1, 7)", "''"),
    (False, True): ("hub_monthly", "''", "d.month", "d.resource_id"),
    (False, False): ("hub_monthly_col", "''", "d.month", "''"),
}


def _facts_sql(*, per_day: bool, per_resource: bool, names: bool) -> str:
    table, day, month, res = _ROLLUPS[(per_day, per_resource and not per_day)]
    node_cols = "n.name, n.township" if names else "'' AS name, '' AS township"
    local = (f"SELECT d.node_id, {node_cols}, {day} AS day, {month} AS month, d.column_key, {res} AS resource_id, "
             f"d.kind, d.n, d.seconds FROM {table} d" + (" JOIN hub_nodes n ON n.node_id = d.node_id" if names else ""))
    if per_resource and not per_day:
        return local  # forwarded rows carry columns, never resources: they have no per-resource row
    tier_cols = "coalesce(tn.name, ''), coalesce(tn.township, '')" if names else "'', ''"
    tier_day = "t.day" if per_day else "''"
    tier = (f"SELECT t.node_id, {tier_cols}, {tier_day}, substr(t.day, 1, 7), t.column_key, '', t.kind, t.n, "
            "t.seconds FROM hub_tier_daily t"
            + (" LEFT JOIN hub_tier_nodes tn ON tn.origin = t.origin AND tn.node_id = t.node_id" if names else ""))
    return f"{local} UNION ALL {tier}"


_SUMMARISED = """
SELECT d.node_id, n.name, n.township, d.day, substr(d.day, 1, 7) AS month, d.column_key, '' AS resource_id,
       max(d.u_summarised) AS u
  FROM hub_daily d JOIN hub_nodes n ON n.node_id = d.node_id
 WHERE d.u_summarised > 0 GROUP BY d.node_id, d.day, d.column_key
"""


def _facts(*, per_day: bool, per_resource: bool, cols: tuple[str, ...] = ("name",), filters: dict | None = None) -> str:
    """The narrowest facts subquery that still answers: per day, per resource, or per column and month."""
    names = bool({"name", "township"} & set(cols)) or bool((filters or {}).get("township"))
    return _facts_sql(per_day=per_day, per_resource=per_resource, names=names)


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
    facts = _facts(per_day=per_day, per_resource=per_resource, cols=cols, filters=filters)
    where, args = _where(filters, has_day=per_day)
    return db.execute(
        f"SELECT {cols_sql}, sum(CASE WHEN kind = '{defs.VISIT}' THEN n ELSE 0 END) AS visits, "
        f"sum(CASE WHEN kind = '{defs.PLAY}' THEN n ELSE 0 END) AS plays, "
        f"round(sum(seconds) / 3600.0, 2) AS watch_hours FROM ({facts}){where} GROUP BY {cols_sql} "
        f"ORDER BY visits DESC, {cols_sql}" + (f" LIMIT {int(limit)}" if limit else ""), args).fetchall()


def totals(db: sqlite3.Connection, filters: dict, *, per_day: bool, per_resource: bool) -> dict:
    """Visits, plays, events and watch hours over everything matching ``filters``."""
    facts = _facts(per_day=per_day, per_resource=per_resource, cols=(), filters=filters)
    where, args = _where(filters, has_day=per_day)
    return dict(db.execute(f"SELECT coalesce(sum(CASE WHEN kind = '{defs.VISIT}' THEN n END), 0) AS visits, "
                           f"coalesce(sum(CASE WHEN kind = '{defs.PLAY}' THEN n END), 0) AS plays, "
                           f"coalesce(sum(n), 0) AS events, "
                           f"round(coalesce(sum(seconds), 0) / 3600.0, 2) AS watch_hours "
                           f"FROM ({facts}){where}", args).fetchone())


def months(db: sqlite3.Connection) -> list[str]:
    """Every month with figures, newest first."""
    facts = _facts(per_day=False, per_resource=False, cols=())
    return [r[0] for r in db.execute(f"SELECT DISTINCT month FROM ({facts}) ORDER BY month DESC")]


# -- unique terminals (kept per month, never per day) ----------------------------------------------


def local_terminals(db: sqlite3.Connection, cols: tuple[str, ...], filters: dict, *, per_resource: bool,
                    per_column: bool, within_month: bool = True) -> dict[tuple, int]:
    """``{cols values: terminals}`` from this hub's own terminal ids."""
    # The narrowest table that still tells terminals apart for this grouping.  Terminal ids are
    # per node, so the terminals of any group are the sum over its nodes of each node's distinct
    # ids: counted per node first (no join, no string keys), then summed per group, where the
    # node's name and township are joined to a few thousand rows instead of millions.
    if per_resource:
        table, col_expr, res_expr = "hub_terminals", "column_key", "resource_id"
    elif per_column:
        table, col_expr, res_expr = "hub_terminals_col", "column_key", "''"
    else:
        table, col_expr, res_expr = "hub_terminals_node", "''", "''"
    keys = [c for c in cols if c not in ("node_id", "name", "township")]
    exprs = {"month": "month", "column_key": col_expr, "resource_id": res_expr}
    inner_keys = "".join(f", {exprs[k]} AS {k}" for k in keys)
    group = "".join(f", {k}" for k in keys)
    one_year = filters.get("year") and not filters.get("month") and "month" not in keys and not per_resource
    if one_year:  # the per-year tables: each (node, [column,] terminal) once a year
        table = "hub_terminals_year_col" if per_column else "hub_terminals_year_node"
        inner_where, args = _where({k: v for k, v in filters.items() if k in ("node_id", "column_key")},
                                   has_day=False)
        inner_where, args = (inner_where + " AND" if inner_where else " WHERE") + " year = ?", [*args, filters["year"]]
    else:
        inner_where, args = _where({k: v for k, v in filters.items() if k != "township"}, has_day=False)
    count = ("count(*)" if one_year or (within_month and ("month" in keys or filters.get("month")))
             else "count(DISTINCT terminal)")
    inner = (f"SELECT node_id{inner_keys}, {count} AS u FROM {table}{inner_where} GROUP BY node_id{group}")
    outer_where, outer_args = _where({"township": filters.get("township")}, has_day=False)
    names = bool({"name", "township"} & set(cols)) or bool(filters.get("township"))
    sel = ", ".join(c if c not in ("name", "township", "node_id") else f"{'i' if c == 'node_id' else 'n'}.{c}"
                    for c in cols)
    join = " JOIN hub_nodes n ON n.node_id = i.node_id" if names else ""
    return {tuple(r[:-1]): r[-1] for r in db.execute(
        f"SELECT {sel}, sum(u) FROM ({inner}) i{join}{outer_where.replace('township', 'n.township')} "
        f"GROUP BY {sel}", [*args, *outer_args])}


def resource_figures(db: sqlite3.Connection, filters: dict, *, limit: int | None = None) -> list[sqlite3.Row]:
    """Visits, plays and watch hours per (resource, column) from the county-wide rollup
    (``hub_monthly_res``): for filters on period, column and resource only."""
    where, args = _where(filters, has_day=False)
    return db.execute(
        f"SELECT resource_id, column_key, sum(CASE WHEN kind = '{defs.VISIT}' THEN n ELSE 0 END) AS visits, "
        f"sum(CASE WHEN kind = '{defs.PLAY}' THEN n ELSE 0 END) AS plays, "
        f"round(sum(seconds) / 3600.0, 2) AS watch_hours FROM hub_monthly_res{where} GROUP BY resource_id, column_key "
        f"ORDER BY visits DESC, resource_id, column_key" + (f" LIMIT {int(limit)}" if limit else ""), args).fetchall()


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
