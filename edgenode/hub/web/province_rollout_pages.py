"""A province's rollout to its counties (``/province/rollouts/``): start one, follow each county's own
rollout, read in Chinese why it halted (docs/updates.md, "A province's rollout")."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for

from edgenode.core.errors import EdgenodeError
from edgenode.hub import province, releases, rollout, tier_software
from edgenode.hub.web.context import cfg, get_db

bp = Blueprint("hub_province_rollout", __name__, url_prefix="/province/rollouts")


def _index(error: str | None = None, status: int = 200):
    counties = [c for c in province.counties(get_db(), cfg())["rows"]]
    return render_template("hub/province_rollouts.html", rollouts=rollout.listing(get_db(), kind="hub"),
                           versions=releases.published(cfg()), counties=counties,
                           default_share=cfg()["hub.rollout_max_fail_share"], error=error), status


@bp.get("/")
def index():
    return _index()


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.replace("，", ",").split(",") if x.strip()]


@bp.post("/")
def start():
    db = get_db()
    try:
        share = float(request.form.get("max_fail_share") or cfg()["hub.rollout_max_fail_share"])
        version = request.form.get("version", "").strip()
        if version not in releases.published(cfg()):
            raise EdgenodeError("E_RELEASE_UNKNOWN", f"release {version} is not published here",
                                zh="这个软件版本还没有在本平台发布")
        r = rollout.start(db, version, _split(request.form.get("rings", "")), max_fail_share=share,
                          pilots=tier_software.resolve_counties(db, _split(request.form.get("pilots", ""))),
                          kind="hub", by="web")
    except (EdgenodeError, ValueError) as e:
        return _index(getattr(e, "zh", "失败比例格式不正确"), 400)
    return redirect(url_for("hub_province_rollout.detail", rollout_id=r["id"]))


def _rollout(text: str) -> dict:
    if not text.isdigit():
        abort(404)
    r = rollout.describe(get_db(), int(text))
    if r["kind"] != "hub":
        abort(404)
    return r


@bp.get("/<rollout_id>")
def detail(rollout_id: str):
    r = _rollout(rollout_id)
    return render_template("hub/province_rollout.html", r=r, counties=tier_software.counties_of(get_db(), r))


@bp.post("/<rollout_id>/cancel")
def cancel(rollout_id: str):
    rollout.cancel(get_db(), _rollout(rollout_id)["id"])
    return redirect(url_for("hub_province_rollout.detail", rollout_id=rollout_id))
