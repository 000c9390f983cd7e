"""``edgenode export-logs PATH``: usage batches and a heartbeat on a USB stick (protocol v1).

Layout: ``PATH/edgenode-logs/<node_id>/`` with every outbox ``.batch`` + ``.sig``,
``heartbeat.json`` + ``heartbeat.json.sig`` (signature over the file bytes) and
``node.json``.  Pending events are sealed first, so the stick carries everything.
Exported batches stay in the outbox: the hub dedups, so sending them later over
the network (or exporting them twice) never counts an event twice.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
from pathlib import Path

from edgenode.core import registry
from edgenode.core.errors import EdgenodeError
from edgenode.core.identity import load_or_create
from edgenode.node.sync import heartbeat, outbox, uplink
from edgenode.protocol import usage_batch as B

log = logging.getLogger(__name__)
EXPORT_HOOK = "sync.export_logs"  # hook point: (cfg, conn, stick_path) -> dict merged into the result
LOCK_WAIT = 10.0  # seconds the admin page waits for a running upload before exporting what is sealed


def _copy(data: bytes, dest: Path) -> None:
    if dest.exists() and dest.read_bytes() == data:
        return
    outbox.write_atomic(dest, data)


def export_logs(cfg, conn: sqlite3.Connection, path) -> dict:
    path = Path(path)
    if not path.is_dir():
        raise EdgenodeError("E_EXPORT_PATH", f"{path} is not a directory (is the stick mounted?)",
                            zh="找不到 U 盘目录。", status=404)
    if not os.access(path, os.W_OK):
        raise EdgenodeError("E_EXPORT_PATH", f"{path} is not writable (mounted read-only?)",
                            zh="U 盘不能写入。", status=409)
    ident = load_or_create(cfg)
    try:
        sealed = uplink.seal(cfg, conn, ident, lock_timeout=LOCK_WAIT)["sealed_events"]
    except outbox.OutboxBusy:
        # An upload holds the outbox (it can take long on a slow link): export what is sealed; the
        # events not sealed yet go on the next stick or over the network.
        log.warning("export-logs: the outbox is busy; exporting the batches already sealed")
        sealed = None
    dest = path / "edgenode-logs" / ident.node_id
    dest.mkdir(parents=True, exist_ok=True)
    n = events = size = 0
    for batch_no, p in outbox.batch_files(cfg):
        if not p.name.startswith(ident.node_id):
            continue
        try:  # read the pair without the lock: a batch acked meanwhile is at the hub already
            data, sig = p.read_bytes(), outbox.sig_path(p).read_bytes()
        except FileNotFoundError:
            continue
        if not B.verify_batch(ident.public_b64(), ident.node_id, batch_no, data, sig.decode()):
            continue  # caught between a summary and its new signature; the next export has it
        _copy(data, dest / p.name)
        _copy(sig, dest / outbox.sig_path(p).name)
        events += B.peek_header(data)["count"]
        n += 1
        size += len(data)
    body = json.dumps(heartbeat.build(cfg, conn), ensure_ascii=False, sort_keys=True).encode()
    outbox.write_atomic(dest / "heartbeat.json", body)
    outbox.write_atomic(dest / "heartbeat.json.sig", base64.b64encode(ident.sign(body)))
    node = {"node_id": ident.node_id, "public_key": ident.public_b64(), "name": cfg["node.name"]}
    outbox.write_atomic(dest / "node.json", json.dumps(node, ensure_ascii=False, indent=1).encode())
    out = {"path": str(dest), "batches": n, "events": events, "bytes": size, "sealed_events": sealed,
           "outbox_busy": sealed is None}
    for hook in registry.hooks(EXPORT_HOOK):  # contributions ride along (node/contrib/upstream.py)
        out.update(hook(cfg, conn, path) or {})
    return out


def export_to(cfg, path) -> dict:
    """``export_logs`` with its own connection: what ``/admin/sync/export`` runs in a child process
    (signing loads cryptography, which should not stay in the web worker)."""
    from edgenode.core.db import open_main

    conn = open_main(cfg)
    try:
        return export_logs(cfg, conn, path)
    finally:
        conn.close()
