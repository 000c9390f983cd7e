"""Content fan-out at the hub: township mirrors, their credentials, byte counters, the egress report.

County staff give a node the mirror role (``edgenode hub mirror set``).  Every heartbeat
answer then tells each node its upstreams (the mirrors of its township first; the
node itself appends the county last) and tells each mirror which nodes may pull from
it.  A node's password at a mirror is ``HMAC(mirror_secret, mirror | node)``: one
mirror's list opens no other mirror, and a revoked node drops out of every list at
the mirror's next heartbeat.

Heartbeats carry the nodes' byte counters per source; the report divides the
county's egress (what nodes received from ``county``) by the bytes published.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time

from edgenode.core import keyfile
from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.hub import fanout_queries as q
from edgenode.hub import publish_queries
from edgenode.hub.alerts import raise_alert
from edgenode.hub.days import local_day
from edgenode.hub.registry import find_node, log_event
from edgenode.protocol.fanout import valid_endpoint

SOURCES = ("county", "mirror", "peer", "satellite", "stick")
MAX_TRAFFIC_ROWS = 200   # a node has 5 sources x a few channels x 2 months
MAX_REPORTS = 20


def mirror_secret(cfg) -> bytes:
    return bytes.fromhex(keyfile.read_or_create(cfg.data_path / "mirror_secret"))


def password(secret: bytes, mirror_id: str, node_id: str) -> str:
    return hmac.new(secret, f"{mirror_id}|{node_id}".encode(), hashlib.sha256).hexdigest()[:40]


def set_mirror(conn: sqlite3.Connection, ref: str, *, rsync_url: str = "", http_url: str = "") -> dict:
    node = find_node(conn, ref)
    if node["revoked_at"]:
        raise EdgenodeError("E_NODE_REVOKED", f"{node['node_id']} is revoked", zh="该节点已注销。")
    for url, scheme in ((rsync_url, "rsync://"), (http_url, "http")):
        if url and not url.startswith(scheme):
            raise EdgenodeError("E_MIRROR_URL", f"{url!r} does not start with {scheme}", zh="镜像地址格式不对。")
    with transaction(conn):
        q.set_mirror(conn, node["node_id"], rsync_url, http_url, time.time())
    log_event(conn, "info", "MIRROR_SET", node["node_id"], rsync_url)
    return {"node_id": node["node_id"], "township": node["township"], "rsync_url": rsync_url}


def remove_mirror(conn: sqlite3.Connection, ref: str) -> dict:
    node = find_node(conn, ref)
    with transaction(conn):
        n = q.remove_mirror(conn, node["node_id"])
    return {"node_id": node["node_id"], "removed": bool(n)}


def _serving(conn) -> list[dict]:
    return [dict(m) for m in q.mirrors(conn) if not m["revoked_at"] and not m["suspended_at"] and m["rsync_url"]]


def upstreams_for(conn: sqlite3.Connection, cfg, node: dict) -> list[dict]:
    """The node's mirrors in order: its own township's first, then the others'; never itself."""
    secret = mirror_secret(cfg)
    mine = [m for m in _serving(conn) if m["node_id"] != node["node_id"]]
    mine.sort(key=lambda m: (m["township"] != node.get("township"), m["township"], m["node_id"]))
    return [{"kind": "mirror", "node_id": m["node_id"], "rsync_url": m["rsync_url"], "http_url": m["http_url"],
             "username": node["node_id"], "password": password(secret, m["node_id"], node["node_id"]),
             "township": m["township"]} for m in mine if m["township"] == node.get("township")]


def clients_for(conn: sqlite3.Connection, cfg, mirror_id: str) -> list[dict]:
    """Who may pull from this mirror: every unrevoked node of the county but itself."""
    secret = mirror_secret(cfg)
    return [{"node_id": n["node_id"], "password": password(secret, mirror_id, n["node_id"])}
            for n in q.active_nodes(conn) if n["node_id"] != mirror_id]


def _traffic_rows(node_id: str, traffic) -> list[tuple]:
    rows = []
    for t in traffic[:MAX_TRAFFIC_ROWS] if isinstance(traffic, list) else []:
        if not isinstance(t, dict) or t.get("source") not in SOURCES:
            continue
        month, channel = t.get("month"), t.get("channel", "")
        rx, tx = t.get("rx", 0), t.get("tx", 0)
        if not (isinstance(month, str) and len(month) == 7 and month[4] == "-" and isinstance(channel, str)
                and len(channel) <= 32 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                               for v in (rx, tx))):
            continue
        rows.append((node_id, month, t["source"], channel, rx, tx))
    return rows


