"""Staged software rollouts: a release goes to the fleet ring by ring, and stops itself on failures.

County staff choose a published release version and rings (``2`` nodes, ``10%``, ``all``;
pilot nodes first).  The first ring opens at once: the heartbeat answer of each of its
nodes carries ``update: {version}``, and the node installs it in its maintenance window
(docs/updates.md).  A node's next heartbeat reports what happened: the new version after a
passed health gate (``updated``), or ``E_UPDATE_ROLLED_BACK`` with the reason (``failed``).
The next ring opens only when every node of the open ring has reported; the rollout halts
by itself as soon as more than ``max_fail_share`` of the nodes told to update have failed,
and no further node is told.

A province rolls out to its county hubs the same way (``kind="hub"``, docs/updates.md
"A province's rollout"): the same rings and tables, a county for a node.  The open ring's
counties find ``update`` in the answer to their hourly report, fetch and verify the release,
and roll it out to their own nodes; their next reports carry that rollout's state
(hub/tier_software.py), and :func:`on_county_report` reads *done* as updated and
*halted*, *failed* or *cancelled* as failed.
"""

from __future__ import annotations

import math
import sqlite3
import time

from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.hub import rollout_queries as q
from edgenode.protocol.release import version_key

STATE_ZH = {"running": "进行中", "halted": "已自动暂停", "done": "已完成", "cancelled": "已取消"}
NODE_STATE_ZH = {"waiting": "等待中", "go": "正在更新", "updated": "已更新", "failed": "更新失败，已回退"}
COUNTY_STATE_ZH = {"waiting": "等待中", "go": "县内正在分批更新", "updated": "县内已全部更新", "failed": "县内更新暂停或失败"}
NOUN_ZH = {"node": "服务点", "hub": "县级平台"}
COUNTY_FAILED = {"halted", "failed", "cancelled"}  # a county's own rollout states that count as a failure here


def ring_sizes(specs: list[str], total: int) -> list[int]:
    """Ring sizes from ``["2", "10%", "all"]`` for ``total`` nodes; the last ring takes what is left."""
    if not specs:
        raise EdgenodeError("E_ROLLOUT_RINGS", "give at least one ring (e.g. 2, 10%, all)", zh="请至少设置一批")
    sizes, left = [], total
    for i, spec in enumerate(specs):
        s = str(spec).strip().lower()
        try:
            if s == "all":
                n = left
            elif s.endswith("%"):
                n = math.ceil(total * float(s[:-1]) / 100)
            else:
                n = int(s)
        except ValueError:
            raise EdgenodeError("E_ROLLOUT_RINGS", f"ring {spec!r}: a number, a percentage or 'all'",
                                zh="每批的数量格式不正确") from None
        if n < 0 or (s == "all" and i != len(specs) - 1):
            raise EdgenodeError("E_ROLLOUT_RINGS", f"ring {spec!r}: not a size ('all' only last)",
                                zh="每批的数量格式不正确")
        n = min(n, left)
        sizes.append(n)
        left -= n
    return sizes


