"""What every page pays for, made cheap: the page chrome, the templates' ``url_for``, the session.

Measured on the demo library (docs/portal.md, "Speed"): more than half of an uncached search
page's rendering was base.html's header and footer, the same for every page in a language
(a dozen translated labels and URLs), and ~5% went on opening a session that villagers'
pages never use.
"""

from __future__ import annotations

import threading

from flask import g, has_request_context, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import get_locale
from markupsafe import Markup

URL_MEMO_SIZE = 4096


def memo_url_for(app):
    """``url_for`` for templates, remembering what it built.

    A URL depends only on the rule map (fixed once the app is built), the arguments, and the
    request's script root (and host, for external URLs), so those are the key.  The memo is
    bounded: cards build one URL per resource, and a big library must not grow it without end.
    """
    memo: dict = {}
    build = app.url_for

    def url_for(endpoint: str, **values) -> str:
        try:
            key = (request.script_root, request.host if values.get("_external") else None, endpoint,
                   tuple(sorted(values.items())))
            hit = memo.get(key)
        except TypeError:  # an unhashable argument (a list of values): build it every time
            return build(endpoint, **values)
        if hit is None:
            if len(memo) >= URL_MEMO_SIZE:
                memo.clear()
            hit = memo[key] = build(endpoint, **values)
        return hit
    return url_for


class LazySessionInterface(SecureCookieSessionInterface):
    """No session cookie, no signer: an empty session until a form or a login writes one."""

    def open_session(self, app, request):
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def chrome_parts():
    """``chrome(name)`` for base.html: ``chrome/<name>.html`` rendered once per language and kept.

    The parts may use only what is the same for every request in a language: translations,
    URLs without arguments from the request, the node's name, the columns.
    """
    memo: dict = {}
    lock = threading.Lock()

    def chrome(name: str) -> Markup:
        if not has_request_context():
            return Markup(render_template(f"chrome/{name}.html"))
        locale = g.get("_chrome_locale")
        if locale is None:
            locale = g._chrome_locale = str(get_locale())
        key = (name, locale, request.script_root)
        hit = memo.get(key)
        if hit is None:
            hit = Markup(render_template(f"chrome/{name}.html"))
            with lock:
                memo[key] = hit
        return hit
    return chrome


def init_app(app) -> None:
    app.jinja_env.globals["chrome"] = chrome_parts()
    app.jinja_env.globals["url_for"] = memo_url_for(app)
    app.session_interface = LazySessionInterface()
