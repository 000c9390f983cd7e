"""Usage uplink: seal pending events, fit the outbox cap, POST each batch, delete on ack."""

from __future__ import annotations

import logging
import sqlite3

import requests

from edgenode.identity import load_or_create
from edgenode.sync import client, outbox
from edgenode.sync.outbox import crashpoint

log = logging.getLogger(__name__)
PATH = "/api/v1/batches"


def seal(cfg, conn: sqlite3.Connection, ident=None) -> dict:
    """Seal and cap without touching the network (also used by ``export-logs``)."""
    ident = ident or load_or_create(cfg)
    with outbox.locked(cfg):
        rec = outbox.recover(cfg, conn, ident)
        sealed = outbox.seal(cfg, conn, ident)
        cap = outbox.enforce_cap(cfg, conn, ident)
    return {"recovered": rec, "sealed_batches": len(sealed["batches"]), "sealed_events": sealed["events"],
            "summarised": cap["summarised"]}


def send(cfg, conn: sqlite3.Connection, base_url: str, ident=None, *, progress=None) -> dict:
    """POST every outbox batch, oldest first; stops at the first transport failure."""
    ident = ident or load_or_create(cfg)
    sent = duplicate = events = 0
    contiguous = None
    with outbox.locked(cfg), requests.Session() as session:
        outbox.recover(cfg, conn, ident)
        files = [(n, p) for n, p in outbox.batch_files(cfg) if p.name.startswith(ident.node_id)]
        for i, (batch_no, path) in enumerate(files):
            data = path.read_bytes()
            header = outbox.read_header(path)
            sig = outbox.sig_path(path).read_text().strip()
            crashpoint("send:before_post")
            try:
                answer = client.call(cfg, base_url, "POST", PATH, body=data, ident=ident, session=session,
                                     content_type="application/octet-stream",
                                     headers={"X-Edgenode-Batch-No": str(batch_no), "X-Edgenode-Batch-Signature": sig})
            except client.HubRefused as e:
                if e.code == "E_BATCH_CONFLICT" and header["kind"] == "daily":
                    # We summarised this number after the hub had stored its detailed original
                    # (the ack was lost): the hub's version already counts these events.
                    log.warning("W_BATCH_SUMMARY_SUPERSEDED: hub already holds batch %d in full; "
                                "dropping the local summary", batch_no)
                    outbox.acknowledged(cfg, conn, path, header)
                    continue
                raise
            crashpoint("send:after_ack")
            outbox.acknowledged(cfg, conn, path, header)
            crashpoint("send:after_delete")
            sent += 1
            duplicate += answer.get("status") == "duplicate"
            events += header["count"]
            contiguous = answer.get("contiguous", contiguous)
            if progress:
                progress(files_done=i + 1, files_total=len(files), bytes_done=0)
    return {"sent": sent, "duplicate": duplicate, "events": events, "contiguous": contiguous}


def run(cfg, conn: sqlite3.Connection, base_url: str, *, progress=None) -> dict:
    ident = load_or_create(cfg)
    result = seal(cfg, conn, ident)
    result.update(send(cfg, conn, base_url, ident, progress=progress))
    result["backlog"] = outbox.backlog(cfg)
    return result
