"""Staged software rollouts: a release goes to the fleet ring by ring, and stops itself on failures.

County staff choose a published release version and rings (``2`` nodes, ``10%``, ``all``;
pilot nodes first).  The first ring opens at once: the heartbeat answer of each of its
nodes carries ``update: {version}``, and the node installs it in its maintenance window
(docs/updates.md).  A node's next heartbeat reports what happened: the new version after a
passed health gate (``updated``), or ``E_UPDATE_ROLLED_BACK`` with the reason (``failed``).
The next ring opens only when every node of the open ring has reported; the rollout halts
by itself as soon as more than ``max_fail_share`` of the nodes told to update have failed,
and no further node is told.  A province rolls out to its county hubs the same way
(``kind="hub"``): a county hub reports its version in its own heartbeat.
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
          now: float | None = None) -> dict:
    """Begin a rollout; the first ring is told at its next heartbeat."""
    version_key(version)
    if not 0 <= max_fail_share < 1:
        raise EdgenodeError("E_ROLLOUT_SHARE", "max fail share must be in [0, 1)", zh="失败比例必须在 0 到 1 之间")
    if q.running_ids(conn):
        raise EdgenodeError("E_ROLLOUT_RUNNING", "a rollout is already running: wait for it or cancel it",
                            zh="已有一次更新正在进行")
    pool = list(nodes) if nodes is not None else q.candidate_nodes(conn, kind)
    unknown = [p for p in pilots if p not in pool]
    if unknown:
        raise EdgenodeError("E_ROLLOUT_NODE", f"pilot nodes not enrolled: {unknown}", zh="试点服务点不存在")
    ordered = list(dict.fromkeys([*pilots, *pool]))
    sizes = ring_sizes(rings, len(ordered))
    now = time.time() if now is None else now
    with transaction(conn):
        rid = q.insert_rollout(conn, version, max_fail_share, now, by)
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
    q.insert_log(conn, rid, now, "ring_open", ring, None, f"{n} nodes told to update")


def _report(snap: dict, version: str) -> tuple[str | None, str, str]:
    """('updated'|'failed'|None, code, detail) from a heartbeat's ``software`` section."""
    sw = snap.get("software") if isinstance(snap.get("software"), dict) else {}
    last = sw.get("last_update") if isinstance(sw.get("last_update"), dict) else {}
    if sw.get("version") == version and last.get("version") in (None, version) and last.get("state") != "rolled_back":
        return "updated", "", ""
    if last.get("version") == version and last.get("state") == "rolled_back":
        return "failed", str(last.get("code") or "E_UPDATE_ROLLED_BACK"), str(last.get("reason") or "")
    return None, "", ""


def on_heartbeat(conn: sqlite3.Connection, node_id: str, snap: dict, now: float | None = None) -> dict | None:
    """Record what the node reports, move the rollout on, and say what the answer tells the node."""
    m = q.membership(conn, node_id)
    if m is None:
        return None
    now = time.time() if now is None else now
    if m["state"] == "go":
        outcome, code, detail = _report(snap, m["version"])
        if outcome:
            with transaction(conn):
                q.set_member(conn, m["rollout_id"], node_id, outcome, now, code, detail)
                q.insert_log(conn, m["rollout_id"], now, f"node_{outcome}", m["ring"], node_id,
                             f"{code}: {detail}" if code else "")
                evaluate(conn, m["rollout_id"], now)
    m = q.membership(conn, node_id)
    if m is not None and m["state"] == "go":
        return {"version": m["version"], "rollout": m["rollout_id"]}
    return None


def evaluate(conn: sqlite3.Connection, rid: int, now: float) -> None:
    """Inside the caller's transaction: halt, open the next ring, or finish."""
    r = q.rollout(conn, rid)
    if r is None or r["state"] != "running":
        return
    counts = q.ring_counts(conn, rid)
    told = sum(n for ring, c in counts.items() if ring <= r["ring"] for s, n in c.items() if s != "waiting")
    failed = sum(c.get("failed", 0) for ring, c in counts.items() if ring <= r["ring"])
    if told and failed / told > r["max_fail_share"]:
        first = next((m for m in q.members(conn, rid) if m["state"] == "failed"), None)
        why = f"{first['code']}: {first['detail']}" if first else ""
        reason = (f"halted in ring {r['ring'] + 1}: {failed} of {told} nodes told to update failed and rolled back "
                  f"(more than {r['max_fail_share']:.0%}); first: {first['node_id'] if first else ''} {why}")
        zh = (f"第 {r['ring'] + 1} 批更新后，已通知的 {told} 个服务点中有 {failed} 个更新失败并已自动回退"
              f"（超过 {r['max_fail_share']:.0%}），更新已自动暂停，其余服务点不会更新。"
              f"首个失败：{first['name'] or first['node_id'] if first else ''}，原因：{why}")
        q.finish(conn, rid, "halted", now, reason, zh)
        q.insert_log(conn, rid, now, "halted", r["ring"], None, reason)
        return
    current = counts.get(r["ring"], {})
    if current.get("go", 0) or current.get("waiting", 0):
        return
    later = sorted(ring for ring in counts if ring > r["ring"])
    if later:
        _open(conn, rid, later[0], now)
    else:
        q.finish(conn, rid, "done", now, "every ring updated", "全部服务点已更新")
        q.insert_log(conn, rid, now, "done", r["ring"], None, "")


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
    for m in members:
        m["state_zh"] = NODE_STATE_ZH.get(m["state"], m["state"])
    return {**dict(r), "state_zh": STATE_ZH.get(r["state"], r["state"]), "nodes": members,
            "log": [dict(x) for x in q.log_rows(conn, rid)]}


def listing(conn: sqlite3.Connection) -> list[dict]:
    return [{**dict(r), "state_zh": STATE_ZH.get(r["state"], r["state"])} for r in q.rollouts(conn)]
