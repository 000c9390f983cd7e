"""Health over HTTP: ``/api/health``, ``/metrics`` and the admin page ``/admin/health``.

The LAN is untrusted: an anonymous request to ``/api/health`` gets only
``{"ok": true, "version": ...}``; the full snapshot needs
``Authorization: Bearer <health.token>`` (compared in constant time), and a
wrong token is a 401.  ``/metrics`` needs the same token unless
``health.metrics_public`` is set.
"""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for

from edgenode.node.sources import usb
from edgenode.core.errors import EdgenodeError
from edgenode.node.health import diagnostics, metrics
from edgenode.node.health.snapshot import minimal, snapshot
from edgenode.node.web.auth import admin_nav, admin_required
from edgenode.node.web.context import get_db, node
from edgenode.node.web.errors import error_payload

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__, template_folder="templates")


def _bearer_state() -> str:
    """'none' (no credentials), 'ok' (the configured token) or 'bad'."""
    header = request.headers.get("Authorization")
    if header is None:
        return "none"
    token = node().cfg.health.token
    scheme, _, given = header.partition(" ")
    if not token or scheme.lower() != "bearer" or not given.strip():
        return "bad"
    return "ok" if hmac.compare_digest(given.strip().encode(), token.encode()) else "bad"


def _unauthorized():
    log.warning("E_HEALTH_TOKEN: refused %s from %s (wrong or unexpected bearer token)", request.path,
                request.remote_addr)
    if request.path.startswith("/api/"):
        resp = jsonify(error_payload("E_HEALTH_TOKEN", "wrong or missing bearer token", "访问令牌无效"))
    else:
        resp = Response("E_HEALTH_TOKEN: wrong or missing bearer token\n", mimetype="text/plain")
    resp.status_code = 401
    resp.headers["WWW-Authenticate"] = 'Bearer realm="edgenode"'
    return resp


@bp.route("/api/health")
def api_health():
    state = _bearer_state()
    if state == "bad":
        return _unauthorized()
    cfg = node().cfg
    if state == "none":
        return jsonify(minimal(cfg))
    return jsonify(snapshot(cfg, get_db()))


@bp.route("/metrics")
def prometheus():
    cfg = node().cfg
    state = _bearer_state()
    if state == "bad" or (state == "none" and not cfg.health.metrics_public):
        return _unauthorized()
    return Response(metrics.render(snapshot(cfg, get_db())), content_type=metrics.CONTENT_TYPE)


# --- admin page ---------------------------------------------------------------------

@bp.route("/admin/health")
@admin_required
def admin_page():
    cfg = node().cfg
    snap = snapshot(cfg, get_db())
    return render_template("admin/health.html", s=snap, usb=usb.targets(cfg), cfg=cfg)


@bp.route("/admin/health/diagnostics", methods=["POST"])
@admin_required
def admin_diagnostics():
    cfg = node().cfg
    target = request.form.get("target", "download")
    if target == "download":
        data = diagnostics.build(cfg, get_db())
        name = diagnostics.default_name(cfg)
        return Response(data, mimetype="application/gzip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    try:
        path = diagnostics.write_to_usb(cfg, get_db(), target)
    except EdgenodeError as e:
        flash(e.zh, "error")
        return redirect(url_for("health.admin_page"))
    log.info("diagnostics bundle written to %s", path)
    flash(f"诊断包已写入U盘：{path.name}。现在可以拔出U盘。", "ok")
    return redirect(url_for("health.admin_page"))


def init_app(app) -> None:
    app.register_blueprint(bp)
    admin_nav(app, "运行状态", "health.admin_page", order=10)
