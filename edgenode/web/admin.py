"""The administrator's dashboard at ``/admin/`` (login lives in ``auth.py``)."""

from __future__ import annotations

from flask import Blueprint, render_template

from edgenode.admin.dashboard import dashboard as build_dashboard
from edgenode.web.auth import admin_required
from edgenode.web.context import get_db, node

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/")
@admin_required
def dashboard():
    return render_template("admin/dashboard.html", d=build_dashboard(get_db(), node().store))


@bp.app_template_filter("filesize")
def filesize(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
