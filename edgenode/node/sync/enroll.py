"""Enrolment: register this node's public key with the county hub using a one-time code."""

from __future__ import annotations

import logging
import sqlite3
import time
from urllib.parse import urlsplit

from edgenode import __version__
from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.core.identity import load_or_create
from edgenode.node.imports import trust
from edgenode.node.sync import client
from edgenode.node.sync import enroll_queries as q

log = logging.getLogger(__name__)


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
        q.record_enrolment(conn, url, str(answer.get("hub_name") or ""), ident.node_id, time.time())
    out = {"hub_url": url, "hub_name": answer.get("hub_name") or "", "node_id": ident.node_id}
    # The county key comes with the answer to a one-time code only county staff hand out: that
    # is what makes it safe to pin here, and why the volunteer never has to trust a key by hand.
    if "trust" in answer:
        try:
            out["trust"] = trust.pin_county(conn, answer["trust"])
        except EdgenodeError as e:  # enrolled all the same (the code is spent); say so, retry by heartbeat
            log.warning("%s: %s", e.code, e.message)
            out["trust_error"] = e.code
    return out


def enrolment(conn: sqlite3.Connection) -> dict | None:
    row = q.enrolment_row(conn)
    return dict(row) if row else None
