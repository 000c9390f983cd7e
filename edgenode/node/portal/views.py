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
from edgenode.node.catalog import series_queries as sq
from edgenode.node.live.views import banner as live_banner
from edgenode.protocol.metadata import COLUMNS, KINDS
from edgenode.node.catalog.search import search as run_search
from edgenode.node.usage import resume, stats
from edgenode.node.portal import epub, pagecache
from edgenode.node.portal.sections import reader_style
from edgenode.node.usage.beacons import known_terminal, note
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
    cache["popular"] = hit = (time.monotonic(), sq.once_per_series(db, stats.popular(db, limit=16))[:8])
    return hit


@bp.route("/")
def home():
    db = get_db()
    note("view", data={"page": "home"})
    cache = _cache()
    popular_at, popular = _popular(db)
    live = live_banner(db)  # on now and next, its countdown by the minute: part of the cache key
    key = (pagecache.page_state(), popular_at, request.cookies.get("lang"),
           request.cookies.get("display"), repr(live))
    hit = cache.get("home")
    if hit and hit[0] == key:
        return _with_continue(db, hit[1])
    newest = sq.browse_grouped(db, page_size=8).items  # a series shows once ("新增 16 集")
    columns = {k: sq.browse_grouped(db, column=k, page_size=4) for k in COLUMNS}
    html = render_template("portal/home.html", newest=newest, columns=columns, popular=popular,
                           tags=q.all_tags(db, 20), live=live)
    cache["home"] = (key, html)
    return _with_continue(db, html)


CONTINUE_MARK = "<!--continue-watching-->"


def _with_continue(db, html: str) -> str:
    """The cached home page with this terminal's 继续观看 row, when it has one."""
    items = resume.continue_watching(db, known_terminal())
    if not items:
        return html
    sq.attach_series(db, items)
    return html.replace(CONTINUE_MARK, render_template("portal/_continue.html", items=items), 1)


@bp.route("/column/<key>")
def column(key: str):
    if key not in COLUMNS:
        abort(404)
    kind = request.args.get("kind") if request.args.get("kind") in KINDS else None
    size = node().cfg.web.page_size
    result = q.browse(get_db(), column=key, kind=kind, page=_page(), page_size=size) if kind else \
        sq.browse_grouped(get_db(), column=key, page=_page(), page_size=size)
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
        return render_template("portal/search.html", query=query, result=None, column=column, kind=kind,
                               series_hits=[])
    page = _page()

    def render():
        db = get_db()
        result = run_search(db, query, column=column, kind=kind, page=page, page_size=node().cfg.web.page_size)
        series_hits = sq.find_series(db, query) if page == 1 else []
        return result.total, render_template("portal/search.html", query=query, result=result, column=column,
                                             kind=kind, series_hits=series_hits)
    hit = pagecache.cached("search", (query, column, kind, page), render)
    note("search", column_key=column, data={"q": query[:50], "total": hit[0]})
    return hit[1]


@bp.route("/r/<resource_id>")
def resource(resource_id: str):
    db = get_db()
    res = q.get(db, resource_id)
    note("view", resource_id=res["id"], column_key=res["column_key"])
    prev_ep, next_ep = sq.neighbours(db, res)
    sq.attach_series(db, [res])
    return render_template("portal/resource.html", r=res, related=q.related(db, res),
                           beacon_interval=node().cfg.web.beacon_interval_seconds,
                           start=resume.start_at(db, known_terminal(), res), prev_ep=prev_ep, next_ep=next_ep,
                           tracks=sq.subtitles_of(db, res["num"]), tracks_on=node().cfg.web.subtitles_default,
                           autoplay=request.args.get("autoplay") == "1")


@bp.route("/series/<series_id>")
def series(series_id: str):
    """A series' episodes in order.  Rendered once per catalogue state and cached like search; this
    terminal's 继续观看 button is spliced in per request."""
    db = get_db()

    def render():
        s = sq.get_series(db, series_id)
        items = sq.episodes(db, s["num"]) if s else []
        if not items:
            return None
        html = render_template("portal/series.html", s=s, items=items, total=sum(r["duration"] or 0 for r in items))
        return html, s["num"], s["column_key"], s["id"]
    hit = pagecache.cached("series", (series_id,), render)
    if hit is None:
        abort(404)
    html, num, column_key, sid = hit
    note("view", column_key=column_key, data={"page": "series", "series": sid})
    going = next((r for r in resume.continue_watching(db, known_terminal(), 20) if r["series_num"] == num), None)
    if going:
        html = html.replace(SERIES_MARK, render_template("portal/_series_continue.html", going=going), 1)
    return html


SERIES_MARK = "<!--series-continue-->"


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
    app.jinja_env.globals.update(card_key=pagecache.card_key, remembered_card=pagecache.remembered_card,
                                 remember_card=pagecache.remember_card)
