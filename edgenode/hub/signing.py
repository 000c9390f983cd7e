"""Verifying signed node → hub requests (protocol v1, docs/protocol.md).

Framework-free: the web layer passes the method, path, headers and body.
The timestamp is recorded, never used to refuse: village clocks are wrong.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3

from cryptography.exceptions import InvalidSignature

from edgenode.core.errors import EdgenodeError
from edgenode.hub import registry_queries
from edgenode.hub.registry import NODE_ID, key_object, log_event, revoked_error

H_NODE, H_TS, H_SIG = "X-Edgenode-Node", "X-Edgenode-Timestamp", "X-Edgenode-Signature"


def request_message(method: str, path: str, timestamp: str, body: bytes) -> bytes:
    return f"{method.upper()}\n{path}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}".encode()


def sign_headers(identity, method: str, path: str, body: bytes, timestamp: int) -> dict:
    """The three headers for a signed request (used by tiers and the simulator)."""
    sig = identity.sign(request_message(method, path, str(int(timestamp)), body))
    return {H_NODE: identity.node_id, H_TS: str(int(timestamp)), H_SIG: base64.b64encode(sig).decode()}


def _refuse(conn, code: str, message: str, zh: str, status: int, node_id: str | None, detail: str):
    log_event(conn, "warning", code, node_id, detail)
    return EdgenodeError(code, message, zh=zh, status=status)


def verify_request(conn: sqlite3.Connection, method: str, path: str, headers, body: bytes) -> tuple[dict, int]:
    """Return ``(node row, timestamp)`` for a correctly signed request from an enrolled node."""
    node_id, ts, sig = headers.get(H_NODE), headers.get(H_TS), headers.get(H_SIG)
    if not node_id or not ts or not sig or not NODE_ID.match(node_id) or not ts.lstrip("-").isdigit():
        raise _refuse(conn, "E_UNSIGNED", "signed request headers missing or malformed",
                      "请求未签名。", 401, node_id if node_id and NODE_ID.match(node_id) else None,
                      f"{method} {path}")
    row = registry_queries.node_by_id(conn, node_id)
    if row is None:
        raise _refuse(conn, "E_NODE_UNKNOWN", "this node is not enrolled at the hub", "该节点未在县中心注册。",
                      401, node_id, f"{method} {path}")
    if row["revoked_at"]:
        log_event(conn, "warning", "E_NODE_REVOKED", node_id, f"{method} {path}")
        raise revoked_error()
    try:
        key_object(row["public_key"]).verify(base64.b64decode(sig, validate=True),
                                             request_message(method, path, ts, body))
    except (InvalidSignature, ValueError):
        raise _refuse(conn, "E_BAD_SIGNATURE", "the request signature does not verify", "请求签名无效。",
                      401, node_id, f"{method} {path}") from None
    return dict(row), int(ts)
