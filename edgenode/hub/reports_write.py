"""The report of :func:`edgenode.hub.reports.build` as a CSV, an .xlsx and a PDF.

Every writer reads only the report dict: a section says how many of its leading columns are
labels (``labels``) and the .xlsx number format of each other column (``formats``, ``@`` for
text), so a section with its own columns (the live duty) needs no code here.
"""

from __future__ import annotations

import csv
import io


def shares_columns(report: dict, section: dict) -> bool:
    """Whether the section fits the CSV's common columns 分类, 名称, 所属, then the report's figures."""
    return section["labels"] <= 2 and section["headers"][section["labels"]:] == report["figures"]


def to_csv(report: dict) -> str:
    """One CSV: a totals line, then each breakdown's rows under its section name (UTF-8 with BOM).  A section
    with other columns (the live sections) follows as a block of its own: a blank line, its headers, its rows."""
    buf = io.StringIO()
    buf.write("\ufeff")  # Excel on county PCs opens UTF-8 CSV correctly only with a BOM
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["分类", "名称", "所属", *report["figures"]])
    w.writerow(["合计", report["title"], report["made"], *report["totals_row"]])
    for s in report["sections"]:
        if shares_columns(report, s):
            for row in s["rows"]:
                names = row[:s["labels"]]
                w.writerow([s["title"], names[0], names[1] if len(names) > 1 else "", *row[s["labels"]:]])
            continue
        w.writerow([])
        w.writerow(["分类", *s["headers"]])
        for row in s["rows"]:
            w.writerow([s["title"], *row])
    return buf.getvalue()


def to_xlsx(report: dict) -> bytes:
    """An .xlsx with a 合计 sheet and one sheet per section (openpyxl; opens in WPS and Excel)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="EEEEEE")

    def sheet(name: str, headers: list[str], rows: list[list], labels: int, formats: list[str]):
        ws = wb.create_sheet(name)
        for i, h in enumerate(headers, 1):
            ws.column_dimensions[get_column_letter(i)].width = 36 if i <= labels else 16
        ws.freeze_panes = "A3"
        ws.append([report["title"] + "（制表时间 " + report["made"] + "）"])
        ws.append([_cell(ws, h, font=bold, fill=fill, align=Alignment(horizontal="center")) for h in headers])
        for row in rows:
            ws.append([_cell(ws, v, number_format=formats[i - labels] if i >= labels else None)
                       for i, v in enumerate(row)])

    sheet("合计", ["项目", *report["figures"]], [["全县合计", *report["totals_row"]]], 1, report["figure_formats"])
    for s in report["sections"]:
        sheet(s["title"], s["headers"], s["rows"], s["labels"], s["formats"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


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
