"""Staff pages for software rollouts: start one, follow its rings, read why it halted (in Chinese)."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for

from edgenode.core.errors import EdgenodeError
from edgenode.hub import releases, rollout, tier_release
from edgenode.hub.web.context import cfg, get_db

bp = Blueprint("hub_rollout", __name__, url_prefix="/rollouts")


@bp.get("/")
def index():
    return render_template("hub/rollouts.html", rollouts=rollout.listing(get_db(), kind="node"),
                           versions=releases.published(cfg()), default_share=cfg()["hub.rollout_max_fail_share"],
                           error=None, upstream=tier_release.upstream_requests(get_db()))


@bp.post("/")
def start():
    rings = [r for r in request.form.get("rings", "").replace("，", ",").split(",") if r.strip()]
    pilots = [p.strip() for p in request.form.get("pilots", "").replace("，", ",").split(",") if p.strip()]
    try:
        share = float(request.form.get("max_fail_share") or cfg()["hub.rollout_max_fail_share"])
        r = rollout.start(get_db(), request.form.get("version", "").strip(), rings, max_fail_share=share,
                          pilots=pilots, by="web")
    except (EdgenodeError, ValueError) as e:
        return render_template("hub/rollouts.html", rollouts=rollout.listing(get_db(), kind="node"),
                               versions=releases.published(cfg()), default_share=cfg()["hub.rollout_max_fail_share"],
                               error=getattr(e, "zh", "失败比例格式不正确"),
                               upstream=tier_release.upstream_requests(get_db())), 400
    return redirect(url_for("hub_rollout.detail", rollout_id=r["id"]))


def _id(text: str) -> int:
    if not text.isdigit():
        abort(404)
    return int(text)


@bp.get("/<rollout_id>")
def detail(rollout_id: str):
    return render_template("hub/rollout.html", r=rollout.describe(get_db(), _id(rollout_id)))


@bp.post("/<rollout_id>/cancel")
def cancel(rollout_id: str):
    rollout.cancel(get_db(), _id(rollout_id))
    return redirect(url_for("hub_rollout.detail", rollout_id=rollout_id))
