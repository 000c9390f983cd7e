"""Heartbeats: the latest health snapshot per node plus a short history for trends.

A heartbeat is a snapshot that the next one supersedes, so the web layer commits
it on a ``synchronous=NORMAL`` connection (in WAL mode: durable at the next
checkpoint, never corrupt); batches keep ``FULL`` because the node deletes them
on our ack.  Two inserts and nothing else: at 1,000 heartbeats/s every statement
shows.
"""

from __future__ import annotations

import json
import sqlite3
import time

from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.hub import heartbeat_queries as q
from edgenode.hub.registry import log_event

MAX_BYTES = 64 * 1024
PRUNE_EVERY = 16
TREND_KEYS = ("at", "version", "uptime", "cpu_percent", "mem_percent", "last_pull", "last_uplink")


def parse(body: bytes) -> dict:
    if len(body) > MAX_BYTES:
        raise EdgenodeError("E_HEARTBEAT", f"heartbeat larger than {MAX_BYTES} bytes", zh="心跳数据太大。")
    try:
        snap = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise EdgenodeError("E_HEARTBEAT", "heartbeat is not JSON", zh="心跳数据格式错误。") from None
    if not isinstance(snap, dict):
        raise EdgenodeError("E_HEARTBEAT", "heartbeat must be a JSON object", zh="心跳数据格式错误。")
    return snap


def record(conn: sqlite3.Connection, node: dict, body: bytes, *, signed_ts: int | None, keep: int = 200,
           received_at: float | None = None) -> dict:
    """Store one heartbeat for an enrolled node; returns the protocol's answer."""
    try:
        snap = parse(body)
    except EdgenodeError as e:
        log_event(conn, "warning", e.code, node["node_id"], e.message)
        raise
    if snap.get("node_id") not in (None, node["node_id"]):
        log_event(conn, "warning", "E_HEARTBEAT", node["node_id"], "heartbeat names another node")
        raise EdgenodeError("E_HEARTBEAT", "heartbeat node_id does not match the signer", zh="心跳数据与节点不符。")
    now = time.time() if received_at is None else received_at
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    # History keeps only the trend figures (~150 bytes, not the whole snapshot): 200 full
    # heartbeats of 2,000 nodes would be most of a gigabyte.
    trend = json.dumps({k: snap[k] for k in TREND_KEYS if k in snap} | (
        {"disk": {"percent": snap["disk"].get("percent")}} if isinstance(snap.get("disk"), dict) else {}) | (
        {"outbox": {"batches": snap["outbox"].get("batches")}} if isinstance(snap.get("outbox"), dict) else {}),
        separators=(",", ":"))
    with transaction(conn):
        q.replace_latest(conn, node["node_id"], now, signed_ts, text)
        if q.insert_history(conn, node["node_id"], now, trend) % PRUNE_EVERY == 0:
            prune(conn, node["node_id"], keep)
    return {"ok": True, "server_time": time.time()}


def prune(conn: sqlite3.Connection, node_id: str, keep: int) -> None:
    q.prune_history(conn, node_id, keep)


def latest(conn: sqlite3.Connection, node_id: str) -> dict | None:
    row = q.latest(conn, node_id)
    if row is None:
        return None
    return {"received_at": row["received_at"], "signed_ts": row["signed_ts"], **json.loads(row["body"])}


def history(conn: sqlite3.Connection, node_id: str, limit: int = 200) -> list[dict]:
    rows = q.history_newest_first(conn, node_id, limit)
    return [{"received_at": r[0], **json.loads(r[1])} for r in reversed(rows)]
