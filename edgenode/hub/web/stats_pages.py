"""Service statistics pages: tables, CSV export and the printable monthly report."""

from __future__ import annotations

import time

from flask import Blueprint, Response, abort, render_template, request

from edgenode.protocol.metadata import COLUMNS
from edgenode.hub import charts, stats
from edgenode.hub.web.context import get_db

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
    rows = stats.table(db, group, filters, limit=500)
    by_month = list(reversed(stats.table(db, "month", {k: v for k, v in filters.items() if k not in ("month", "day")})))
    by_month.sort(key=lambda r: r["month"])
    chart = charts.bar_chart([(r["month"], r["visits"]) for r in by_month[-12:]], "每月服务人次", unit="人次")
    return render_template("hub/stats.html", rows=rows, group=group, filters=filters, groups=stats.GROUP_ZH,
                           headers=stats.HEADERS_ZH, cols=stats.GROUPS[group][0], totals=stats.totals(db, filters),
                           months=stats.months(db), chart=chart, columns=COLUMNS)


@bp.get("/export.csv")
def export_csv():
    group, filters = _args()
    rows = stats.table(get_db(), group, filters)
    name = "-".join(["stats", group, *filters.values()]).replace("/", "_")
    return Response(stats.to_csv(rows, group), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


@bp.get("/report/<month>")
def report(month: str):
    if not stats.check_filters({"month": month}):
        abort(404)
    data = stats.monthly_report(get_db(), month)
    return render_template("hub/report.html", r=data, headers=stats.HEADERS_ZH, columns=COLUMNS,
                           made=time.strftime("%Y-%m-%d %H:%M"))
