"""Receiving villagers' contributions from the nodes: offer, chunks at offsets, ack by hash.

Protocol (docs/contrib.md): every request is signed by the node (``signing.verify_request``,
the same as usage batches).  ``POST /api/v1/contrib/offer`` names the contribution
(id, SHA-256, size, title …) and is answered with the bytes the hub already holds;
``POST /api/v1/contrib/<cid>/chunk`` with ``X-Edgenode-Offset`` appends a chunk only
at exactly that offset.  When the last byte arrives the hub hashes the whole file:
equal → the answer says ``complete`` with the hash (the node's signal to delete);
different → the partial file is emptied and the node starts again.

A replayed chunk meets a different offset (409, nothing written); a replayed offer
of a finished contribution is answered ``complete`` again; a chunk for another
node's contribution finds no row (rows are keyed by the signing node).  A file is
renamed into ``works/`` before its row says ``received``, and an offer finding the
file there but the row not yet updated finishes the job, so a killed hub loses nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import sqlite3
import time
from pathlib import Path

from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.core.store import file_sha256, fsync_dir
from edgenode.hub import contrib_queries as q
from edgenode.hub.registry import log_event

CID = re.compile(r"^[0-9a-f]{32}$")
SHA = re.compile(r"^[0-9a-f]{64}$")
KIND_EXT = {"video": "mp4", "audio": "m4a", "image": "jpg"}


def bad(message: str, code: str = "E_CONTRIB_OFFER", status: int = 400) -> EdgenodeError:
    return EdgenodeError(code, message, zh="作品上传请求有误：" + message, status=status)


def root(cfg, name: str) -> Path:
    d = cfg.data_path / "contrib" / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def partial_path(cfg, node_id: str, cid: str) -> Path:
    return root(cfg, "partial") / f"{node_id}-{cid}.part"


def work_path(cfg, row) -> Path:
    return root(cfg, "works") / f"{row['node_id']}-{row['cid']}.{row['ext']}"


def check_offer(cfg, doc) -> dict:
    if not isinstance(doc, dict):
        raise bad("the offer is not a JSON object")
    cid, sha, size, kind = doc.get("id"), doc.get("sha256"), doc.get("size"), doc.get("kind")
    if not isinstance(cid, str) or not CID.match(cid):
        raise bad("id must be 32 hex characters")
    if not isinstance(sha, str) or not SHA.match(sha):
        raise bad("sha256 must be 64 hex characters")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= cfg["contrib.max_file_mb"] * 1024 * 1024:
        raise bad("size out of range")
    if kind not in KIND_EXT or doc.get("ext") != KIND_EXT[kind]:
        raise bad("kind/ext must be video/mp4, audio/m4a or image/jpg")
    text = {k: " ".join(str(doc.get(k) or "").split())[:limit] for k, limit in
            (("title", 60), ("credit", 30), ("campaign", 128))}
    if not text["title"]:
        raise bad("title is empty")
    duration = doc.get("duration")
    return {"id": cid, "sha256": sha, "size": size, "kind": kind, "ext": KIND_EXT[kind], **text,
            "duration": float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool)
            else None}


def _answer(cfg, row) -> dict:
    if row["state"] != "receiving":
        return {"ok": True, "complete": True, "sha256": row["sha256"], "offset": row["size"], "state": row["state"]}
    p = partial_path(cfg, row["node_id"], row["cid"])
    return {"ok": True, "complete": False, "offset": p.stat().st_size if p.exists() else 0}


def offer(conn: sqlite3.Connection, cfg, node: dict, doc, *, source: str = "net") -> dict:
    doc = check_offer(cfg, doc)
    node_id, cid = node["node_id"], doc["id"]
    row = q.row(conn, node_id, cid)
    if row is None:
        try:
            with transaction(conn):
                q.insert(conn, node_id, cid, doc, time.time(), source)
        except sqlite3.IntegrityError:
            pass  # the same offer from another worker just now
        row = q.row(conn, node_id, cid)
    if row["sha256"] != doc["sha256"] or row["size"] != doc["size"]:
        log_event(conn, "warning", "E_CONTRIB_CONFLICT", node_id, f"{cid}: offered again with other content")
        raise bad("this contribution was offered before with other content", "E_CONTRIB_CONFLICT", 409)
    if row["state"] == "receiving" and work_path(cfg, row).exists():
        _complete(conn, cfg, row, work_path(cfg, row), source)  # a hub killed between rename and commit
        row = q.row(conn, node_id, cid)
    return _answer(cfg, row)


def chunk(conn: sqlite3.Connection, cfg, node: dict, cid: str, offset, body: bytes) -> dict:
    """Append ``body`` at exactly ``offset``; on the last byte, check the whole file's hash."""
    row = q.row(conn, node["node_id"], cid) if CID.match(cid or "") else None
    if row is None:
        raise bad("no such contribution offered by this node", "E_CONTRIB_UNKNOWN", 404)
    if row["state"] != "receiving":
        return _answer(cfg, row)  # a replay after completion: nothing to do
    try:
        offset = int(offset)
    except (TypeError, ValueError):
        raise bad("X-Edgenode-Offset must be an integer") from None
    path = partial_path(cfg, row["node_id"], cid)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # two workers never append to one file at once
        size = os.fstat(fd).st_size
        if offset != size:
            raise EdgenodeError("E_CONTRIB_OFFSET", f"offset {offset} is not the {size} bytes held",
                                zh="续传位置不对。", status=409)
        if size + len(body) > row["size"]:
            raise bad("more bytes than offered")
        os.lseek(fd, size, os.SEEK_SET)
        os.write(fd, body)
        os.fsync(fd)
        size += len(body)
        if size == row["size"]:
            _finish(conn, cfg, row, path)
    finally:
        os.close(fd)
    return _answer(cfg, q.row(conn, node["node_id"], cid))


