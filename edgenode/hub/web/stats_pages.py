"""Service statistics pages: tables, CSV export and the printable monthly report."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, abort, render_template, request

from edgenode.protocol.metadata import COLUMNS
from edgenode.hub import charts, live, reports, reports_write, stats
from edgenode.hub.web.context import cfg, get_db, settings

bp = Blueprint("hub_stats", __name__, url_prefix="/stats")


def _args():
    group = request.args.get("group", "node")
    if group not in stats.GROUPS:
        abort(400)
    return group, stats.check_filters(request.args.to_dict())


@bp.get("/")
def index():
    db = get_db()
    group, filters = _args()
    rows = stats.labelled(db, stats.table(db, group, filters, limit=500))
    by_month = list(reversed(stats.table(db, "month", {k: v for k, v in filters.items() if k not in ("month", "day")})))
    by_month.sort(key=lambda r: r["month"])
    chart = charts.bar_chart([(r["month"], r["visits"]) for r in by_month[-12:]], "每月服务人次", unit="人次")
    return render_template("hub/stats.html", rows=rows, group=group, filters=filters, groups=stats.GROUP_ZH,
                           headers=stats.HEADERS_ZH, cols=stats.GROUPS[group][0], totals=stats.totals(db, filters),
                           months=stats.months(db), chart=chart, columns=COLUMNS)


@bp.get("/export.csv")
def export_csv():
    group, filters = _args()
    rows = stats.labelled(get_db(), stats.table(get_db(), group, filters))
    name = "-".join(["stats", group, *filters.values()]).replace("/", "_")
    return Response(stats.to_csv(rows, group), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def _report(period: str) -> dict:
    return reports.build(get_db(), period, county=settings().name, offset_hours=settings().utc_offset_hours,
                         live_titles=live.titles(cfg()))


@bp.get("/report/<period>")
def report(period: str):
    """The month's (YYYY-MM) or year's (YYYY) report for the annual assessment."""
    return render_template("hub/report.html", r=_report(period))


EXPORTS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "pdf": "application/pdf"}


@bp.get("/report/<period>/<fmt>")
def report_file(period: str, fmt: str):
    if fmt not in EXPORTS:
        abort(404)
    r = _report(period)
    body = {"csv": reports_write.to_csv, "xlsx": reports_write.to_xlsx, "pdf": reports_write.to_pdf}[fmt](r)
    name = f"{r['county']}-{r['period']}-服务统计.{fmt}"
    return Response(body, mimetype=EXPORTS[fmt],
                    headers={"Content-Disposition": f"attachment; filename=\"report-{r['period']}.{fmt}\"; "
                             f"filename*=UTF-8''{quote(name)}"})
