"""Service statistics for the annual assessment (年度考核).

Figures come straight from the per-day aggregates written with each batch
(``hub_daily``) plus the aggregates forwarded by downstream hubs
(``hub_tier_daily``), so they are exactly-once by construction:

* visits (服务人次): ``view`` events;
* plays: ``play_start`` events;
* watch hours: the sum of every event's seconds / 3600;
* unique terminals: distinct terminal ids per node (terminal ids are per node
  cookies); for summarised ("daily") batches and forwarded aggregates, the
  counts sent are added, an upper bound.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3

GROUPS = {  # group name -> (columns shown, SQL expression over the facts)
    "node": (("node_id", "name", "township"), ("node_id", "name", "township")),
    "township": (("township",), ("township",)),
    "column": (("column_key",), ("column_key",)),
    "resource": (("resource_id", "column_key"), ("resource_id", "column_key")),
    "month": (("month",), ("month",)),
    "day": (("day",), ("day",)),
}
GROUP_ZH = {"node": "服务点", "township": "乡镇", "column": "栏目", "resource": "资源", "month": "月份", "day": "日期"}
HEADERS_ZH = {"node_id": "节点编号", "name": "服务点", "township": "乡镇", "column_key": "栏目", "resource_id": "资源",
              "month": "月份", "day": "日期", "visits": "服务人次", "plays": "播放次数", "watch_hours": "观看时长（小时）",
              "unique_terminals": "终端数"}

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


def _per_resource(group: str, filters: dict) -> bool:
    return group == "resource" or bool(filters.get("resource_id"))


def _facts(group: str, filters: dict) -> tuple[str, bool]:
    """The facts subquery and whether it has a day column."""
    if group == "day" or filters.get("day"):
        return _DAILY_FACTS, True
    return (_MONTHLY_FACTS if _per_resource(group, filters) else _MONTHLY_COL_FACTS), False


_SUMMARISED = """
SELECT d.node_id, n.name, n.township, d.day, substr(d.day, 1, 7) AS month, d.column_key, '' AS resource_id,
       max(d.u_summarised) AS u
  FROM hub_daily d JOIN hub_nodes n ON n.node_id = d.node_id
 WHERE d.u_summarised > 0 GROUP BY d.node_id, d.day, d.column_key