def start(conn: sqlite3.Connection, version: str, rings: list[str], *, max_fail_share: float = 0.1,
          pilots: list[str] = (), nodes: list[str] | None = None, kind: str = "node", by: str = "",
          now: float | None = None, upstream_id: int | None = None) -> dict:
    """Begin a rollout; the first ring is told at its next heartbeat (a county: its next report)."""
    version_key(version)
    if not 0 <= max_fail_share < 1:
        raise EdgenodeError("E_ROLLOUT_SHARE", "max fail share must be in [0, 1)", zh="失败比例必须在 0 到 1 之间")
    if q.running_ids(conn, kind):
        raise EdgenodeError("E_ROLLOUT_RUNNING", "a rollout is already running: wait for it or cancel it",
                            zh="已有一次更新正在进行")
    pool = list(nodes) if nodes is not None else q.candidate_nodes(conn, kind)
    if not pool:
        what = "county hubs enrolled here" if kind == "hub" else "nodes enrolled here"
        raise EdgenodeError("E_ROLLOUT_EMPTY", f"no {what} to roll out to", zh=f"没有可以更新的{NOUN_ZH[kind]}")
    unknown = [p for p in pilots if p not in pool]
    if unknown:
        raise EdgenodeError("E_ROLLOUT_NODE", f"pilot {'hubs' if kind == 'hub' else 'nodes'} not enrolled: {unknown}",
                            zh=f"试点{NOUN_ZH[kind]}不存在")
    ordered = list(dict.fromkeys([*pilots, *pool]))
    sizes = ring_sizes(rings, len(ordered))
    now = time.time() if now is None else now
    with transaction(conn):
        rid = q.insert_rollout(conn, version, max_fail_share, now, by, kind, upstream_id)
        i = 0
        for ring, size in enumerate(sizes):
            for node_id in ordered[i:i + size]:
                q.insert_member(conn, rid, node_id, ring)
            i += size
        q.insert_log(conn, rid, now, "started", None, None, f"version {version}, rings {sizes}")
        _open(conn, rid, 0, now)
    return describe(conn, rid)


def _open(conn, rid: int, ring: int, now: float) -> None:
    n = q.open_ring(conn, rid, ring, now)
    what = "county hubs" if q.rollout(conn, rid)["kind"] == "hub" else "nodes"
    q.insert_log(conn, rid, now, "ring_open", ring, None, f"{n} {what} told to update")


def _report(snap: dict, version: str) -> tuple[str | None, str, str]:
    """('updated'|'failed'|None, code, detail) from a heartbeat's ``software`` section."""
    sw = snap.get("software") if isinstance(snap.get("software"), dict) else {}
    last = sw.get("last_update") if isinstance(sw.get("last_update"), dict) else {}
    if sw.get("version") == version and last.get("version") in (None, version) and last.get("state") != "rolled_back":
        return "updated", "", ""
    if last.get("version") == version and last.get("state") == "rolled_back":
        return "failed", str(last.get("code") or "E_UPDATE_ROLLED_BACK"), str(last.get("reason") or "")
    return None, "", ""


def _record(conn, m, node_id: str, outcome: str | None, code: str, detail: str, now: float) -> None:
    if outcome:
        with transaction(conn):
            q.set_member(conn, m["rollout_id"], node_id, outcome, now, code, detail)
            q.insert_log(conn, m["rollout_id"], now, f"node_{outcome}", m["ring"], node_id,
                         f"{code}: {detail}" if code else "")
            evaluate(conn, m["rollout_id"], now)


def _offer(conn, node_id: str) -> dict | None:
    m = q.membership(conn, node_id)
    if m is not None and m["state"] == "go":
        return {"version": m["version"], "rollout": m["rollout_id"]}
    return None


def on_heartbeat(conn: sqlite3.Connection, node_id: str, snap: dict, now: float | None = None) -> dict | None:
    """Record what the node reports, move the rollout on, and say what the answer tells the node."""
    m = q.membership(conn, node_id)
    if m is None:
        return None
    if m["state"] == "go":
        _record(conn, m, node_id, *_report(snap, m["version"]), time.time() if now is None else now)
    return _offer(conn, node_id)


def on_county_report(conn: sqlite3.Connection, via: str, sw: dict | None, now: float | None = None) -> dict | None:
    """At a province: a county's stored software section moves the province's rollout on.

    ``sw["rollout"]`` is the county's own rollout for the province rollout it names (``upstream``);
    a section about another rollout or version says nothing here.  Returns the offer for the answer.
    """
    m = q.membership(conn, via)
    if m is None:
        return None
    r = (sw or {}).get("rollout") or {}
    if m["state"] == "go" and r.get("upstream") == m["rollout_id"] and r.get("version") == m["version"]:
        outcome = "updated" if r["state"] == "done" else "failed" if r["state"] in COUNTY_FAILED else None
        code = "" if outcome != "failed" else (r.get("code") or f"E_ROLLOUT_{r['state'].upper()}")
        detail = "" if outcome != "failed" else (r.get("reason_zh") or r.get("reason") or "")
        _record(conn, m, via, outcome, code, detail, time.time() if now is None else now)
    return _offer(conn, via)


