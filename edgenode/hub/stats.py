"""Service statistics for the annual assessment (年度考核).

The figures are defined once for node and hub in ``protocol/figures.py``.  They come straight from the per-day aggregates written with each batch
(``hub_daily``) plus the aggregates forwarded by downstream hubs
(``hub_tier_daily``), so they are exactly-once by construction:

* visits (服务人次): ``view`` events;
* plays: ``play_start`` events;
* watch hours: the sum of every event's seconds / 3600;
* unique terminals: distinct terminal ids per node (terminal ids are per node
  cookies); for summarised ("daily") batches and forwarded aggregates, the
  counts sent are added, an upper bound.

Rows are keyed by ids; :func:`labelled` adds what staff read (titles, names,
Chinese column names), and a page view that is about no resource (the home page,
a column's list) has no place in the per-resource table: its row would have a
blank resource.  It still counts in every other table, under 栏目以外的页面
when it belongs to no column either.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3

from edgenode.hub import stats_queries as q, titles_queries
from edgenode.protocol.metadata import COLUMNS

GROUPS = {  # group name -> (columns shown, SQL expression over the facts)
    "node": (("node_id", "name", "township"), ("node_id", "name", "township")),
    "township": (("township",), ("township",)),
    "column": (("column_key",), ("column_key",)),
    "resource": (("resource_id", "column_key"), ("resource_id", "column_key")),
    "month": (("month",), ("month",)),
    "day": (("day",), ("day",)),
}
GROUP_ZH = {"node": "服务点", "township": "乡镇", "column": "栏目", "resource": "资源", "month": "月份", "day": "日期"}
HEADERS_ZH = {"node_id": "节点编号", "name": "服务点", "township": "乡镇", "column_key": "栏目编号", "resource_id": "资源编号",
              "month": "月份", "day": "日期", "visits": "服务人次", "plays": "播放次数", "watch_hours": "观看时长（小时）",
              "unique_terminals": "终端数", "title": "资源", "column_name": "栏目"}
NO_COLUMN = "栏目以外的页面（首页、活动等）"
NO_TOWNSHIP = "未填乡镇"
FIGURES = ("visits", "plays", "watch_hours", "unique_terminals")


def _per_day(group: str, filters: dict) -> bool:
    return group == "day" or bool(filters.get("day"))


def _per_resource(group: str, filters: dict) -> bool:
    return group == "resource" or bool(filters.get("resource_id"))


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
    if group == "resource" and not {"node_id", "township", "day"} & set(filters):
        return _county_resources(conn, filters, limit)
    rows = q.figures(conn, GROUPS[group][1], filters, per_day=_per_day(group, filters),
                     per_resource=_per_resource(group, filters), limit=limit)
    uniq = _terminals(conn, group, filters)
    out = []
    for r in rows:
        d = dict(r)
        if group == "resource" and not d["resource_id"]:
            continue  # page views about no resource: counted in the totals and every other table
        d["unique_terminals"] = uniq.get(tuple(d[c] for c in GROUPS[group][1]), 0)
        out.append(d)
    return out


def _county_resources(conn, filters: dict, limit: int | None) -> list[dict]:
    """The per-resource table over the whole county, from the rollups kept for it (a county's
    year is millions of per-node rows).  Forwarded and summarised figures carry no resource."""
    uniq = q.local_terminals(conn, GROUPS["resource"][1], filters, per_resource=True, per_column=True,
                             within_month=bool(filters.get("month")))
    return [{**dict(r), "unique_terminals": uniq.get((r["resource_id"], r["column_key"]), 0)}
            for r in q.resource_figures(conn, filters, limit=limit) if r["resource_id"]]


def column_name(key: str) -> str:
    return COLUMNS.get(key, key) if key else NO_COLUMN


def labelled(conn: sqlite3.Connection, rows: list[dict]) -> list[dict]:
    """``rows`` with what staff read beside the ids: ``title``, ``column_name``, a ``name`` and
    ``township`` that are never blank."""
    titles = titles_queries.titles(conn) if any("resource_id" in r for r in rows) else {}
    out = []
    for r in rows:
        d = dict(r)
        if "resource_id" in d:
            d["title"] = titles.get(d["resource_id"]) or f"标题未知（{d['resource_id']}）"
        if "column_key" in d:
            d["column_name"] = column_name(d["column_key"])
        if "name" in d and not d["name"]:
            d["name"] = f"未命名服务点（{d.get('node_id', '')[:8]}）"
        if "township" in d and not d["township"]:
            d["township"] = NO_TOWNSHIP
        out.append(d)
    return out


def _terminals(conn, group: str, filters: dict) -> dict[tuple, int]:
    if _per_day(group, filters):
        return {}  # kept per month, not per day
    cols = GROUPS[group][1]
    out = q.local_terminals(conn, cols, filters, per_resource=_per_resource(group, filters),
                            per_column=group == "column" or bool(filters.get("column_key")),
                            within_month=bool(filters.get("month")) or group == "month")
    # Forwarded and summarised counts are added: an upper bound (see the module's docstring).
    forwarded = q.forwarded_terminals(
        conn, cols, filters, per_column=group in ("column", "resource") or bool(filters.get("column_key")))
    for key, u in [*forwarded, *q.summarised_terminals(conn, cols, filters)]:
        out[key] = out.get(key, 0) + (u or 0)
    return out


def totals(conn: sqlite3.Connection, filters: dict | None = None) -> dict:
    """One row of figures over everything matching ``filters``."""
    filters = check_filters(filters or {})
    return q.totals(conn, filters, per_day=_per_day("month", filters), per_resource=_per_resource("month", filters))


def months(conn: sqlite3.Connection) -> list[str]:
    return q.months(conn)


CSV_LABELS = {"column_key": ("column_name",), "resource_id": ("resource_id", "title")}


def to_csv(rows: list[dict], group: str) -> str:
    """``rows`` as labelled by :func:`labelled`; ids keep their column beside the names."""
    keys = [k for c in GROUPS[group][0] for k in CSV_LABELS.get(c, (c,))]
    fields = [*keys, *FIGURES]
    buf = io.StringIO()
    buf.write("\ufeff")  # Excel on county PCs opens UTF-8 CSV correctly only with a BOM
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([HEADERS_ZH.get(f, f) for f in fields])
    w.writerow(fields)
    for r in rows:
        w.writerow([r.get(f) for f in fields])
    return buf.getvalue()


