"""Administrator login, the ``admin_required`` decorator and app-wide CSRF.

Other areas' admin pages use this module and nothing else::

    from edgenode.node.web.auth import admin_required, admin_nav

    bp = Blueprint("sync_admin", __name__, url_prefix="/admin/sync")

    @bp.route("/")
    @admin_required
    def status(): ...

    admin_nav(app, "同步", "sync_admin.status")   # in the area's init_app, optional

or guard a whole blueprint with ``bp.before_request(require_admin)``.
Anonymous users get a redirect to ``/admin/login`` for pages and a 401 JSON
error for ``/api/...``; ``tests/test_admin_auth.py`` walks the URL map to
prove every ``/admin`` rule does this.

CSRF: Flask-WTF's ``CSRFProtect`` guards every POST/PUT/PATCH/DELETE in the
app.  Forms carry ``<input type="hidden" name="csrf_token" value="{{
csrf_token() }}">``; scripts send the token in an ``X-CSRFToken`` header.  The
only exempt view is the player's usage beacon (see ``beacons.py``).
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from edgenode.node.web import accounts
from edgenode.core.errors import EdgenodeError
from edgenode.node.web.context import get_db, node
from edgenode.node.web.errors import render_error

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, url_prefix="/admin")
csrf = CSRFProtect()

SESSION_HOURS = 12


def current_admin() -> dict | None:
    """The signed-in administrator, or None.  A password change ends older sessions."""
    if "admin" in g:
        return g.admin
    g.admin = None
    name, generation = session.get("admin"), session.get("admin_gen")
    if name:
        account = accounts.get_account(get_db(), name)
        if account and account["generation"] == generation:
            g.admin = accounts.public(account)
        else:
            session.clear()
    return g.admin


def _refuse():
    if request.path.startswith("/api/"):
        return render_error(401, "E_AUTH_REQUIRED", "administrator login required", "请先以管理员身份登录")
    target = request.full_path if request.method == "GET" else request.path
    return redirect(url_for("auth.login", next=target.rstrip("?")))


def require_admin():
    """For ``bp.before_request``: refuse anonymous users, else return None."""
    if current_admin() is None:
        return _refuse()
    return None


def admin_required(view):
    """View decorator: anonymous → redirect to login (pages) or 401 JSON (``/api/``)."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_admin() is None:
            return _refuse()
        return view(*args, **kwargs)

    wrapped.admin_required = True
    return wrapped


login_required = admin_required


def admin_nav(app, label: str, endpoint: str, order: int = 100) -> None:
    """Add a link to the admin pages' navigation bar (``order``: its place, lower first)."""
    items = app.extensions.setdefault("admin_nav", [])
    items.append((order, len(items), label, endpoint))
    items.sort()


def _safe_next(target: str | None) -> str:
    # Only paths on this host: "//evil" and "https://evil" would be open redirects.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("admin.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login():
    db = get_db()
    error = None
    status = 200
    if request.method == "POST":
        cfg = node().cfg
        username = (request.form.get("username") or accounts.DEFAULT_USER).strip()[:64]
        try:
            account = accounts.login(db, username, request.form.get("password", "")[:accounts.MAX_PASSWORD + 1],
                                     max_failures=cfg.web.login_max_failures,
                                     lockout_seconds=cfg.web.login_lockout_seconds)
        except EdgenodeError as e:
            error, status = e.zh, e.status
        else:
            session.clear()
            session.permanent = True
            session["admin"] = account["username"]
            session["admin_gen"] = account["generation"]
            log.info("admin %s signed in", account["username"])
            return redirect(_safe_next(request.args.get("next")))
    return render_template("admin/login.html", error=error, has_account=accounts.has_account(db),
                           next=request.args.get("next", "")), status


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("portal.home"))


def init_app(app) -> None:
    csrf.init_app(app)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", SESSION_HOURS * 3600)
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=SESSION_HOURS)
    app.register_blueprint(bp)
    app.extensions.setdefault("admin_nav", [])

    @app.errorhandler(CSRFError)
    def csrf_refused(e: CSRFError):
        log.warning("E_CSRF: %s %s refused: %s", request.method, request.path, e.description)
        return render_error(400, "E_CSRF", "form expired or forged (CSRF token missing or wrong); reload the page",
                            "页面已过期，请刷新后再提交")

    @app.context_processor
    def inject():
        return {"current_admin": current_admin, "admin_nav_items": [(label, endpoint) for *_, label, endpoint in current_app.extensions["admin_nav"]]}
