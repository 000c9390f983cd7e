"""The villagers' portal: home, columns, tags, search, the resource page and the EPUB reader.

Pages are server-rendered and work without JavaScript; the only script is the
player's usage beacon.  Each page view is noted for usage recording
(``beacons.note``).  The rendered home page is cached per process and dropped
as soon as the catalogue's fingerprint changes; its "popular" list is
recomputed at most once a minute (``POPULAR_SECONDS``).
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_babel import gettext as _

from edgenode.node.catalog import queries as q
from edgenode.protocol.metadata import COLUMNS, KINDS
from edgenode.node.catalog.search import search as run_search
from edgenode.node.usage import stats
from edgenode.node.portal import epub, pagecache
from edgenode.node.portal.sections import reader_style
from edgenode.node.usage.beacons import note
from edgenode.node.web.context import get_db, node

bp = Blueprint("portal", __name__, template_folder="templates")

POPULAR_SECONDS = 60
# Chapters and images of a book come from a signed bundle but are still
# treated as untrusted: no scripts, nothing fetched from elsewhere.
EPUB_CSP = "sandbox allow-same-origin; default-src 'none'; img-src 'self'; style-src 'self' 'unsafe-inline'"


def _page() -> int:
    try:
        return max(1, min(int(request.args.get("page", 1)), 10_000))
    except ValueError:
        return 1


def _cache() -> dict:
    return current_app.extensions.setdefault("portal_cache", {})


def _popular(db) -> tuple[float, list[dict]]:
    cache = _cache()
    hit = cache.get("popular")
    if hit and time.monotonic() - hit[0] < POPULAR_SECONDS:
        return hit
    cache["popular"] = hit = (time.monotonic(), stats.popular(db, limit=8))
    return hit


@bp.route("/")
def home():
    db = get_db()
    note("view", data={"page": "home"})
    cache = _cache()
    popular_at, popular = _popular(db)
    key = (pagecache.page_state(), popular_at, request.cookies.get("lang"), request.cookies.get("display"))
    hit = cache.get("home")
    if hit and hit[0] == key:
        return hit[1]
    newest = q.browse(db, page_size=8).items
    columns = {k: q.browse(db, column=k, page_size=4) for k in COLUMNS}
    html = render_template("portal/home.html", newest=newest, columns=columns, popular=popular,
                           tags=q.all_tags(db, 20))
    cache["home"] = (key, html)
    return html


@bp.route("/column/<key>")
def column(key: str):
    if key not in COLUMNS:
        abort(404)
    kind = request.args.get("kind") if request.args.get("kind") in KINDS else None
    result = q.browse(get_db(), column=key, kind=kind, page=_page(), page_size=node().cfg.web.page_size)
    note("view", column_key=key, data={"page": "column"})
    return render_template("portal/list.html", heading=COLUMNS[key], result=result, column=key, kind=kind)


@bp.route("/tag/<tag>")
def tag(tag: str):
    result = q.browse(get_db(), tag=tag, page=_page(), page_size=node().cfg.web.page_size)
    if result.total == 0:
        abort(404)
    note("view", data={"page": "tag"})
    return render_template("portal/list.html", heading=_("Tag: %(tag)s", tag=tag), result=result, tag=tag)


@bp.route("/search")
def search():
    query = request.args.get("q", "").strip()[:100]
    column = request.args.get("column") if request.args.get("column") in COLUMNS else None
    kind = request.args.get("kind") if request.args.get("kind") in KINDS else None
    if not query:
        return render_template("portal/search.html", query=query, result=None, column=column, kind=kind)
    page = _page()

    def render():
        result = run_search(get_db(), query, column=column, kind=kind, page=page, page_size=node().cfg.web.page_size)
        return result.total, render_template("portal/search.html", query=query, result=result, column=column,
                                             kind=kind)
    hit = pagecache.cached("search", (query, column, kind, page), render)
    note("search", column_key=column, data={"q": query[:50], "total": hit[0]})
    return hit[1]


@bp.route("/r/<resource_id>")
def resource(resource_id: str):
    db = get_db()
    res = q.get(db, resource_id)
    note("view", resource_id=res["id"], column_key=res["column_key"])
    return render_template("portal/resource.html", r=res, related=q.related(db, res),
                           beacon_interval=node().cfg.web.beacon_interval_seconds)


def _book(resource_id: str):
    res = q.get(get_db(), resource_id)
    if res["kind"] != "epub":
        abort(404)
    return res, node().store.path_for(res["sha256"])


@bp.route("/r/<resource_id>/read")
def read(resource_id: str):
    res, path = _book(resource_id)
    chapters = epub.spine(path)
    try:
        n = min(max(int(request.args.get("ch", 1)), 1), len(chapters))
    except ValueError:
        n = 1
    note("view", resource_id=res["id"], column_key=res["column_key"], data={"page": "read", "chapter": n})
    return render_template("portal/reader.html", r=res, n=n, count=len(chapters), chapter=chapters[n - 1])


@bp.route("/r/<resource_id>/book/<path:member>")
def book_part(resource_id: str, member: str):
    _res, path = _book(resource_id)
    data, mimetype = epub.member(path, member)
    page = mimetype in ("application/xhtml+xml", "text/html")
    if page:  # the chapter follows 大字 (portal/sections.py), so it varies with the display cookie
        data = reader_style(data, request.cookies.get("display"))
    resp = Response(data, mimetype=mimetype)
    resp.headers["Content-Security-Policy"] = EPUB_CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "private, no-cache" if page else "public, max-age=86400"
    return resp


def init_app(app) -> None:
    from edgenode.node.portal import media

    app.register_blueprint(bp)
    app.register_blueprint(media.bp)
