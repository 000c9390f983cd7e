"""Admin pages for activities: publish, approve or cancel bookings, check in by code, CSV export,
campaign counts, requests and feedback, and the privacy purge.  Every view is ``admin_required``;
every POST carries the app-wide CSRF token."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from edgenode.node.activities import privacy
from edgenode.node.activities import queries as aq
from edgenode.node.activities.model import STATUS_ZH
from edgenode.node.campaigns import queries as cq
from edgenode.core.errors import EdgenodeError
from edgenode.node.feedback import queries as fq
from edgenode.node.web.auth import admin_nav, admin_required
from edgenode.node.web.context import get_db, node

bp = Blueprint("admin_activities", __name__, url_prefix="/admin/activities")
FORM_FIELDS = ("title", "description", "place", "start", "end", "capacity", "audit", "resource_id")


@bp.get("/")
@admin_required
def index():
    db = get_db()
    return render_template("activities/admin_index.html", activities=aq.list_activities(db),
                           campaigns=cq.list_campaigns(db),
                           due=len(privacy.due(db, node().cfg["activities.retention_days"])))


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def new():
    form, error, status = {}, None, 200
    if request.method == "POST":
        form = {k: (request.form.get(k) or "")[:5000] for k in FORM_FIELDS}
        try:
            a = aq.create_activity(get_db(), form)
        except EdgenodeError as e:
            error, status = e.zh, e.status
        else:
            flash(f"已发布活动：{a['title']}")
            return redirect(url_for("admin_activities.activity", aid=a["id"]), 303)
    return render_template("activities/admin_new.html", form=form, error=error), status


@bp.get("/<aid>")
@admin_required
def activity(aid: str):
    db = get_db()
    status = request.args.get("status") if request.args.get("status") in STATUS_ZH else None
    return render_template("activities/admin_activity.html", a=aq.get_activity(db, aid),
                           bookings=aq.list_bookings(db, aid, status=status), status=status, STATUS_ZH=STATUS_ZH)


@bp.post("/<aid>/cancel")
@admin_required
def cancel_activity(aid: str):
    n = aq.cancel_activity(get_db(), aid)
    flash(f"活动已取消，{n} 个预约随之取消。")
    return redirect(url_for("admin_activities.activity", aid=aid), 303)


def _back(order_id: str):
    b = aq.get_booking(get_db(), order_id)
    return redirect(request.form.get("next") if (request.form.get("next") or "").startswith("/admin/")
                    else url_for("admin_activities.activity", aid=b["activity_id"]), 303)


def _booking_action(action, done_zh: str, order_id: str):
    """Run an approve/cancel; a refused change is flashed in Chinese, an unknown order is a 404."""
    try:
        b = action(get_db(), node().cfg, order_id)
        flash(f"{done_zh}：订单 {b['order_id']}")
    except EdgenodeError as e:
        if e.status == 404:
            raise
        flash(e.zh)
    return _back(order_id)


@bp.post("/booking/<order_id>/approve")
@admin_required
def approve(order_id: str):
    return _booking_action(aq.approve, "已审核", order_id)


@bp.post("/booking/<order_id>/cancel")
@admin_required
def cancel(order_id: str):
    return _booking_action(aq.cancel, "已取消", order_id)


@bp.get("/booking/<order_id>")
@admin_required
def booking(order_id: str):
    # The one place a full phone number is shown: to call the villager about this booking.
    return render_template("activities/admin_booking.html", b=aq.get_booking(get_db(), order_id, full_contact=True))


@bp.route("/checkin", methods=["GET", "POST"])
@admin_required
def checkin():
    db = get_db()
    result, error, status = None, None, 200
    aid = (request.values.get("activity") or "").strip()[:128] or None
    if request.method == "POST":
        try:
            result = aq.check_in(db, node().cfg, (request.form.get("code") or "")[:32], activity_id=aid)
        except EdgenodeError as e:
            error, status = e.zh, e.status
    return render_template("activities/admin_checkin.html", result=result, error=error, aid=aid,
                           activities=aq.list_activities(db, upcoming=True)), status


@bp.get("/export.csv")
@bp.get("/<aid>/export.csv")
@admin_required
def export(aid: str | None = None):
    if aid:
        aq.get_activity(get_db(), aid)
    name = f"bookings-{aid or 'all'}.csv"
    return Response(aq.export_csv(get_db(), aid), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={name}"})


@bp.get("/campaigns/<cid>")
@admin_required
def campaign(cid: str):
    return render_template("activities/admin_campaign.html", c=cq.get_campaign(get_db(), cid))


@bp.get("/feedback")
@admin_required
def feedback():
    return render_template("activities/admin_feedback.html", rows=fq.recent(get_db()))


@bp.post("/privacy/purge")
@admin_required
def purge():
    r = privacy.purge(node().cfg, get_db())
    flash(f"已删除 {r['activities']} 个活动、{r['bookings']} 个预约中的姓名和手机号。")
    return redirect(url_for("admin_activities.index"), 303)


def init_app(app) -> None:
    app.register_blueprint(bp)
    admin_nav(app, "活动预约", "admin_activities.index", order=20)
    admin_nav(app, "签到", "admin_activities.checkin", order=21)
