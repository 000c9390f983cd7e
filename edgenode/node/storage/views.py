"""The portal's 可预约下载 button: ``POST /request/<resource_id>`` (CSRF-protected form).

A villager asks for a resource whose file is not on this node (evicted, or an
on-demand channel).  The request is recorded and goes upstream as a usage
event; the villager returns to the resource page with a Chinese confirmation.
"""

from __future__ import annotations

import logging

from flask import Blueprint, flash, redirect, url_for

from edgenode.protocol.metadata import ID_RE
from edgenode.core.errors import EdgenodeError, NotFound
from edgenode.node.storage import requests, state
from edgenode.node.usage.beacons import terminal
from edgenode.node.web.context import get_db

log = logging.getLogger(__name__)

bp = Blueprint("storage_request", __name__)


@bp.route("/request/<resource_id>", methods=["POST"])
def request_file(resource_id: str):
    if not ID_RE.match(resource_id):
        raise NotFound(f"no resource {resource_id!r}", zh="没有找到这个资源")
    try:
        r = requests.request(get_db(), resource_id, terminal())
    except EdgenodeError as e:
        if e.code != "E_NOT_ON_REQUEST":
            raise
        # The file is here (it came back meanwhile): the resource page itself now plays it.
    else:
        flash("已收到您的预约。下次与县中心同步时会下载这个资源，到时就可以观看了。" if r["new"] else
              "您已经预约过这个资源，下载后就可以观看。", "storage")
    return redirect(url_for("portal.resource", resource_id=resource_id))


def on_request(res: dict) -> bool:
    """For the resource template: is this resource's file away (show 可预约下载, no player)?"""
    return bool(res and res.get("num") is not None and state.is_on_request(get_db(), res["num"]))


def away_among(items) -> set[int]:
    """For the card grids: which of these resources show the 可预约下载 badge (one query per grid).

    The home page is cached; its badges may lag a change by up to a minute (the popular
    list's refresh), the resource page itself never does."""
    nums = [r["num"] for r in items if r and r.get("num") is not None]
    return state.on_request_nums(get_db(), nums) if nums else set()


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["storage_on_request"] = on_request
    app.jinja_env.globals["storage_away_among"] = away_among
