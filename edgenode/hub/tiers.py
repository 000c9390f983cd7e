"""Tiers: a hub forwards signed aggregates to its upstream hub (county → province → nation).

A downstream hub enrols at its upstream exactly like a node (one-time code,
its own Ed25519 identity, ``kind: "hub"``) and then POSTs reports to
``/api/v1/aggregates`` as signed requests.  A report carries **absolute**
figures per (origin hub, node, day, column, kind) and unique terminals per
(origin, node, month, column), for every day touched since the last
acknowledged report.  The upstream replaces rather than adds, so a resent or
rebuilt report can never count twice; an older report never overwrites a
newer value (``report_no``).  A built report is kept and resent byte for byte
until acknowledged, so a lost answer is a "duplicate", not a conflict.

A report also carries the county's ``software`` section (hub/tier_software.py) and is sent every
hour even with no new figures: its answer is how a county hears its province's rollout
(``update``, acted on by hub/tier_release.py).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
import time
import urllib.error
import urllib.request

from edgenode import __version__
from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.hub import tier_software, tiers_queries as q
from edgenode.hub.province import fleet_brief, store_brief
from edgenode.hub.registry import log_event

OVERLAP_SECONDS = 120  # rows committed while a report was being built are resent next time


def _post(url: str, body: bytes, headers: dict, timeout: float = 60.0) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"{}")
        except ValueError:
            return e.code, {}
    except (urllib.error.URLError, OSError) as e:
        raise EdgenodeError("E_UPSTREAM_UNREACHABLE", f"upstream hub unreachable: {getattr(e, 'reason', e)}",
                            zh="上级平台无法连接。", status=502) from None


def enroll_upstream(conn: sqlite3.Connection, cfg, url: str, code: str) -> dict:
    """Register this hub's key at the upstream hub with a code issued there."""
    from edgenode.core.identity import load_or_create
    ident = load_or_create(cfg)
    url = url.rstrip("/")
    body = json.dumps({"code": code, "node_id": ident.node_id, "public_key": ident.public_b64(),
                       "name": cfg.hub.name, "township": "", "version": __version__, "kind": "hub"}).encode()
    status, answer = _post(url + "/api/v1/enroll", body, {"Content-Type": "application/json"})
    if status != 200:
        err = answer.get("error", {})
        raise EdgenodeError(err.get("code", "E_UPSTREAM"), err.get("message", f"HTTP {status}"),
                            zh=err.get("message_zh", "上级平台拒绝注册。"), status=status)
    with transaction(conn):
        q.set_upstream(conn, url, time.time())
    return {"url": url, "hub_id": ident.node_id, "upstream_name": answer.get("hub_name")}


def build_report(conn: sqlite3.Connection, hub_id: str, hub_name: str, report_no: int, since: float,
                 fleet: dict | None = None, software: dict | None = None) -> dict:
    """Absolute aggregates for every (node, day) touched after ``since``, plus forwarded tier rows."""
    daily = [[hub_id, *r] for r in q.touched_daily(conn, since)]
    months = {(r[1], r[2][:7]) for r in daily}
    terminals = []
    for node_id, month in sorted(months):
        summarised = q.summarised_terminals_by_column(conn, node_id, month)
        per_col = q.terminals_by_column(conn, node_id, month)
        for col in set(per_col) | set(summarised):
            terminals.append([hub_id, node_id, month, col, per_col.get(col, 0) + summarised.get(col, 0)])
        total = q.terminals_in_month(conn, node_id, month)
        terminals.append([hub_id, node_id, month, "*", total + sum(summarised.values())])
    node_ids = {r[1] for r in daily}
    nodes = [[hub_id, r["node_id"], r["name"], r["township"]] for r in q.village_nodes(conn)
             if r["node_id"] in node_ids]
    # Rows this hub holds for hubs below it travel on unchanged, keeping their origin.
    daily += q.tier_daily_since(conn, since)
    terminals += q.tier_terminals_since(conn, since)
    tier_keys = {(r[0], r[1]) for r in daily if r[0] != hub_id}
    nodes += [list(r) for r in q.tier_nodes(conn) if (r[0], r[1]) in tier_keys]
    report = {"v": 1, "hub_id": hub_id, "hub_name": hub_name, "report_no": report_no, "made_at": time.time(),
              "nodes": nodes, "daily": daily, "terminals": terminals}
    if fleet is not None:
        report["fleet"] = fleet  # optional: the province view's node counts (hub/province.py)
    if software is not None:
        report["software"] = software  # optional: versions and the rollout here (hub/tier_software.py)
    return report


