"""Enrolment and the node registry: one-time codes, public keys, revocation.

A code is shown to county staff once and stored only as a SHA-256, so a copy
of ``hub.db`` does not let anyone enrol.  Keys are looked up per request (a
primary-key read), never cached across requests by node id, so a revocation
takes effect on the very next request in every worker.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import sqlite3
import time
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.hub import registry_queries as q

log = logging.getLogger(__name__)

# No 0/O, 1/I/L: codes are read over the phone and copied by hand.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
NODE_ID = re.compile(r"^[0-9a-f]{32}$")
LOG_KEEP = 20000


def _norm(code: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", (code or "").upper())


def _hash(code: str) -> str:
    return hashlib.sha256(_norm(code).encode()).hexdigest()


def new_code(conn: sqlite3.Connection, *, township: str = "", days: float = 14.0) -> str:
    """Issue a one-time enrolment code like ``K7QM-2XPD-9RTA``; returns it (shown once)."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(12))
    code = "-".join(raw[i:i + 4] for i in range(0, 12, 4))
    now = time.time()
    with transaction(conn):
        q.insert_code(conn, _hash(code), raw[-4:], township.strip(), now, now + days * 86400)
    return code


CODE_STATES_ZH = {"open": "可以使用", "used": "已使用", "expired": "已过期", "revoked": "已作废"}


def list_codes(conn: sqlite3.Connection) -> list[dict]:
    now = time.time()
    out = []
    for r in q.codes_newest_first(conn):
        d = dict(r)
        d.pop("code_hash")
        d["state"] = ("revoked" if r["revoked_at"] else "used" if r["used_at"]
                      else "expired" if r["expires_at"] < now else "open")
        d["state_zh"] = CODE_STATES_ZH[d["state"]]
        node = q.node_by_id(conn, r["used_by"]) if r["used_by"] else None
        d["used_by_name"] = (node["name"] or "未命名服务点") if node else ""
        out.append(d)
    return out


def revoke_code(conn: sqlite3.Connection, hint: str) -> int:
    with transaction(conn):
        return q.revoke_open_codes_by_hint(conn, _norm(hint)[-4:], time.time())


def _code_error() -> EdgenodeError:
    return EdgenodeError("E_ENROLL_CODE", "the enrolment code is unknown, used, expired or revoked",
                         zh="注册码无效、已使用、已过期或已作废，请向县中心索取新的注册码。", status=403)


def parse_public_key(b64: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(b64 or "", validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise EdgenodeError("E_ENROLL_KEY", "public_key must be base64 of a raw 32-byte Ed25519 key",
                            zh="节点公钥格式错误。", status=400) from None


def enroll(conn: sqlite3.Connection, *, code: str, node_id: str, public_key: str, name: str = "",
           township: str = "", version: str = "", kind: str = "node") -> dict:
    """Spend a one-time code to register a node's public key.

    Re-sending the same enrolment (same node, same key) after a lost answer is
    accepted without a new code; a different key for a known node id is refused.
    """
    if not isinstance(node_id, str) or not NODE_ID.match(node_id):
        raise EdgenodeError("E_ENROLL_NODE", "node_id must be 32 lowercase hex characters",
                            zh="节点编号格式错误。", status=400)
    parse_public_key(public_key)
    name, township, version = (str(x or "")[:100].strip() for x in (name, township, version))
    now = time.time()
    refusal = None
    with transaction(conn):
        existing = q.node_by_id(conn, node_id)
        row = q.code_by_hash(conn, _hash(code))
        if existing is not None:
            if existing["revoked_at"]:
                refusal = ("E_NODE_REVOKED", "enrolment attempt by a revoked node", revoked_error())
            elif existing["public_key"] != public_key:
                refusal = ("E_ENROLL_KEY", "enrolment with a different key refused",
                           EdgenodeError("E_NODE_EXISTS", "this node id is enrolled with a different key",
                                         zh="该节点编号已用另一把密钥注册。", status=409))
            else:
                return dict(existing)
        elif row is None or row["used_at"] or row["revoked_at"] or row["expires_at"] < now:
            refusal = ("E_ENROLL_CODE", "enrolment with a bad code refused", _code_error())
        else:
            q.mark_code_used(conn, row["code_hash"], now, node_id)
            q.insert_node(conn, node_id, public_key, kind, name, row["township"] or township, version, now)
    if refusal:
        log_event(conn, "warning", refusal[0], node_id, refusal[1])
        raise refusal[2]
    log_event(conn, "info", "ENROLLED", node_id, f"{name} ({kind})")
    return get_node(conn, node_id)


def revoked_error() -> EdgenodeError:
    return EdgenodeError("E_NODE_REVOKED", "this node has been revoked at the hub",
                         zh="该节点已被县中心注销。", status=403)


def get_node(conn: sqlite3.Connection, node_id: str) -> dict:
    row = q.node_by_id(conn, node_id)
    if row is None:
        raise EdgenodeError("E_NODE_UNKNOWN", f"no enrolled node {node_id}", zh="没有这个节点。", status=404)
    return dict(row)


def find_node(conn: sqlite3.Connection, ref: str) -> dict:
    """A node by id, id prefix (≥ 6 characters) or exact name."""
    rows = q.nodes_matching(conn, ref)
    if len(rows) == 1:
        return dict(rows[0])
    if not rows:
        raise EdgenodeError("E_NODE_UNKNOWN", f"no enrolled node matches {ref!r}", zh="没有这个节点。", status=404)
    raise EdgenodeError("E_NODE_AMBIGUOUS", f"{len(rows)} nodes match {ref!r}; give more of the id",
                        zh="有多个节点符合，请输入更完整的编号。", status=400)


def list_nodes(conn: sqlite3.Connection) -> list[dict]:
    return [dict(r) for r in q.nodes_in_order(conn)]


def revoke(conn: sqlite3.Connection, ref: str) -> dict:
    node = find_node(conn, ref)
    with transaction(conn):
        q.mark_node_revoked(conn, node["node_id"], time.time())
        log_event(conn, "warning", "REVOKED", node["node_id"], node["name"])
    return get_node(conn, node["node_id"])


def rename(conn: sqlite3.Connection, ref: str, *, name: str | None = None, township: str | None = None) -> dict:
    node = find_node(conn, ref)
    with transaction(conn):
        if name is not None:
            q.set_node_name(conn, node["node_id"], name.strip()[:100])
        if township is not None:
            q.set_node_township(conn, node["node_id"], township.strip()[:100])
    return get_node(conn, node["node_id"])


@lru_cache(maxsize=65536)
def key_object(public_key_b64: str) -> Ed25519PublicKey:
    # Cached by the key's bytes, not the node id: a revocation or re-key is a new lookup.
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))


def log_event(conn: sqlite3.Connection, level: str, code: str, node_id: str | None, detail: str = "") -> None:
    """Record a refusal or notable ingest in the hub log table and the process log."""
    (log.warning if level == "warning" else log.info)("%s node=%s %s", code, node_id, detail)
    with transaction(conn):
        log_id = q.insert_log(conn, time.time(), level, code, node_id, detail[:500])
        if log_id % 1000 == 0:  # forged traffic must not grow the table without bound
            q.delete_log_up_to(conn, log_id - LOG_KEEP)


def recent_log(conn: sqlite3.Connection, node_id: str | None = None, limit: int = 50) -> list[dict]:
    return q.recent_log(conn, node_id, limit)
