"""Adopted works forwarded to the upstream tier (county → province), when staff choose 转送上级.

This hub enrolled upstream like a node (``tiers.enroll_upstream``: its own Ed25519
identity, ``kind: "hub"``), so it sends a work exactly as a node sends one to it: a
signed offer, signed chunks at the upstream's offset, done when the upstream answers
``complete`` with the same SHA-256 (docs/contrib.md).  The county keeps its copy (it is
published to its own nodes); a cut or a kill resumes at the next run from the upstream's offset.
"""

from __future__ import annotations

import json
import sqlite3
import time

from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.hub import contrib_queries as q
from edgenode.hub import tiers_queries
from edgenode.hub.contrib import work_path
from edgenode.hub.signing import sign_headers

CHUNK = 1024 * 1024


def mark(conn: sqlite3.Connection, node_id: str, cid: str) -> dict:
    with transaction(conn):
        if not q.update(conn, node_id, cid, forward=1, expect=("adopted",)):
            raise EdgenodeError("E_CONTRIB_STATE", "only an adopted work can be forwarded",
                                zh="只有已采用的作品才能转送上级。", status=409)
    return {"node_id": node_id, "cid": cid, "forward": True}


def _call(session, ident, url: str, path: str, body: bytes, headers: dict | None = None) -> dict:
    import requests

    h = {"Content-Type": "application/octet-stream", **(headers or {}),
         **sign_headers(ident, "POST", path, body, int(time.time()))}
    try:
        r = session.post(url + path, data=body, headers=h, timeout=60)
    except requests.RequestException as e:
        raise EdgenodeError("E_UPSTREAM_UNREACHABLE", f"upstream hub unreachable: {type(e).__name__}",
                            zh="上级平台无法连接。", status=502) from None
    try:
        doc = r.json()
    except ValueError:
        doc = {}
    if r.status_code != 200:
        err = doc.get("error") or {}
        raise EdgenodeError(err.get("code", "E_UPSTREAM"), err.get("message", f"HTTP {r.status_code}"),
                            zh=err.get("message_zh", "上级平台拒收作品。"), status=502)
    return doc


def _send_one(conn, cfg, session, ident, url: str, row) -> bool:
    offer = json.dumps({"id": row["cid"], "sha256": row["sha256"], "size": row["size"], "kind": row["kind"],
                        "ext": row["ext"], "title": row["title"], "credit": row["credit"], "campaign": "",
                        "duration": row["duration"]}, ensure_ascii=False).encode()
    answer = _call(session, ident, url, "/api/v1/contrib/offer", offer)
    with open(work_path(cfg, row), "rb") as f:
        while not answer.get("complete"):
            at = int(answer.get("offset", 0))
            f.seek(at)
            data = f.read(CHUNK)
            try:
                answer = _call(session, ident, url, f"/api/v1/contrib/{row['cid']}/chunk", data,
                               {"X-Edgenode-Offset": str(at)})
            except EdgenodeError as e:
                if e.code not in ("E_CONTRIB_OFFSET", "E_CONTRIB_HASH"):
                    raise
                answer = _call(session, ident, url, "/api/v1/contrib/offer", offer)
    if answer.get("sha256") != row["sha256"]:
        return False
    with transaction(conn):
        q.update(conn, row["node_id"], row["cid"], forwarded_at=time.time())
    return True


def send(conn: sqlite3.Connection, cfg) -> dict:
    """Forward every work marked for the upstream; stops at the first failure (retried next run)."""
    import requests

    from edgenode.core.identity import load_or_create

    up = tiers_queries.upstream(conn)
    if up is None:
        raise EdgenodeError("E_NO_UPSTREAM", "this hub is not enrolled at an upstream hub", zh="尚未在上级平台注册。")
    ident, sent = load_or_create(cfg), 0
    with requests.Session() as session:
        for row in q.to_forward(conn):
            sent += _send_one(conn, cfg, session, ident, up["url"].rstrip("/"), row)
    return {"forwarded": sent}