"""


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


def check_filters(filters: dict) -> dict:
    out = {}
    for key, pattern in (("month", r"^\d{4}-\d{2}$"), ("year", r"^\d{4}$"), ("day", r"^\d{4}-\d{2}-\d{2}$")):
        v = (filters.get(key) or "").strip()
        if v and re.match(pattern, v):
            out[key] = v
    for key in ("node_id", "township", "column_key", "resource_id"):
        v = (filters.get(key) or "").strip()
        if v:
            out[key] = v[:100]
    return out


def table(conn: sqlite3.Connection, group: str = "node", filters: dict | None = None, *,
          limit: int | None = None) -> list[dict]:
    """Rows of visits, plays, watch hours and unique terminals grouped by ``group``."""
    if group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(GROUPS)}")
    filters = check_filters(filters or {})
    cols = ", ".join(GROUPS[group][1])
    facts, has_day = _facts(group, filters)
    where, args = _where(filters, has_day=has_day)
    rows = conn.execute(
        f"SELECT {cols}, sum(CASE WHEN kind = 'view' THEN n ELSE 0 END) AS visits, "
        f"sum(CASE WHEN kind = 'play_start' THEN n ELSE 0 END) AS plays, "
        f"round(sum(seconds) / 3600.0, 2) AS watch_hours FROM ({facts}){where} GROUP BY {cols} "
        f"ORDER BY visits DESC, {cols}" + (f" LIMIT {int(limit)}" if limit else ""), args).fetchall()
    uniq = _terminals(conn, group, filters)
    out = []
    for r in rows:
        d = dict(r)
        d["unique_terminals"] = uniq.get(tuple(d[c] for c in GROUPS[group][1]), 0)
        out.append(d)
    return out


def _terminals(conn, group: str, filters: dict) -> dict[tuple, int]:
    if group == "day" or filters.get("day"):
        return {}  # kept per month, not per day
    cols = ", ".join(GROUPS[group][1])
    where, args = _where(filters, has_day=False)
    # The narrowest table that still tells terminals apart for this grouping.  Terminal ids are
    # per node and each table's key makes (node, terminal) unique per row within a month, so
    # within one month a count(*) is exact; across months a terminal must be counted once.
    if _per_resource(group, filters):
        table, col_expr, res_expr = "hub_terminals", "h.column_key", "h.resource_id"
    elif group == "column" or filters.get("column_key"):
        table, col_expr, res_expr = "hub_terminals_col", "h.column_key", "''"
    else:
        table, col_expr, res_expr = "hub_terminals_node", "''", "''"
    count = "count(*)" if filters.get("month") or group == "month" else "count(DISTINCT node_id || ':' || terminal)"
    local = (f"SELECT h.node_id, n.name, n.township, h.month, {col_expr} AS column_key, {res_expr} AS resource_id, "
             f"h.terminal FROM {table} h JOIN hub_nodes n ON n.node_id = h.node_id")
    out = {tuple(r[:-1]): r[-1] for r in conn.execute(
        f"SELECT {cols}, {count} FROM ({local}){where} GROUP BY {cols}", args)}
    # Forwarded counts: the '*' row is the node's month total; per-column rows only by column.
    tier_col = "column_key <> '*'" if group in ("column", "resource") or filters.get("column_key") else "column_key = '*'"
    tier = ("SELECT t.node_id, coalesce(tn.name, '') AS name, coalesce(tn.township, '') AS township, t.month, "
            "t.column_key, '' AS resource_id, t.u FROM hub_tier_terminals t LEFT JOIN hub_tier_nodes tn "
            f"ON tn.origin = t.origin AND tn.node_id = t.node_id WHERE {tier_col.replace('column_key', 't.column_key')}")
    for r in conn.execute(f"SELECT {cols}, sum(u) FROM ({tier}){where} GROUP BY {cols}", args):
        key = tuple(r[:-1])
        out[key] = out.get(key, 0) + (r[-1] or 0)
    where2, args2 = _where(filters, has_day=True)
    for r in conn.execute(f"SELECT {cols}, sum(u) FROM ({_SUMMARISED}){where2} GROUP BY {cols}", args2):
        key = tuple(r[:-1])
        out[key] = out.get(key, 0) + (r[-1] or 0)
    return out


def totals(conn: sqlite3.Connection, filters: dict | None = None) -> dict:
    """One row of figures over everything matching ``filters``."""
    filters = check_filters(filters or {})
    facts, has_day = _facts("month", filters)
    where, args = _where(filters, has_day=has_day)
    r = conn.execute(f"SELECT coalesce(sum(CASE WHEN kind = 'view' THEN n END), 0) AS visits, "
                     f"coalesce(sum(CASE WHEN kind = 'play_start' THEN n END), 0) AS plays, "
                     f"coalesce(sum(n), 0) AS events, round(coalesce(sum(seconds), 0) / 3600.0, 2) AS watch_hours "
                     f"FROM ({facts}){where}", args).fetchone()
    return dict(r)


def months(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(f"SELECT DISTINCT month FROM ({_MONTHLY_COL_FACTS}) ORDER BY month DESC")]


def to_csv(rows: list[dict], group: str) -> str:
    fields = [*GROUPS[group][0], "visits", "plays", "watch_hours", "unique_terminals"]
    buf = io.StringIO()
    buf.write("\ufeff")  # Excel on county PCs opens UTF-8 CSV correctly only with a BOM
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([HEADERS_ZH.get(f, f) for f in fields])
    w.writerow(fields)
    for r in rows:
        w.writerow([r.get(f) for f in fields])
    return buf.getvalue()


def monthly_report(conn: sqlite3.Connection, month: str) -> dict:
    f = {"month": month}
    return {"month": month, "totals": totals(conn, f), "townships": table(conn, "township", f),
            "columns": table(conn, "column", f), "nodes": table(conn, "node", f),
            "resources": table(conn, "resource", f, limit=20)}
