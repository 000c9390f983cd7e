"""The audit log page (操作记录) and the staff accounts list, for administrators only
(``web/auth.py`` refuses viewers: ``ADMIN_PAGES``)."""

from __future__ import annotations

import time

from flask import Blueprint, render_template, request

from edgenode.hub import audit, staff
from edgenode.hub.web.context import get_db

bp = Blueprint("hub_staff", __name__)


@bp.get("/audit")
def audit_log():
    db = get_db()
    who = (request.args.get("user") or "").strip()[:64] or None
    return render_template("hub/audit.html", rows=audit.recent(db, 500, who), who=who or "",
                           accounts=staff.accounts(db), roles=staff.ROLES, now=time.time())
