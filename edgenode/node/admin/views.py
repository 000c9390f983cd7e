"""The administrator's dashboard at ``/admin/`` (login lives in ``auth.py``)."""

from __future__ import annotations

import time

from flask import Blueprint, redirect, render_template, request, session, url_for

from edgenode.node.web import accounts
from edgenode.core.errors import EdgenodeError

from edgenode.node.admin.dashboard import dashboard as build_dashboard
from edgenode.node.web.auth import admin_required, current_admin
from edgenode.node.web.context import get_db, node

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")


@bp.route("/")
@admin_required
def dashboard():
    return render_template("admin/dashboard.html", d=build_dashboard(get_db(), node().store))


@bp.route("/password", methods=["GET", "POST"])
@admin_required
def password():
    """Change the password in the browser: the current one is checked (and counts towards lock-out)."""
    error = None
    status = 200
    if request.method == "POST":
        cfg = node().cfg
        db = get_db()
        name = current_admin()["username"]
        new, again = request.form.get("new", ""), request.form.get("again", "")
        try:
            accounts.login(db, name, request.form.get("current", "")[:accounts.MAX_PASSWORD + 1],
                           max_failures=cfg.web.login_max_failures, lockout_seconds=cfg.web.login_lockout_seconds)
            if new != again:
                raise EdgenodeError("E_PASSWORD_MISMATCH", "the two new passwords differ", zh="两次输入的新密码不一致")
            account = accounts.set_password(db, new, name)
        except EdgenodeError as e:
            error, status = e.zh, e.status
        else:
            # Other sessions end with the old generation; this one carries on.
            session["admin_gen"] = account["generation"]
            return redirect(url_for("admin.dashboard", changed=1))
    return render_template("admin/password.html", error=error), status


@bp.app_template_filter("admin_time")
def admin_time(ts) -> str:
    """A timestamp as the admin pages show it, in the node's local time; "-" for none."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


@bp.app_template_filter("filesize")
def filesize(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def init_app(app) -> None:
    app.register_blueprint(bp)