def _finish(conn, cfg, row, path: Path) -> None:
    if file_sha256(path) != row["sha256"]:
        os.truncate(path, 0)
        log_event(conn, "warning", "E_CONTRIB_HASH", row["node_id"], f"{row['cid']}: whole file hash differs")
        raise bad("the whole file's SHA-256 differs from the offer; send it again from the start",
                  "E_CONTRIB_HASH", 422)
    dest = work_path(cfg, row)
    os.replace(path, dest)
    fsync_dir(dest.parent)
    _complete(conn, cfg, row, dest, row["source"])


def _complete(conn, cfg, row, dest: Path, source: str) -> None:
    if file_sha256(dest) != row["sha256"]:
        dest.unlink()
        return
    with transaction(conn):
        q.update(conn, row["node_id"], row["cid"], state="received", completed_at=time.time(), source=source,
                 expect=("receiving",))
    log_event(conn, "info", "CONTRIB_RECEIVED", row["node_id"], f"{row['cid']} {row['size']} bytes ({source})")


def states(conn: sqlite3.Connection, node: dict, doc) -> dict:
    """The county's decisions on the node's contributions: what its admin page shows."""
    ids = doc.get("ids") if isinstance(doc, dict) else None
    if not isinstance(ids, list) or len(ids) > 1000 or not all(isinstance(i, str) and CID.match(i) for i in ids):
        raise bad("ids must be a list of at most 1000 contribution ids")
    return {"ok": True, "states": [dict(r) for r in q.states_for(conn, node["node_id"], ids)]}


def import_file(conn: sqlite3.Connection, cfg, node: dict, doc: dict, data_path: Path) -> dict:
    """A contribution from a USB stick (already signature-checked): the same row, the same dedup."""
    answer = offer(conn, cfg, node, doc, source="usb")
    if answer["complete"]:
        return {"status": "duplicate"}
    row = q.row(conn, node["node_id"], doc["id"])
    h = hashlib.sha256()
    tmp = partial_path(cfg, row["node_id"], row["cid"])
    with open(data_path, "rb") as src, open(tmp, "wb") as out:
        for block in iter(lambda: src.read(1 << 20), b""):
            h.update(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    if h.hexdigest() != row["sha256"]:
        os.truncate(tmp, 0)
        raise bad("the file on the stick does not match its signed hash", "E_CONTRIB_HASH", 422)
    _finish(conn, cfg, row, tmp)
    return {"status": "stored"}
