"""Rendered pages kept per process: search results and sections, like the home page.

A village's visitors ask for the same few things (水稻, 动画, the children's
corner), so the last ``SIZE`` pages of each kind are kept, keyed by the
catalogue's fingerprint (``catalog/queries.py::fingerprint``: an import or a
withdrawal changes it), the time 朗读 files were last made, and everything else the page depends on, including
the language and display (大字) cookies.  Page views are still recorded by the
caller for every request.

One render per page at a time: when a page is missing (after an import, or in a fresh
worker) and thirty terminals ask for it at once, one thread renders it and the others wait
for that page instead of all rendering it side by side; on a big library a cold section
page is tens of milliseconds, and thirty of them queued behind one another were seconds.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

from flask import current_app, g, request

from edgenode.node.catalog import queries as q
from edgenode.node.speech import views as speech
from edgenode.node.web.context import get_db

SIZE = 256
WAIT_SECONDS = 30  # as gunicorn's worker timeout: after that, render it yourself
_lock = threading.Lock()
_rendering: dict = {}  # key -> threading.Event set when that render ends


def page_state() -> tuple:
    """What every cached page depends on: the catalogue, and which 朗读 files exist (read once a request)."""
    state = g.get("_page_state")
    if state is None:
        state = g._page_state = (q.fingerprint(get_db()), speech.request_stamp())
    return state


# -- cards: a page that is not cached (a new search, a resource page's related items) is mostly
# cards, and the same resource's card is the same HTML on every page until the catalogue moves.

CARDS = 4096


def card_key(r: dict, away: bool) -> tuple:
    """What a card's HTML depends on: the resource (its row, its series: both move the catalogue
    version), whether it is shown as its series, the 朗读 files, 可预约下载, the URL prefix."""
    return (request.script_root, page_state(), r["num"], bool(r.get("series")), away)


def remembered_card(key: tuple):
    return current_app.extensions.get("portal_cards", {}).get(key)


def remember_card(key: tuple, html):
    cards = current_app.extensions.setdefault("portal_cards", {})
    if len(cards) >= CARDS:
        cards.clear()
    cards[key] = html
    return html


def cached(kind: str, key: tuple, render: Callable[[], tuple]) -> tuple:
    """``render()``'s result for this page, from the cache when the catalogue has not changed."""
    key = (page_state(), request.cookies.get("lang"), request.cookies.get("display"), *key)
    cache = current_app.extensions.setdefault("portal_cache", {}).setdefault("pages:" + kind, OrderedDict())
    flight = (kind, key)
    with _lock:
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
            return hit
        done = _rendering.get(flight)
        if done is None:
            done = _rendering[flight] = threading.Event()
            leader = True
        else:
            leader = False
    if not leader:
        done.wait(WAIT_SECONDS)
        with _lock:
            hit = cache.get(key)
        return hit if hit is not None else render()  # not cached (a 404): each asks for itself
    try:
        hit = render()
        if hit is not None:
            with _lock:
                cache[key] = hit
                while len(cache) > SIZE:
                    cache.popitem(last=False)
    finally:
        with _lock:
            _rendering.pop(flight, None)
        done.set()
    return hit
