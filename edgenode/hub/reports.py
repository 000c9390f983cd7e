"""Reports for the annual assessment (年度考核): one month or one year of the county's figures,
per township, service point, column and resource, and the live-broadcast duty per service point
(:func:`edgenode.hub.live.report_sections`), as a page, a CSV, an .xlsx and a PDF.

:func:`build` computes the figures once (through :mod:`edgenode.hub.stats`, so they are the
statistics pages' figures) and every format (:mod:`edgenode.hub.reports_write`) writes that same
dict, so the page and the three exports cannot disagree.  Rows carry names and titles, never bare
ids, and never a blank cell: see ``stats.labelled``.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta, timezone

from edgenode.core.errors import EdgenodeError
from edgenode.hub import live, stats

# (key, title, stats group, label fields with their headers)
BREAKDOWNS = (
    ("township", "按乡镇", "township", (("township", "乡镇"),)),
    ("node", "按服务点", "node", (("name", "服务点"), ("township", "乡镇"))),
    ("column", "按栏目", "column", (("column_name", "栏目"),)),
    ("resource", "按资源", "resource", (("title", "资源"), ("column_name", "栏目"))),
)
FIGURES = (("visits", "服务人次"), ("plays", "播放次数"), ("watch_hours", "观看时长（小时）"),
           ("unique_terminals", "终端数"))
FIGURE_FORMATS = ["#,##0", "#,##0", "#,##0.00", "#,##0"]  # the .xlsx number formats of FIGURES
PERIOD_RE = re.compile(r"^([0-9]{4})(?:-(0[1-9]|1[0-2]))?$")


def check_period(period: str) -> dict:
    """``{"month": "YYYY-MM"}`` or ``{"year": "YYYY"}``; anything else is refused."""
    m = PERIOD_RE.match(period or "")
    if not m:
        raise EdgenodeError("E_REPORT_PERIOD", f"period {period[:20]!r}: give YYYY-MM or YYYY",
                            zh="报表期间应为“年-月”（如2026-11）或年份（如2026）。", status=404)
    return {"month": period} if m.group(2) else {"year": period}


def period_zh(period: str) -> str:
    year, _, month = period.partition("-")
    return f"{year}年{int(month)}月" if month else f"{year}年"


def made_at(offset_hours: float, now: float | None = None) -> str:
    """The time the report was made, in the statistics time zone, saying which."""
    tz = timezone(timedelta(hours=offset_hours))
    dt = datetime.now(tz) if now is None else datetime.fromtimestamp(now, tz)
    sign = "+" if offset_hours >= 0 else "-"
    return dt.strftime("%Y-%m-%d %H:%M") + f"（UTC{sign}{abs(offset_hours):g}）"


def months_due(year: str, offset_hours: float, now: float | None = None) -> int:
    """How many months of ``year`` have begun, in the statistics time zone: 12 for a past year."""
    tz = timezone(timedelta(hours=offset_hours))
    today = datetime.now(tz) if now is None else datetime.fromtimestamp(now, tz)
    return 12 if today.year > int(year) else today.month if today.year == int(year) else 0


def build(conn: sqlite3.Connection, period: str, *, county: str, offset_hours: float = 8.0,
          now: float | None = None, live_titles: dict | None = None) -> dict:
    """The report: ``county``, ``period``, ``title``, ``made``, ``totals``, ``totals_row`` and ``sections``,
    each ``{"key", "title", "headers", "labels", "formats", "rows"}``: rows are lists of cells, ``labels``
    leading cells that name the row, then figures whose .xlsx number formats are ``formats``.

    ``live_titles`` (``live.titles(cfg)``: the county's scheduled broadcasts) names the broadcasts.  The two
    live sections follow the breakdowns when the county has a live schedule or a point reported watching a
    broadcast in the period; a hub that has neither gets the report without them."""
    filters = check_period(period)
    sections, node_terminals = [], 0
    for key, title, group, labels in BREAKDOWNS:
        rows = stats.labelled(conn, stats.table(conn, group, filters))
        if key == "node":
            node_terminals = sum(r["unique_terminals"] for r in rows)
        sections.append({"key": key, "title": title, "headers": [h for _, h in labels] + [h for _, h in FIGURES],
                         "labels": len(labels), "formats": FIGURE_FORMATS,
                         "rows": [[r[f] for f, _ in labels] + [r[f] for f, _ in FIGURES] for r in rows]})
    totals = stats.totals(conn, filters)
    # Terminal ids are per node, so the county's terminals are the sum over its service points.
    totals["unique_terminals"] = node_terminals
    due = months_due(period, offset_hours, now) if "year" in filters else 12
    live_sections = live.report_sections(conn, period, live_titles, months_due=due)
    if live_titles or any(s["rows"] for s in live_sections if s["key"] != "live_duty"):
        sections += live_sections
    kind = "月报" if "month" in filters else "年报"
    return {"county": county, "period": period, "period_zh": period_zh(period),
            "title": f"{county} {period_zh(period)}公共文化服务{kind}", "made": made_at(offset_hours, now),
            "totals": totals, "totals_row": [totals[f] for f, _ in FIGURES], "sections": sections,
            "figures": [h for _, h in FIGURES], "figure_formats": FIGURE_FORMATS}


