"""Usage uplink: seal pending events, POST each batch, delete on ack, fit the outbox cap.

Sealing and sending overlap: sender threads post (``INFLIGHT`` at a time) every batch whose number is
*committed* (``<= last_batch_no`` in the database) while the sealer makes the
next one, so a large backlog costs about max(seal, hub ingest), not their sum.
Only committed batches are sent: a batch file deleted on ack before its seal
committed would, after a crash, be re-sealed with other bytes under the same
number (a conflict at the hub).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from edgenode.core.db import open_main
from edgenode.core.identity import load_or_create
from edgenode.node.sync import client, outbox
from edgenode.node.sync.outbox import crashpoint

log = logging.getLogger(__name__)
PATH = "/api/v1/batches"
# Batches in flight at once: the hub (gunicorn, 2 workers) parses two in parallel while its
# database takes them one at a time; more would only queue.
INFLIGHT = 2


def seal(cfg, conn: sqlite3.Connection, ident=None, *, lock_timeout: float | None = None) -> dict:
    """Seal and cap without touching the network (also used offline and by ``export-logs``)."""
    ident = ident or load_or_create(cfg)
    with outbox.locked(cfg, timeout=lock_timeout):
        rec = outbox.recover(cfg, conn, ident)
        sealed = outbox.seal(cfg, conn, ident)
        cap = outbox.enforce_cap(cfg, conn, ident)
    return {"recovered": rec, "sealed_batches": len(sealed["batches"]), "sealed_events": sealed["events"],
            "summarised": cap["summarised"]}


def _post(cfg, conn, base_url, ident, session, batch_no, path, out) -> None:
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
            # We summarised this number after the hub had stored its detailed original (the ack
            # was lost): the hub's version already counts these events.
            log.warning("W_BATCH_SUMMARY_SUPERSEDED: hub already holds batch %d in full; dropping the local "
                        "summary", batch_no)
            outbox.acknowledged(cfg, conn, path, header)
            return
        raise
    crashpoint("send:after_ack")
    outbox.acknowledged(cfg, conn, path, header)
    crashpoint("send:after_delete")
    out["sent"] += 1
    out["duplicate"] += answer.get("status") == "duplicate"
    out["events"] += header["count"]
    out["contiguous"] = answer.get("contiguous", out["contiguous"])


def _send_committed(cfg, conn, base_url, ident, *, sealing: threading.Event | None = None, progress=None) -> dict:
    """POST committed batches oldest first, ``INFLIGHT`` at a time; with ``sealing`` keep going until it
    is set and all are sent.  Stops at the first failure (raised once the requests in flight end).
    The caller holds the outbox lock."""
    out = {"sent": 0, "duplicate": 0, "events": 0, "contiguous": None}
    tried: set[int] = set()
    local = threading.local()
    counted = threading.Lock()
    conns = []

    def post(batch_no, path):
        if not hasattr(local, "conn"):  # each sender thread its own connection and keep-alive session
            local.conn, local.session = open_main(cfg), client.session()
            conns.append((local.conn, local.session))
        one = {"sent": 0, "duplicate": 0, "events": 0, "contiguous": None}
        _post(cfg, local.conn, base_url, ident, local.session, batch_no, path, one)
        with counted:
            for k in ("sent", "duplicate", "events"):
                out[k] += one[k]
            if one["contiguous"] is not None:
                out["contiguous"] = max(out["contiguous"] or 0, one["contiguous"])
            if progress:
                progress(files_done=out["sent"], message=f"sent {out['sent']} batches")

    pending: set = set()
    try:
        with ThreadPoolExecutor(INFLIGHT, thread_name_prefix="uplink-post") as pool:
            while True:
                for f in [f for f in pending if f.done()]:
                    pending.discard(f)
                    f.result()  # the first failure stops the loop; the pool waits for the rest
                finished = sealing is None or sealing.is_set()
                committed = outbox.state(conn)["last_batch_no"]
                todo = [(n, p) for n, p in outbox.batch_files(cfg)
                        if n <= committed and n not in tried and p.name.startswith(ident.node_id)]
                if not todo and not pending and finished:
                    return out
                for batch_no, path in todo:
                    if len(pending) >= INFLIGHT:
                        break
                    tried.add(batch_no)
                    pending.add(pool.submit(post, batch_no, path))
                if pending:
                    wait(pending, timeout=0.05, return_when=FIRST_COMPLETED)
                else:
                    time.sleep(0.005)
    finally:
        for c, sess in conns:
            c.close()
            sess.close()


def send(cfg, conn: sqlite3.Connection, base_url: str, ident=None, *, progress=None) -> dict:
    """POST every outbox batch, oldest first; stops at the first failure."""
    ident = ident or load_or_create(cfg)
    with outbox.locked(cfg):
        outbox.recover(cfg, conn, ident)
        return _send_committed(cfg, conn, base_url, ident, progress=progress)


def run(cfg, conn: sqlite3.Connection, base_url: str, *, progress=None) -> dict:
    """Seal and send at once (see the module doc), then fit what is left to the cap."""
    ident = load_or_create(cfg)
    with outbox.locked(cfg):
        rec = outbox.recover(cfg, conn, ident)
        sealing, box = threading.Event(), {}

        def sender():
            sconn = open_main(cfg)  # its own connection: the sealer writes on ``conn`` meanwhile
            try:
                box["result"] = _send_committed(cfg, sconn, base_url, ident, sealing=sealing, progress=progress)
            except BaseException as e:  # handed to the caller once sealing is done
                box["error"] = e
            finally:
                sconn.close()

        t = threading.Thread(target=sender, name="uplink-sender")
        t.start()
        try:
            sealed = outbox.seal(cfg, conn, ident)
        finally:
            sealing.set()
            t.join()
        cap = outbox.enforce_cap(cfg, conn, ident)
    if "error" in box:
        raise box["error"]
    result = {"recovered": rec, "sealed_batches": len(sealed["batches"]), "sealed_events": sealed["events"],
              "summarised": cap["summarised"], **box["result"], "backlog": outbox.backlog(cfg)}
    return result