def on_heartbeat(conn: sqlite3.Connection, cfg, node: dict, snap: dict) -> dict:
    """Record what a heartbeat says about fan-out; returns the answer's fan-out part."""
    rows = _traffic_rows(node["node_id"], snap.get("traffic"))
    mirror = snap.get("mirror") if isinstance(snap.get("mirror"), dict) else None
    reports = [r for r in (snap.get("mirror_reports") or [])[:MAX_REPORTS] if isinstance(r, dict)
               and isinstance(r.get("mirror"), str) and isinstance(r.get("code"), str)] \
        if isinstance(snap.get("mirror_reports"), list) else []
    is_mirror = q.is_mirror(conn, node["node_id"])
    endpoint = snap.get("swarm") if valid_endpoint(snap.get("swarm")) else None
    with transaction(conn):
        if endpoint:
            q.set_swarm_endpoint(conn, node["node_id"], endpoint, time.time())
        if rows:
            q.upsert_traffic(conn, rows)
        if is_mirror and mirror and str(mirror.get("rsync_url", "")).startswith("rsync://"):
            q.update_mirror_urls(conn, node["node_id"], str(mirror["rsync_url"])[:300],
                                 str(mirror.get("http_url") or "")[:300])
        for r in reports:
            detail = str(r.get("detail", ""))[:300]
            q.add_report(conn, time.time(), node["node_id"], r["mirror"][:64], r["code"][:40], detail)
            q.suspend_mirror(conn, r["mirror"][:64], f"{r['code']} reported by {node['node_id']}", time.time())
    for r in reports:
        log_event(conn, "warning", "E_PEER_CORRUPT" if r["mirror"].startswith("peer:") else "E_MIRROR_TAMPERED",
                  r["mirror"][:64],
                  f"reported by {node['node_id']}: {r['code']} {str(r.get('detail', ''))[:200]}")
        raise_alert(conn, "conflict", r["mirror"][:64], "mirror", f"镜像内容校验失败 ({r['code']})")
    answer = {"upstreams": upstreams_for(conn, cfg, node), "published": publish_queries.latest_channels(conn),
              **swarm_peers(conn, node["node_id"])}
    if is_mirror:
        answer["mirror_clients"] = clients_for(conn, cfg, node["node_id"])
    return answer


def swarm_peers(conn: sqlite3.Connection, node_id: str, *, days: float = 3.0) -> dict:
    """The county's swarm: the other nodes' endpoints, and this node's rank in the hub's order (the first
    falls back on the web seed at once, the others later)."""
    rows = q.swarm_endpoints(conn, time.time() - days * 86400)
    ids = [r["node_id"] for r in rows]
    return {"swarm_peers": [r["endpoint"] for r in rows if r["node_id"] != node_id],
            "swarm_rank": ids.index(node_id) if node_id in ids else len(ids)}


def tree(conn: sqlite3.Connection) -> list[dict]:
    """The fan-out tree for the fleet page: each mirror with the nodes of its township below it."""
    mirrors = [dict(m) for m in q.mirrors(conn) if not m["revoked_at"]]
    nodes = [dict(n) for n in q.active_nodes(conn)]
    mirror_ids = {m["node_id"] for m in mirrors}
    out = []
    for m in mirrors:
        below = [n for n in nodes if n["township"] == m["township"] and n["node_id"] not in mirror_ids]
        out.append({**m, "state": "suspended" if m["suspended_at"] else ("serving" if m["rsync_url"] else "waiting"),
                    "children": below})
    served = {n["node_id"] for t in out if t["state"] == "serving" for n in t["children"]}
    direct = [n for n in nodes if n["node_id"] not in served and n["node_id"] not in mirror_ids]
    return [*out, {"node_id": "", "name": "县中心直连", "township": "", "state": "county", "children": direct}]


def _bundle_bytes(cfg, channel: str, bundle_dir: str) -> int:
    from edgenode.hub.publish import channels_root
    try:
        doc = json.loads((channels_root(cfg) / channel / bundle_dir / "manifest.json").read_bytes())
        return sum(int(e["size"]) for e in doc.get("resources", []))
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def egress_report(conn: sqlite3.Connection, cfg) -> list[dict]:
    """Per channel and month: bytes published, the county's egress, the mirrors' and others' share."""
    published: dict[tuple, int] = {}
    for p in q.publications_with_time(conn):
        month = local_day(p["published_at"], cfg.hub.utc_offset_hours)[:7]
        published[(month, p["channel"])] = published.get((month, p["channel"]), 0) + _bundle_bytes(
            cfg, p["channel"], p["bundle_dir"])
    rows: dict[tuple, dict] = {}
    for t in q.traffic_by_month(conn):
        key = (t["month"], t["channel"])
        row = rows.setdefault(key, {"month": key[0], "channel": key[1], **{s: 0 for s in SOURCES}, "nodes": 0})
        row[t["source"]] += t["rx"]
        row["nodes"] = max(row["nodes"], t["nodes"])
    for key in published:
        rows.setdefault(key, {"month": key[0], "channel": key[1], **{s: 0 for s in SOURCES}, "nodes": 0})
    out = []
    for key in sorted(rows, reverse=True):
        r = rows[key]
        r["published"] = published.get(key, 0)
        r["egress_ratio"] = round(r["county"] / r["published"], 2) if r["published"] else None
        out.append(r)
    return out


def mirror_reports(conn: sqlite3.Connection, limit: int = 50) -> list[dict]:
    return [dict(r) for r in q.reports(conn, limit)]
