"""A county-sized fleet written straight into hub.db with bulk SQL (2,000 nodes in well under a second).

Every node gets a Chinese name and township, a latest heartbeat and a short heartbeat
history; about 5% of the nodes have each kind of problem in ``KINDS``, the rest are
healthy.  The problem a node was given is returned, so a test can compare the hub's
problem list with what was seeded.  Used by tests/test_hub_problems*.py and
bench/bench_hub_pages.py.
"""

from __future__ import annotations

import json
import time
import uuid

from edgenode.core.db import transaction

KINDS = ("offline", "late", "disk", "clock", "integrity", "backlog", "behind")
TOWNSHIPS = ["河口镇", "山前镇", "柳树乡", "石桥镇", "青龙乡", "白沙镇", "红旗乡", "东风镇", "新华乡", "长岭镇",
             "大坪乡", "高桥镇", "龙泉乡", "马鞍镇", "三合乡", "太平镇", "永安乡", "黄土镇", "清水乡", "金沙镇"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
PLACES = ["家村", "家湾", "家寨", "家庄", "家坪", "家沟", "家岭", "家垭"]
CHANNELS = {"sannong": 12, "pushi": 30}


def village_name(i: int) -> str:
    """A distinct Chinese village name for each i (up to several thousand)."""
    s, p = SURNAMES[i % len(SURNAMES)], PLACES[(i // len(SURNAMES)) % len(PLACES)]
    n = i // (len(SURNAMES) * len(PLACES))
    return f"{s}{p}{'一二三四五六七八九十'[n % 10] + '组' if n else ''}服务点"


def _snapshot(node_id: str, kind: str | None, now: float, at: float) -> dict:
    channels = dict(CHANNELS)
    snap = {"node_id": node_id, "version": "0.4.2", "at": at, "boot_id": "b", "uptime": 86400 * 3,
            "disk": {"total": 500e9, "used": 200e9, "free": 300e9, "percent": 40.0}, "cpu_percent": 12.0,
            "mem_percent": 35.0, "catalog": {"resources": 800, "channels": channels},
            "outbox": {"batches": 1, "bytes": 2048}, "last_pull": at - 1800, "last_uplink": at - 300,
            "clock": {"ntp_synced": True, "wall": at, "monotonic": 100.0, "boot_count": 3}, "warnings": []}
    if kind == "disk":
        snap["disk"] = {"total": 500e9, "used": 480e9, "free": 20e9, "percent": 96.0}
    elif kind == "clock":
        snap["clock"]["wall"] = snap["at"] = at - 3 * 3600
        snap["clock"]["ntp_synced"] = False
    elif kind == "integrity":
        snap["warnings"] = ["W_STORE_BAD"]
    elif kind == "backlog":
        snap["outbox"] = {"batches": 40, "bytes": 40 * 300_000}
    elif kind == "behind":
        channels["sannong"] = CHANNELS["sannong"] - 5
    return snap


def seed(conn, n: int = 2000, *, now: float | None = None, share: float = 0.05, history: int = 3,
         id_base: int = 0x1D8A, enrolled: list[str] | None = None) -> dict[str, str | None]:
    """Enrol ``n`` nodes with heartbeats; returns ``{node_id: kind or None}``.  With ``enrolled`` (ids of nodes
    enrolled for real, e.g. by bench/fleet_sim.py's enroll_fleet), those nodes get the names and heartbeats."""
    n = len(enrolled) if enrolled else n
    now = time.time() if now is None else now
    every = round(1 / share)  # e.g. one node in 20 per kind
    nodes, latest, hist, out = [], [], [], {}
    for i in range(n):
        node_id = enrolled[i] if enrolled else uuid.UUID(int=(id_base << 112) + i).hex
        k = (i // len(TOWNSHIPS) + i) % every  # every township gets some of each kind
        kind = KINDS[k] if k < len(KINDS) else None
        age = {"offline": 5 * 86400, "late": 40 * 3600}.get(kind, 600 + i % 600)
        at = now - age
        snap = _snapshot(node_id, kind, now, at)
        nodes.append((node_id, "AAAA", village_name(i), TOWNSHIPS[i % len(TOWNSHIPS)], "0.4.2", now - 90 * 86400, at))
        latest.append((node_id, at, int(at), json.dumps(snap, separators=(",", ":"))))
        for h in range(history, 0, -1):
            t = at - h * 900
            hist.append((node_id, t, json.dumps({"at": t, "disk": {"percent": snap["disk"]["percent"] - h},
                                                 "outbox": {"batches": 1}}, separators=(",", ":"))))
        hist.append((node_id, at, json.dumps({"at": at, "disk": {"percent": snap["disk"]["percent"]}})))
        out[node_id] = kind
    with transaction(conn):
        conn.executemany("INSERT OR REPLACE INTO hub_channels (channel, latest_seq, bundle_dir, published_at) "
                         "VALUES (?, ?, ?, ?)", [(c, s, f"{c}-{s:06d}", now - 86400) for c, s in CHANNELS.items()])
        if enrolled:
            conn.executemany("UPDATE hub_nodes SET name = ?3, township = ?4, version = ?5, enrolled_at = ?6, "
                             "last_heartbeat_at = ?7 WHERE node_id = ?1 AND ?2 IS NOT NULL", nodes)
        else:
            conn.executemany("INSERT INTO hub_nodes (node_id, public_key, name, township, version, enrolled_at, "
                             "last_heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?)", nodes)
        conn.executemany("INSERT INTO hub_latest (node_id, received_at, signed_ts, body) VALUES (?, ?, ?, ?)", latest)
        conn.executemany("INSERT INTO hub_heartbeats (node_id, received_at, body) VALUES (?, ?, ?)", hist)
        # 30 days of visits for the first nodes of each kind, for the node page's chart
        days = [time.strftime("%Y-%m-%d", time.gmtime(now + 8 * 3600 - d * 86400)) for d in range(30)]
        conn.executemany("INSERT INTO hub_daily (node_id, day, column_key, kind, n, seconds, updated_at) "
                         "VALUES (?, ?, 'sannong', 'view', ?, 0, ?)",
                         [(nodes[i][0], day, 5 + (i + d) % 17, now) for i in range(min(n, 40))
                          for d, day in enumerate(days)])
    conn.execute("ANALYZE")
    return out
