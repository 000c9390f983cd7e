"""The province view (``/province/``): a provincial hub's counties, problems first, then totals."""

from __future__ import annotations

from flask import Blueprint, render_template

from edgenode.hub import province
from edgenode.hub.web.context import cfg, get_db

bp = Blueprint("hub_province", __name__, url_prefix="/province")


@bp.get("/")
def counties():
    return render_template("hub/province.html", v=province.counties(get_db(), cfg()))