def forward(conn: sqlite3.Connection, cfg) -> dict:
    """Send (or resend) one report to the upstream hub; returns what happened."""
    from edgenode.hub.signing import sign_headers
    from edgenode.core.identity import load_or_create

    up = q.upstream(conn)
    if up is None:
        raise EdgenodeError("E_NO_UPSTREAM", "this hub is not enrolled at an upstream hub "
                            "(edgenode hub upstream enroll URL --code CODE)", zh="尚未在上级平台注册。")
    ident = load_or_create(cfg)
    if up["pending_body"] is None:
        cutoff = time.time() - OVERLAP_SECONDS
        software = tier_software.brief(conn, cfg)
        report = build_report(conn, ident.node_id, cfg.hub.name, up["last_report_no"] + 1, up["cutoff"],
                              fleet=fleet_brief(conn, cfg), software=software)
        # Sent even with no new figures: the report is also how a county hears its province's rollout
        # (the answer's ``update``) and says how its own is going; a quiet county must not go deaf.
        body = gzip.compress(json.dumps(report, ensure_ascii=False, separators=(",", ":")).encode(), 6, mtime=0)
        with transaction(conn):
            q.set_pending_report(conn, report["report_no"], body, cutoff)
        up = q.upstream(conn)
    body, no = bytes(up["pending_body"]), up["pending_no"]
    path = "/api/v1/aggregates"
    headers = {"Content-Type": "application/octet-stream", "X-Edgenode-Report-No": str(no),
               **sign_headers(ident, "POST", path, body, int(time.time()))}
    status, answer = _post(up["url"] + path, body, headers)
    if status != 200:
        err = answer.get("error", {})
        log_event(conn, "warning", err.get("code", "E_UPSTREAM"), None, f"report {no}: HTTP {status}")
        raise EdgenodeError(err.get("code", "E_UPSTREAM"), f"upstream refused report {no}: "
                            f"{err.get('message', f'HTTP {status}')}", zh="上级平台拒收统计报告。", status=502)
    with transaction(conn):
        q.acknowledge_pending_report(conn, time.time())
    out = {"status": answer.get("status", "stored"), "report_no": no, "bytes": len(body)}
    if answer.get("update") is not None:  # our ring of the province's rollout is open (hub/tier_release.py)
        from edgenode.hub import tier_release
        out["update"] = tier_release.on_offer(conn, cfg, up["url"], ident, answer["update"])
    return out


def receive_report(conn: sqlite3.Connection, node: dict, body: bytes) -> dict:
    """Store a report from an enrolled downstream hub (signature already checked)."""
    via = node["node_id"]
    if node.get("kind") != "hub":
        log_event(conn, "warning", "E_NOT_A_HUB", via, "aggregates from a node enrolled as a village node")
        raise EdgenodeError("E_NOT_A_HUB", "only a hub enrolled with kind 'hub' may send aggregates",
                            zh="只有下级平台可以上报汇总数据。", status=403)
    try:
        report = json.loads(gzip.decompress(body))
        no = int(report["report_no"])
        if report.get("v") != 1 or report["hub_id"] != via:
            raise ValueError("header")
        nodes, daily, terminals = report["nodes"], report["daily"], report["terminals"]
        daily = [(str(o), str(n), str(d), str(c), str(k), int(cnt), float(s)) for o, n, d, c, k, cnt, s in daily]
        terminals = [(str(o), str(n), str(m), str(c), int(u)) for o, n, m, c, u in terminals]
        nodes = [(str(o), str(n), str(nm)[:100], str(t)[:100]) for o, n, nm, t in nodes]
    except (ValueError, KeyError, TypeError, OSError, EOFError) as e:
        log_event(conn, "warning", "E_REPORT_FORMAT", via, f"unreadable report: {e}")
        raise EdgenodeError("E_REPORT_FORMAT", "the aggregate report is not readable", zh="汇总报告格式错误。") from None
    try:
        software = tier_software.clean(report.get("software"))
    except EdgenodeError as e:  # the whole report is refused: nothing of it is stored
        log_event(conn, "warning", e.code, via, f"report {no}: {e.message}"[:300])
        raise
    sha = hashlib.sha256(body).hexdigest()
    now = time.time()
    # The duplicate check and the insert share one BEGIN IMMEDIATE: two copies of a report
    # arriving at once (a retry racing its original) must meet as "duplicate", not as a 500.
    with transaction(conn):
        old = q.report_sha(conn, via, no)
        if old is None:
            q.insert_report(conn, via, no, sha, now, len(daily))
            q.upsert_tier_nodes(conn, [(*n, via) for n in nodes])
            q.replace_tier_daily(conn, [(*r, no, now) for r in daily])
            q.replace_tier_terminals(conn, [(*t, no, now) for t in terminals])
            q.count_report_on_hub(conn, via, now)
            store_brief(conn, via, no, report.get("fleet"), now)
            tier_software.store(conn, via, no, software, now)
    update = tier_software.advance(conn, via)  # a duplicate too: its answer may have been the one lost
    extra = {"update": update} if update else {}
    if old is not None:
        if old == sha:
            return {"ok": True, "status": "duplicate", "report_no": no, **extra}
        from edgenode.hub.alerts import raise_alert
        raise_alert(conn, "conflict", via, f"report {no}", "same report number, different content")
        log_event(conn, "warning", "E_REPORT_CONFLICT", via, f"report {no}")
        raise EdgenodeError("E_REPORT_CONFLICT", f"report {no} was stored before with different content",
                            zh="同一编号的汇总报告内容不同，已拒收。", status=409)
    return {"ok": True, "status": "stored", "report_no": no, "rows": len(daily), **extra}