def evaluate(conn: sqlite3.Connection, rid: int, now: float) -> None:
    """Inside the caller's transaction: halt, open the next ring, or finish."""
    r = q.rollout(conn, rid)
    if r is None or r["state"] != "running":
        return
    counts = q.ring_counts(conn, rid)
    told = sum(n for ring, c in counts.items() if ring <= r["ring"] for s, n in c.items() if s != "waiting")
    failed = sum(c.get("failed", 0) for ring, c in counts.items() if ring <= r["ring"])
    if told and failed / told > r["max_fail_share"]:
        _halt(conn, r, told, failed, now)
        return
    current = counts.get(r["ring"], {})
    if current.get("go", 0) or current.get("waiting", 0):
        return
    later = sorted(ring for ring in counts if ring > r["ring"])
    if later:
        _open(conn, rid, later[0], now)
    else:
        q.finish(conn, rid, "done", now, "every ring updated", f"全部{NOUN_ZH.get(r['kind'], '服务点')}已更新")
        q.insert_log(conn, rid, now, "done", r["ring"], None, "")


def _halt(conn, r, told: int, failed: int, now: float) -> None:
    rid, hubs = r["id"], r["kind"] == "hub"
    first = next((m for m in q.members(conn, rid) if m["state"] == "failed"), None)
    why = f"{first['code']}: {first['detail']}" if first else ""
    who = (first["name"] or first["node_id"]) if first else ""
    what = "county hubs told to update halted or failed" if hubs else "nodes told to update failed and rolled back"
    reason = (f"halted in ring {r['ring'] + 1}: {failed} of {told} {what} "
              f"(more than {r['max_fail_share']:.0%}); first: {first['node_id'] if first else ''} {why}")
    if hubs:
        zh = (f"第 {r['ring'] + 1} 批更新后，已通知的 {told} 个县级平台中有 {failed} 个县内更新已暂停或失败"
              f"（超过 {r['max_fail_share']:.0%}），全省更新已自动暂停，其余县级平台不会收到这个版本。"
              f"首个：{who}，原因：{why}")
    else:
        zh = (f"第 {r['ring'] + 1} 批更新后，已通知的 {told} 个服务点中有 {failed} 个更新失败并已自动回退"
              f"（超过 {r['max_fail_share']:.0%}），更新已自动暂停，其余服务点不会更新。首个失败：{who}，原因：{why}")
    q.finish(conn, rid, "halted", now, reason, zh)
    q.insert_log(conn, rid, now, "halted", r["ring"], None, reason)


def cancel(conn: sqlite3.Connection, rid: int, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    with transaction(conn):
        r = q.rollout(conn, rid)
        if r is None:
            raise EdgenodeError("E_ROLLOUT_UNKNOWN", f"no rollout {rid}", zh="没有这次更新", status=404)
        if r["state"] == "running":
            q.finish(conn, rid, "cancelled", now, "cancelled by staff", "工作人员已取消")
            q.insert_log(conn, rid, now, "cancelled", r["ring"], None, "")
    return describe(conn, rid)


def describe(conn: sqlite3.Connection, rid: int) -> dict:
    r = q.rollout(conn, rid)
    if r is None:
        raise EdgenodeError("E_ROLLOUT_UNKNOWN", f"no rollout {rid}", zh="没有这次更新", status=404)
    members = [dict(m) for m in q.members(conn, rid)]
    names = COUNTY_STATE_ZH if r["kind"] == "hub" else NODE_STATE_ZH
    for m in members:
        m["state_zh"] = names.get(m["state"], m["state"])
    return {**dict(r), "state_zh": STATE_ZH.get(r["state"], r["state"]), "nodes": members,
            "log": [dict(x) for x in q.log_rows(conn, rid)]}


def listing(conn: sqlite3.Connection, kind: str | None = None) -> list[dict]:
    return [{**dict(r), "state_zh": STATE_ZH.get(r["state"], r["state"])} for r in q.rollouts(conn, kind=kind)]
