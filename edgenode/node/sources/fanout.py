"""Content fan-out on the node: byte counters per source, the upstream list, mirror bans.

Every byte that arrives is counted under its source (``county``, ``mirror``, ``peer``,
``satellite``, ``stick``) per month and channel; the heartbeat carries this month's and
last month's counters, and the hub divides the county's share by what it published.

The hub assigns each node its upstreams (township mirror first, then the county) and
hands them over in the heartbeat's answer, with a password for each mirror that is
valid only for this node at that mirror.  A mirror is untrusted transport: the import
checks every byte against the signed manifest, and a mirror caught serving bytes that
fail the check is banned here and reported to the hub in the next heartbeat.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time

from edgenode.core.db import transaction
from edgenode.node.sources import fanout_queries as q
from edgenode.protocol.fanout import valid_endpoint

log = logging.getLogger(__name__)
SOURCES = ("county", "mirror", "peer", "satellite", "stick")
# Import failures that mean the bytes were not what the publisher signed (docs/bundle-format.md).
# Not E_SIG_UNTRUSTED: that is this node's trust store, and the county's copy would fail the same way.
INTEGRITY_CODES = {"E_HASH_MISMATCH", "E_SIZE_MISMATCH", "E_SIG_INVALID", "E_MANIFEST_INVALID"}
NODE_ID = re.compile(r"^[0-9a-f]{8,64}$")
RSYNC_URL = re.compile(r"^rsync://[A-Za-z0-9.\-]{1,253}(:\d{1,5})?(/[A-Za-z0-9._-]{1,64})?$")


def month_of(t: float) -> str:
    return time.strftime("%Y-%m", time.localtime(t))


def count(conn: sqlite3.Connection, source: str, channel: str = "", *, rx: int = 0, tx: int = 0,
          now: float | None = None) -> None:
    """Add to this month's counters (its own short transaction)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    if rx <= 0 and tx <= 0:
        return
    month = month_of(time.time() if now is None else now)
    with transaction(conn):
        if rx > 0:
            q.add_bytes(conn, month, source, channel or "", "rx", rx)
        if tx > 0:
            q.add_bytes(conn, month, source, channel or "", "tx", tx)


def count_imports(conn: sqlite3.Connection, source: str, results) -> int:
    """Bytes a stick or the spool brought in: what each import copied into the store."""
    total = 0
    for r in results:
        if getattr(r, "bytes_copied", 0):
            count(conn, source, r.channel or "", rx=r.bytes_copied)
            total += r.bytes_copied
    return total


def traffic(conn: sqlite3.Connection, *, now: float | None = None) -> list[dict]:
    """This month's and last month's counters, as the heartbeat carries them."""
    now = time.time() if now is None else now
    since = month_of(now - 32 * 86400)
    out: dict[tuple, dict] = {}
    for r in q.traffic_since(conn, since):
        row = out.setdefault((r["month"], r["source"], r["channel"]), {
            "month": r["month"], "source": r["source"], "channel": r["channel"], "rx": 0, "tx": 0})
        row[r["direction"]] = r["bytes"]
    return list(out.values())


def _valid_upstream(u) -> bool:
    """A hub's answer is checked like any input: the URL becomes an rsync argument, the user name part of it."""
    return (isinstance(u, dict) and u.get("kind") in ("mirror", "county") and isinstance(u.get("rsync_url"), str)
            and RSYNC_URL.match(u["rsync_url"]) is not None
            and all(isinstance(u.get(k, ""), str) for k in ("node_id", "http_url", "username", "password"))
            and all(u.get(k, "") == "" or NODE_ID.match(u[k]) for k in ("node_id", "username"))
            and len(u.get("password", "")) <= 128 and "\n" not in u.get("password", ""))


def apply_answer(conn: sqlite3.Connection, answer: dict, *, now: float | None = None) -> dict:
    """Keep what the hub's heartbeat answer says about fan-out: upstreams, mirror clients, latest seqs."""
    now = time.time() if now is None else now
    out = {}
    ups, clients, latest = answer.get("upstreams"), answer.get("mirror_clients"), answer.get("published")
    peers, rank = answer.get("swarm_peers"), answer.get("swarm_rank")
    with transaction(conn):
        if isinstance(peers, list) and isinstance(rank, int) and not isinstance(rank, bool):
            eps = [e for e in peers[:500] if isinstance(e, str) and valid_endpoint(e)]
            q.replace_swarm_peers(conn, eps, rank)
            out["swarm_peers"] = len(eps)
        if isinstance(ups, list) and all(_valid_upstream(u) for u in ups):
            q.replace_upstreams(conn, ups, now)
            out["upstreams"] = len(ups)
        if isinstance(clients, list):
            pairs = [(c["node_id"], c["password"]) for c in clients if isinstance(c, dict)
                     and isinstance(c.get("node_id"), str) and NODE_ID.match(c["node_id"])
                     and isinstance(c.get("password"), str) and re.fullmatch(r"[0-9a-f]{32,64}", c["password"])]
            q.replace_mirror_clients(conn, pairs, now)
            out["mirror_clients"] = len(pairs)
        if isinstance(latest, dict):
            q.replace_published(conn, {k: v for k, v in latest.items() if isinstance(k, str)
                                       and isinstance(v, int) and not isinstance(v, bool)})
    return out


def upstreams(cfg, conn: sqlite3.Connection) -> list[dict]:
    """Where to pull from, in order, without banned mirrors; the configured county is always last."""
    banned = q.banned(conn)
    rows = [dict(r) for r in q.upstreams(conn)]
    out = [r for r in rows if r["kind"] != "mirror" or r["node_id"] not in banned]
    county = cfg["sync.rsync_url"]
    if county and not any(r["kind"] == "county" for r in out):
        out.append({"kind": "county", "node_id": "", "rsync_url": county, "http_url": "", "username": "",
                    "password": ""})
    return out


def ban(conn: sqlite3.Connection, node_id: str, code: str, detail: str) -> None:
    log.warning("E_MIRROR_TAMPERED: mirror %s served bytes that fail the manifest (%s: %s); skipped from now on",
                node_id, code, detail[:200])
    with transaction(conn):
        q.ban(conn, node_id, code, detail[:500], time.time())


def pending_reports(conn: sqlite3.Connection) -> list[dict]:
    return [{"mirror": r["node_id"], "code": r["code"], "detail": r["detail"], "at": r["at"]}
            for r in q.unreported_bans(conn)]


def reports_delivered(conn: sqlite3.Connection, reports: list[dict]) -> None:
    with transaction(conn):
        q.mark_reported(conn, [r["mirror"] for r in reports], time.time())


def published(conn: sqlite3.Connection) -> dict[str, int]:
    return q.published(conn)


def accepted_seq(conn: sqlite3.Connection, channel: str) -> int:
    return q.accepted_seq(conn, channel)


def swarm_peers(conn: sqlite3.Connection) -> tuple[list[tuple[str, int]], int]:
    """The hub's last list of the county's swarm endpoints, and this node's rank in it."""
    rows = q.swarm_peers(conn)
    peers = [(r["endpoint"].rsplit(":", 1)[0], int(r["endpoint"].rsplit(":", 1)[1])) for r in rows]
    return peers, (rows[0]["rank"] if rows else 0)
