"""Sections in plain words, the children's corner, and 大字 (large type).

Sections (少儿, 戏曲, 健康, ...) map the project's columns and tags to what
visitors look for; they come from ``portal.sections`` (core/config.py) so a
county can change them.  The section whose ``children`` is true is the
children's corner: big picture cards, episodes in title order.

大字 is a cookie set by a plain link (no JavaScript): ``big`` or ``big-hc``
(high contrast).  base.html puts it on ``<html>`` as classes; portal.css
scales everything from the root font size.
"""

from __future__ import annotations

import re

from flask import Blueprint, abort, redirect, request, render_template

from edgenode.node.catalog import section_queries as sq
from edgenode.node.portal import pagecache
from edgenode.node.usage.beacons import note
from edgenode.node.web.context import get_db, node
from edgenode.protocol.metadata import KINDS

bp = Blueprint("sections", __name__, template_folder="templates")

DISPLAY_COOKIE = "display"
DISPLAY_MODES = {"normal": "", "big": "big", "contrast": "big hc"}
TWO_YEARS = 2 * 365 * 86400
CORNER_LIMIT = 200
_NUM = re.compile(r"(\d+)")
_ZH_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")}


def display_classes(cookie: str | None) -> str:
    """The ``<html>`` classes for a display cookie value; anything unknown is the normal display."""
    return DISPLAY_MODES.get(cookie or "normal", "")


# A book's chapter follows the portal's type: 20 px like the pages around it, 32 px with 大字.
_READER_CSS = {
    "": "html{font-size:20px!important}body{font-size:1rem!important;line-height:1.7;margin:.5rem 1rem}",
    "big": "html{font-size:32px!important}body{font-size:1rem!important;line-height:1.6;margin:.5rem}"
           "p,li,span,a,div,td,h4,h5,h6{font-size:max(1em,28px)!important}img{max-width:100%}",
}
_READER_CSS["big hc"] = _READER_CSS["big"] + "html,body{background:#000!important;color:#fff!important}a{color:#ffeb3b!important}"


def reader_style(data: bytes, cookie: str | None) -> bytes:
    """A chapter's bytes with the portal's type for this display, as the first thing in its <head>."""
    style = f"<style>{_READER_CSS[display_classes(cookie)]}</style>".encode()
    lower = data[:4096].lower()
    for tag, wrap in ((b"<head", style), (b"<html", b"<head>" + style + b"</head>")):
        at = lower.find(tag)
        end = data.find(b">", at) if at >= 0 else -1
        if end >= 0:
            return data[:end + 1] + wrap + data[end + 1:]
    return data  # no <html>: left as the book has it (an XML declaration must stay first)


def _zh_number(text: str) -> str:
    """第十二集 → 第12集, so Chinese-numbered episodes sort like numbered ones (up to 99)."""
    def one(m):
        s = m.group(1)
        if s == "十":
            return "10"
        if "十" in s:
            tens, _, ones = s.partition("十")
            return str(_ZH_DIGITS.get(tens, 1) * 10 + _ZH_DIGITS.get(ones, 0) if ones else _ZH_DIGITS.get(tens, 1) * 10)
        return str(_ZH_DIGITS[s]) if len(s) == 1 else s
    return re.sub(r"第([零一二三四五六七八九十]{1,3})([集期讲课章回])", lambda m: "第" + one(m) + m.group(2), text)


def episode_key(title: str) -> list:
    """Natural order: 第2集 before 第10集, 第三集 before 第十集."""
    return [int(p) if p.isdigit() else p for p in _NUM.split(_zh_number(title))]


def sections() -> list[dict]:
    return node().cfg.portal.sections


def find_section(key: str) -> dict:
    for s in sections():
        if s["key"] == key:
            return s
    abort(404)


@bp.route("/s/<key>")
def section(key: str):
    s = find_section(key)
    sub = request.args.get("sub") if request.args.get("sub") in s.get("subs", []) else None
    kind = request.args.get("kind") if request.args.get("kind") in KINDS else None
    columns, tags = (s.get("columns", []), s.get("tags", [])) if not sub else ([], [sub])
    note("view", data={"page": "section", "section": key})
    if s.get("children"):
        def corner():
            items = sq.browse_section(get_db(), columns, tags, kind=kind, page_size=CORNER_LIMIT).items
            items.sort(key=lambda r: episode_key(r["title"]))
            return render_template("portal/corner.html", s=s, sub=sub, items=items)
        return pagecache.cached("section", (key, sub, kind), corner)
    try:
        page = max(1, min(int(request.args.get("page", 1)), 10_000))
    except ValueError:
        page = 1

    def listing():
        result = sq.browse_section(get_db(), columns, tags, kind=kind, page=page,
                                   page_size=node().cfg.web.page_size)
        return render_template("portal/section.html", s=s, sub=sub, kind=kind, result=result)
    return pagecache.cached("section", (key, sub, kind, page), listing)


@bp.route("/display/<mode>")
def display(mode: str):
    """Switch 大字 / 高对比 / normal with a link, then go back where the visitor was."""
    if mode not in DISPLAY_MODES:
        abort(404)
    target = request.args.get("next", "")
    if not (target.startswith("/") and not target.startswith("//") and "\\" not in target):
        target = "/"
    resp = redirect(target, 303)
    if mode == "normal":
        resp.delete_cookie(DISPLAY_COOKIE, httponly=True, samesite="Lax")
    else:
        resp.set_cookie(DISPLAY_COOKIE, mode, max_age=TWO_YEARS, httponly=True, samesite="Lax")
    return resp


def init_app(app) -> None:
    app.register_blueprint(bp)

    @app.context_processor
    def inject():
        return {"portal_sections": sections,
                "display_classes": display_classes(request.cookies.get(DISPLAY_COOKIE)),
                "display_mode": request.cookies.get(DISPLAY_COOKIE) if request.cookies.get(DISPLAY_COOKIE)
                in DISPLAY_MODES else "normal"}
