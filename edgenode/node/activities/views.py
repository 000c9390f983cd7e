"""The villagers' pages: activities and booking, campaigns with voting, requests and feedback.

Everything works with no link upstream; what must reach the county (counts,
votes, requests) is written as usage events in the same transaction.

The pickup code is shown on the booking result page straight after booking
(kept in the signed session cookie of that browser for ``CODE_SHOW_SECONDS``)
and never again: the server keeps only its HMAC.  A villager who wrote down
order id and code can look the booking up, or cancel it, at
``/activities/lookup``.
"""

from __future__ import annotations

import time

from flask import Blueprint, redirect, render_template, request, session, url_for

from edgenode.node.activities import queries as aq
from edgenode.node.campaigns import queries as cq
from edgenode.node.catalog import queries as catalog
from edgenode.core.errors import EdgenodeError, NotFound
from edgenode.node.feedback import queries as fq
from edgenode.node.usage.beacons import note, terminal
from edgenode.node.web.context import get_db, node

bp = Blueprint("activities", __name__, template_folder="templates")
CODE_SHOW_SECONDS = 30 * 60


@bp.get("/activities/")
def index():
    db = get_db()
    note("view", data={"page": "activities"})
    return render_template("activities/index.html", activities=aq.list_activities(db, upcoming=True),
                           campaigns=cq.list_campaigns(db, current=True))


@bp.get("/activities/<aid>")
def detail(aid: str):
    a = aq.get_activity(get_db(), aid)
    return render_template("activities/detail.html", a=a, form={}, error=None,
                           max_seats=node().cfg["activities.max_seats"], resource=_resource(a["resource_id"]))


def _resource(rid):
    if not rid:
        return None
    try:
        return catalog.get(get_db(), rid)
    except NotFound:  # withdrawn, hidden or never imported: the page shows no link
        return None


@bp.post("/activities/<aid>/book")
def book(aid: str):
    db, cfg = get_db(), node().cfg
    form = {k: (request.form.get(k) or "")[:200] for k in ("name", "phone", "seats")}
    try:
        b = aq.book(db, cfg, aid, form, terminal=terminal())
    except EdgenodeError as e:
        if e.status == 404:
            raise
        a = aq.get_activity(db, aid)
        return render_template("activities/detail.html", a=a, form=form, error=e.zh, error_code=e.code,
                               max_seats=cfg["activities.max_seats"], resource=_resource(a["resource_id"])), e.status
    session["booking_code"] = [b["order_id"], b["code"], time.time()]
    return redirect(url_for("activities.booking", order_id=b["order_id"]), 303)


@bp.get("/activities/booking/<order_id>")
def booking(order_id: str):
    held = session.get("booking_code")
    code = None
    if isinstance(held, list) and len(held) == 3 and held[0] == order_id and time.time() - held[2] < CODE_SHOW_SECONDS:
        code = held[1]
    if code is None:
        # Without the code this browser just received, show nothing about the booking.
        return redirect(url_for("activities.lookup", order_id=order_id))
    return render_template("activities/booking.html", b=aq.lookup(get_db(), node().cfg, order_id, code), code=code)


@bp.route("/activities/lookup", methods=["GET", "POST"])
def lookup():
    db, cfg = get_db(), node().cfg
    order_id = (request.values.get("order_id") or "").strip()[:32]
    b, error, status = None, None, 200
    if request.method == "POST":
        code = (request.form.get("code") or "")[:32]
        try:
            if request.form.get("action") == "cancel":
                aq.cancel_own(db, cfg, order_id, code)
            b = aq.lookup(db, cfg, order_id, code)
        except EdgenodeError as e:
            error, status = e.zh, e.status
    return render_template("activities/lookup.html", b=b, order_id=order_id, error=error), status


@bp.get("/campaigns/<cid>")
def campaign(cid: str, *, message: str | None = None, error: str | None = None, status: int = 200):
    db = get_db()
    c = cq.get_campaign(db, cid)
    note("view", data={"page": "campaign"})
    return render_template("activities/campaign.html", c=c, left=cq.votes_left(db, c["id"], terminal()),
                           message=message, error=error), status


@bp.post("/campaigns/<cid>/vote")
def vote(cid: str):
    try:
        v = cq.vote(get_db(), cid, (request.form.get("item") or "")[:128], terminal=terminal())
    except EdgenodeError as e:
        return campaign(cid, error=e.zh, status=e.status)  # an unknown campaign 404s in there
    return campaign(cid, message=f"投票成功：{v['title']}。今天还可以投 {v['left']} 票。")


@bp.route("/feedback", methods=["GET", "POST"])
def feedback():
    db, cfg = get_db(), node().cfg
    rid = (request.values.get("resource") or "").strip()[:128] or None
    resource = _resource(rid)
    message, error, status = None, None, 200
    if request.method == "POST":
        try:
            if request.form.get("kind") == "feedback":
                fq.submit_feedback(db, cfg, rid, request.form.get("rating"), (request.form.get("comment") or "")[:1000],
                                   terminal=terminal())
                message = "谢谢您的评价！"
            else:
                fq.submit_request(db, cfg, (request.form.get("text") or "")[:1000], terminal=terminal(),
                                  resource_id=rid)
                message = "已收到，我们会把您的需求转给县文化馆。"
        except EdgenodeError as e:
            error, status = e.zh, e.status
    return render_template("activities/feedback.html", resource=resource, message=message, error=error), status


def init_app(app) -> None:
    app.register_blueprint(bp)
