"""Node-facing endpoints (protocol v1): enrol, batches, heartbeat, and tier aggregates.

These are the only hub URLs open without a staff login; all but enrol demand a
signed request from an enrolled, unrevoked node (docs/protocol.md).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request, send_file

from edgenode.core.errors import EdgenodeError
from edgenode.hub import (diagnostics as diag, fanout, heartbeat, ingest, keychain, live, registry, releases, rollout,
                          tiers)
from edgenode.hub.signing import verify_request
from edgenode.hub.web.context import cfg, get_db, settings

bp = Blueprint("hub_api", __name__, url_prefix="/api/v1")

NODE_FACING = {"hub_api.enroll", "hub_api.batches", "hub_api.heartbeat", "hub_api.aggregates", "hub_api.diagnostics",
               "hub_api.release_file",
               "hub_tally.rankings",  # signed: hub/web/tally_pages.py
               "hub_contrib_api.offer", "hub_contrib_api.chunk", "hub_contrib_api.status"}  # hub/web/contrib_pages.py


def _signed():
    body = request.get_data(cache=False)
    node, ts = verify_request(get_db(), request.method, request.path, request.headers, body)
    return node, ts, body


@bp.post("/enroll")
def enroll():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise EdgenodeError("E_ENROLL_BODY", "send a JSON object", zh="注册请求格式错误。")
    node = registry.enroll(get_db(), code=str(data.get("code") or ""), node_id=data.get("node_id"),
                           public_key=str(data.get("public_key") or ""), name=data.get("name") or "",
                           township=data.get("township") or "", version=data.get("version") or "",
                           kind="hub" if data.get("kind") == "hub" else "node")
    return jsonify({"ok": True, "node_id": node["node_id"], "hub_name": settings().name,
                    "trust": keychain.offer(cfg())})


@bp.post("/batches")
def batches():
    node, _ts, body = _signed()
    result = ingest.ingest_batch(get_db(), node, request.headers.get("X-Edgenode-Batch-No"), body,
                                 request.headers.get("X-Edgenode-Batch-Signature", ""),
                                 offset_hours=settings().utc_offset_hours, source="net")
    return jsonify(result)


@bp.post("/heartbeat", endpoint="heartbeat")
def heartbeat_():
    node, ts, body = _signed()
    db = get_db("NORMAL")
    answer = heartbeat.record(db, node, body, signed_ts=ts, keep=settings().heartbeat_history)
    answer["diagnostics_requested"] = diag.requested(db, node["node_id"]) is not None
    answer["keylists"] = keychain.chain(cfg())  # rotation and revocation reach the node this way
    answer["live_schedules"] = live.answers(cfg())  # the county's signed 直播预告
    update = rollout.on_heartbeat(get_db(), node["node_id"], heartbeat.parse(body))  # its own FULL connection
    if update:
        answer["update"] = update  # this node's ring is open: install that version (docs/updates.md)
    answer.update(fanout.on_heartbeat(db, cfg(), node, heartbeat.parse(body)))  # upstreams, mirror clients
    return jsonify(answer)


@bp.post("/aggregates")
def aggregates():
    node, _ts, body = _signed()
    return jsonify(tiers.receive_report(get_db(), node, body))


@bp.get("/releases/<version>/<path:name>")
def release_file(version: str, name: str):
    """A published release's file for a county hub below (its province's rollout, hub/tier_release.py)."""
    node, _ts, _body = _signed()
    if node.get("kind") != "hub":
        registry.log_event(get_db(), "warning", "E_NOT_A_HUB", node["node_id"], f"release {version}")
        raise EdgenodeError("E_NOT_A_HUB", "only a hub enrolled with kind 'hub' fetches releases here",
                            zh="只有下级平台可以从这里下载软件更新包。", status=403)
    return send_file(releases.release_file(cfg(), version, name), mimetype="application/octet-stream",
                     conditional=False, max_age=0)


@bp.post("/diagnostics")
def diagnostics():
    node, _ts, body = _signed()
    return jsonify(diag.store(get_db(), cfg(), node, body))
