"""Reports for the annual assessment (年度考核): one month or one year of the county's figures,
per township, service point, column and resource, as a page, a CSV, an .xlsx and a PDF.

:func:`build` computes the figures once (through :mod:`edgenode.hub.stats`, so they are the
statistics pages' figures) and every format writes that same dict, so the page and the three
exports cannot disagree.  Rows carry names and titles, never bare ids, and never a blank cell:
see ``stats.labelled``.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from datetime import datetime, timedelta, timezone

from edgenode.core.errors import EdgenodeError
from edgenode.hub import stats

# (key, title, stats group, label fields with their headers)
BREAKDOWNS = (
    ("township", "按乡镇", "township", (("township", "乡镇"),)),
    ("node", "按服务点", "node", (("name", "服务点"), ("township", "乡镇"))),
    ("column", "按栏目", "column", (("column_name", "栏目"),)),
    ("resource", "按资源", "resource", (("title", "资源"), ("column_name", "栏目"))),
)
FIGURES = (("visits", "服务人次"), ("plays", "播放次数"), ("watch_hours", "观看时长（小时）"),
           ("unique_terminals", "终端数"))
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


def build(conn: sqlite3.Connection, period: str, *, county: str, offset_hours: float = 8.0,
          now: float | None = None) -> dict:
    """The report: ``county``, ``period``, ``title``, ``made``, ``totals`` and ``sections``, each
    ``{"key", "title", "headers", "rows"}`` with rows as lists of cells (labels, then figures)."""
    filters = check_period(period)
    sections, node_terminals = [], 0
    for key, title, group, labels in BREAKDOWNS:
        rows = stats.labelled(conn, stats.table(conn, group, filters))
        if key == "node":
            node_terminals = sum(r["unique_terminals"] for r in rows)
        sections.append({"key": key, "title": title, "headers": [h for _, h in labels] + [h for _, h in FIGURES],
                         "labels": len(labels),
                         "rows": [[r[f] for f, _ in labels] + [r[f] for f, _ in FIGURES] for r in rows]})
    totals = stats.totals(conn, filters)
    # Terminal ids are per node, so the county's terminals are the sum over its service points.
    totals["unique_terminals"] = node_terminals
    kind = "月报" if "month" in filters else "年报"
    return {"county": county, "period": period, "period_zh": period_zh(period),
            "title": f"{county} {period_zh(period)}公共文化服务{kind}", "made": made_at(offset_hours, now),
            "totals": totals, "sections": sections, "figures": [h for _, h in FIGURES]}


def totals_row(report: dict) -> list:
    return [report["totals"][f] for f, _ in FIGURES]


def to_csv(report: dict) -> str:
    """One CSV: a totals line, then each breakdown's rows under its section name (UTF-8 with BOM)."""
    buf = io.StringIO()
    buf.write("\ufeff")  # Excel on county PCs opens UTF-8 CSV correctly only with a BOM
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["分类", "名称", "所属", *report["figures"]])
    w.writerow(["合计", report["title"], report["made"], *totals_row(report)])
    for s in report["sections"]:
        for row in s["rows"]:
            names = row[:s["labels"]]
            w.writerow([s["title"], names[0], names[1] if len(names) > 1 else "", *row[s["labels"]:]])
    return buf.getvalue()


def to_xlsx(report: dict) -> bytes:
    """An .xlsx with a 合计 sheet and one sheet per breakdown (openpyxl; opens in WPS and Excel)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="EEEEEE")

    def sheet(name: str, headers: list[str], rows: list[list], labels: int):
        ws = wb.create_sheet(name)
        for i, h in enumerate(headers, 1):
            ws.column_dimensions[get_column_letter(i)].width = 36 if i <= labels else 16
        ws.freeze_panes = "A3"
        ws.append([report["title"] + "（制表时间 " + report["made"] + "）"])
        ws.append([_cell(ws, h, font=bold, fill=fill, align=Alignment(horizontal="center")) for h in headers])
        for row in rows:
            ws.append([_cell(ws, v, number_format=_number_format(i - labels) if i >= labels else None)
                       for i, v in enumerate(row)])

    sheet("合计", ["项目", *report["figures"]], [["全县合计", *totals_row(report)]], 1)
    for s in report["sections"]:
        sheet(s["title"], s["headers"], s["rows"], s["labels"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _number_format(figure_index: int) -> str:
    return "#,##0.00" if FIGURES[figure_index][0] == "watch_hours" else "#,##0"


def _cell(ws, value, *, font=None, fill=None, align=None, number_format=None):
    from openpyxl.cell import WriteOnlyCell
    c = WriteOnlyCell(ws, value=value)
    if font:
        c.font = font
    if fill:
        c.fill = fill
    if align:
        c.alignment = align
    if number_format:
        c.number_format = number_format
    return c


def to_html(report: dict) -> str:
    """The print layout (``hub/report_print.html``) as a standalone page, for the PDF."""
    import jinja2
    env = jinja2.Environment(loader=jinja2.PackageLoader("edgenode.hub", "templates"), autoescape=True)
    return env.get_template("hub/report_print.html").render(r=report)


def to_pdf(report: dict) -> bytes:
    """A print-ready A4 PDF through WeasyPrint, in Noto Sans CJK (fonts-noto-cjk)."""
    from weasyprint import HTML
    return HTML(string=to_html(report)).write_pdf()
