"""County pages for votes, requests and feedback, and the nodes' ranking fetch.

``GET /api/v1/tally/rankings`` is node-facing (a signed request, listed in
``api.NODE_FACING``); everything under ``/tally`` needs a staff login like
every other hub page (``auth.require_login``).
"""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, jsonify, render_template, request

from edgenode.hub import tally
from edgenode.hub.signing import verify_request
from edgenode.hub.web.context import get_db

bp = Blueprint("hub_tally", __name__)


@bp.get("/api/v1/tally/rankings")
def rankings():
    verify_request(get_db(), request.method, request.path, request.headers, request.get_data(cache=False))
    return jsonify(tally.rankings_for_nodes(get_db()))


@bp.get("/tally/")
def index():
    db = get_db()
    return render_template("tally/index.html", campaigns=tally.campaigns(db), summary=tally.request_summary(db))


@bp.get("/tally/campaign/<campaign>")
def campaign(campaign: str):
    r = tally.ranking(get_db(), campaign[:128])
    if request.args.get("format") == "json":
        return jsonify({"ok": True, **r})
    return render_template("tally/campaign.html", r=r)


@bp.get("/tally/requests")
def requests_():
    node = (request.args.get("node") or "").strip()[:64] or None
    q = (request.args.get("q") or "").strip()[:100] or None
    kind = request.args.get("kind") if request.args.get("kind") in (tally.REQUEST, tally.FEEDBACK) else None
    rows = tally.requests(get_db(), node_id=node, keyword=q, kind=kind)
    if request.args.get("format") == "csv":
        out = io.StringIO()
        out.write("\ufeff")
        w = csv.writer(out)
        w.writerow(["时间", "服务点", "类型", "资源", "内容", "评分"])
        for r in rows:
            text = r["text"]
            w.writerow([r["day"], r["node_name"] or r["node_id"], "需求" if r["kind"] == "request" else "评价",
                        r["resource_id"] or "", "'" + text if text[:1] in "=+-@" and text else text,
                        r["rating"] or ""])
        return Response(out.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=requests.csv"})
    return render_template("tally/requests.html", rows=rows, node=node or "", q=q or "", kind=kind or "",
                           summary=tally.request_summary(get_db()))
