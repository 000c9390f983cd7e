"""Enrolment: register this node's public key with the county hub using a one-time code."""

from __future__ import annotations

import sqlite3
import time
from urllib.parse import urlsplit

from edgenode import __version__
from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.core.identity import load_or_create
from edgenode.node.sync import client


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EdgenodeError("E_HUB_URL", f"{url!r} is not an http(s) URL of a hub", zh="县中心地址格式不对。")
    return url.strip().rstrip("/")


def enroll(cfg, conn: sqlite3.Connection, hub_url: str, code: str) -> dict:
    """POST /api/v1/enroll and record the hub on success.  The code is never stored or logged."""
    url = _check_url(hub_url)
    if not code or not code.strip():
        raise EdgenodeError("E_ENROLL_CODE", "an enrolment code is required", zh="请输入注册码。")
    ident = load_or_create(cfg)
    answer = client.post_json(cfg, url, "/api/v1/enroll", {
        "code": code.strip(), "node_id": ident.node_id, "public_key": ident.public_b64(),
        "name": cfg["node.name"], "township": cfg["node.township"], "version": __version__})
    if answer.get("node_id") not in (None, ident.node_id):
        raise EdgenodeError("E_ENROLL_ANSWER", "the hub answered for another node id", zh="县中心的回答有误。")
    with transaction(conn):
        conn.execute("INSERT INTO sync_enrolment (id, hub_url, hub_name, node_id, enrolled_at) VALUES (1, ?, ?, ?, ?) "
                     "ON CONFLICT(id) DO UPDATE SET hub_url = excluded.hub_url, hub_name = excluded.hub_name, "
                     "node_id = excluded.node_id, enrolled_at = excluded.enrolled_at",
                     (url, str(answer.get("hub_name") or ""), ident.node_id, time.time()))
    return {"hub_url": url, "hub_name": answer.get("hub_name") or "", "node_id": ident.node_id}


def enrolment(conn: sqlite3.Connection) -> dict | None:
    row = conn.execute("SELECT * FROM sync_enrolment WHERE id = 1").fetchone()
    return dict(row) if row else None
