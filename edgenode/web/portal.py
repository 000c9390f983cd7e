"""The villagers' portal: home, columns, tags, search and the resource page."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from edgenode.catalog import queries as q
from edgenode.catalog.model import COLUMNS, KINDS
from edgenode.catalog.search import search as run_search
from edgenode.web.context import get_db, node

bp = Blueprint("portal", __name__)


def _page() -> int:
    try:
        return max(1, min(int(request.args.get("page", 1)), 10_000))
    except ValueError:
        return 1


@bp.route("/")
def home():
    db = get_db()
    newest = q.browse(db, page_size=8).items
    columns = {key: q.browse(db, column=key, page_size=4) for key in COLUMNS}
    return render_template("portal/home.html", newest=newest, columns=columns, tags=q.all_tags(db, 20))


@bp.route("/column/<key>")
def column(key: str):
    if key not in COLUMNS:
        abort(404)
    kind = request.args.get("kind") if request.args.get("kind") in KINDS else None
    result = q.browse(get_db(), column=key, kind=kind, page=_page(), page_size=node().cfg.web.page_size)
    return render_template("portal/list.html", heading=COLUMNS[key], result=result, column=key, kind=kind)


@bp.route("/tag/<tag>")
def tag(tag: str):
    result = q.browse(get_db(), tag=tag, page=_page(), page_size=node().cfg.web.page_size)
    return render_template("portal/list.html", heading=f"标签：{tag}", result=result, tag=tag)


@bp.route("/search")
def search():
    query = request.args.get("q", "").strip()[:100]
    column = request.args.get("column") if request.args.get("column") in COLUMNS else None
    kind = request.args.get("kind") if request.args.get("kind") in KINDS else None
    result = run_search(get_db(), query, column=column, kind=kind, page=_page(),
                        page_size=node().cfg.web.page_size) if query else None
    return render_template("portal/search.html", query=query, result=result, column=column, kind=kind)


@bp.route("/r/<resource_id>")
def resource(resource_id: str):
    db = get_db()
    res = q.get(db, resource_id)
    return render_template("portal/resource.html", r=res, related=q.related(db, res))
