"""The durable usage outbox: sealed, signed batches waiting on the data disk for the hub's ack.

Crash safety comes from one order of steps, each durable before the next:

1. seal: write ``<name>.batch`` (tmp + fsync + rename + dir fsync), then ``<name>.sig``,
   then commit ``sealed_upto``/``last_batch_no`` in the database;
2. on start (``recover``): a batch file above ``last_batch_no`` was written but not
   committed, so it is *adopted* (its range becomes sealed), never re-sealed; a missing
   or stale ``.sig`` is re-made (Ed25519 signatures are deterministic); tmp files go;
3. send: a batch file is deleted only after the hub's 200, and the ``.sig`` after it.

A crash between any two steps leaves either the events unsealed (sealed again, same
range, same bytes) or a file that is sent again (the hub answers "duplicate").  So an
event reaches the hub's totals exactly once.  Batches never live in /tmp.

The size cap (``sync.outbox_cap_mb``) rewrites the oldest events batches as
``daily`` aggregates under the same batch number: fewer bytes, same counts, and the hub
keeps exactly one version of each number (see docs/sync.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import logging
import os
import re
import signal
import sqlite3
import time
from pathlib import Path

from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.protocol import usage_batch as B
from edgenode.core.store import fsync_dir as _fsync_dir
from edgenode.node.sync import outbox_queries as q

log = logging.getLogger(__name__)
NAME = re.compile(r"^([0-9a-f]{32})-(\d{12})\.batch$")


def outbox_dir(cfg) -> Path:
    return cfg.data_path / "outbox"


def crashpoint(name: str) -> None:
    """Test hook: SIGKILL this process at a named step (``EDGENODE_CRASH_AT=name``).

    The kill tests also kill at random times; named points make sure the narrow
    windows between two durable steps are hit every run.
    """
    if os.environ.get("EDGENODE_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class OutboxBusy(EdgenodeError):
    def __init__(self):
        super().__init__("E_OUTBOX_BUSY", "another process is sealing or sending usage batches",
                         zh="正在上传统计数据，请稍后再试。", status=409)


@contextlib.contextmanager
def locked(cfg, timeout: float | None = None):
    """One sealer/sender at a time (scheduler vs ``sync now``); the kernel drops it on SIGKILL.
    With ``timeout``, give up with OutboxBusy instead of waiting out a long upload."""
    d = outbox_dir(cfg)
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            end = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= end:
                        raise OutboxBusy() from None
                    time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def state(conn: sqlite3.Connection) -> dict:
    return q.outbox_state(conn)


def batch_files(cfg) -> list[tuple[int, Path]]:
    """``(batch_no, path)`` of every batch in the outbox, oldest first."""
    d = outbox_dir(cfg)
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        m = NAME.match(p.name)
        if m:
            out.append((int(m.group(2)), p))
    return sorted(out)


def read_header(path: Path) -> dict:
    import json
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.loads(f.readline())


def sig_path(path: Path) -> Path:
    return path.with_name(path.name + ".sig")


def recover(cfg, conn: sqlite3.Connection, ident) -> dict:
    """Bring files and the database back into agreement after a crash (see module doc)."""
    d = outbox_dir(cfg)
    d.mkdir(parents=True, exist_ok=True)
    removed = adopted = resigned = 0
    for p in d.iterdir():
        if p.name.endswith(".tmp"):
            p.unlink()
            removed += 1
        elif p.name.endswith(".batch.sig") and not p.with_name(p.name[:-4]).exists():
            p.unlink()  # its batch was acked and deleted just before a crash
            removed += 1
    st = state(conn)
    for batch_no, path in batch_files(cfg):
        if not path.name.startswith(ident.node_id):
            log.warning("E_OUTBOX_FOREIGN: %s was sealed under another node identity; left in place", path.name)
            continue
        data = path.read_bytes()
        sp = sig_path(path)
        if not sp.exists() or not B.verify_batch(ident.public_b64(), ident.node_id, batch_no, data,
                                                 sp.read_text()):
            write_atomic(sp, B.sign_batch(ident, batch_no, data).encode())
            resigned += 1
        if batch_no > st["last_batch_no"]:
            header = read_header(path)
            with transaction(conn):
                q.adopt_batch(conn, batch_no, header["last_seq"])
            st = state(conn)
            adopted += 1
            log.info("outbox: adopted %s (events %d..%d) sealed before a crash", path.name,
                     header["first_seq"], header["last_seq"])
    return {"removed": removed, "adopted": adopted, "resigned": resigned}


EVENT_LINE_SQL = q.EVENT_LINE_SQL  # the compact event lines a batch holds (see outbox_queries)


def seal(cfg, conn: sqlite3.Connection, ident, *, max_events: int | None = None) -> dict:
    """Seal every event above the high-water mark into batches; returns what was sealed."""
    max_events = max_events or cfg["sync.batch_max_events"]
    d = outbox_dir(cfg)
    d.mkdir(parents=True, exist_ok=True)
    made, events = [], 0
    while True:
        st = state(conn)
        rows = q.event_lines(conn, st["sealed_upto"], max_events)
        if not rows:
            break
        batch_no = st["last_batch_no"] + 1
        first, last = rows[0][0], rows[-1][0]
        data = B.seal_bytes(ident.node_id, batch_no, [r[1] for r in rows], first_seq=first, last_seq=last,
                            titles=q.titles_between(conn, first, last))
        path = d / B.batch_name(ident.node_id, batch_no)
        crashpoint("seal:before_write")
        write_atomic(path, data)
        crashpoint("seal:after_batch")
        write_atomic(sig_path(path), B.sign_batch(ident, batch_no, data).encode())
        crashpoint("seal:after_sig")
        with transaction(conn):
            q.mark_sealed(conn, last, batch_no)
        crashpoint("seal:after_commit")
        made.append(batch_no)
        events += len(rows)
    return {"batches": made, "events": events}


def acknowledged(cfg, conn: sqlite3.Connection, path: Path, header: dict) -> None:
    """The hub stored this batch: forget it (batch file first, then its signature)."""
    path.unlink(missing_ok=True)
    crashpoint("ack:after_unlink")
    sig_path(path).unlink(missing_ok=True)
    _fsync_dir(path.parent)
    with transaction(conn):
        q.count_acked(conn, header["count"])


def enforce_cap(cfg, conn: sqlite3.Connection, ident, *, cap_bytes: int | None = None) -> dict:
    """Summarise the oldest events batches into daily aggregates until the outbox fits the cap.

    Never drops anything: when every batch is already daily and it still does not fit,
    it logs E_OUTBOX_FULL and keeps them.
    """
    cap = cap_bytes if cap_bytes is not None else int(cfg["sync.outbox_cap_mb"] * 1024 * 1024)
    files = batch_files(cfg)
    total = sum(p.stat().st_size for _, p in files)
    summarised = 0
    for batch_no, path in files:
        if total <= cap:
            break
        if not path.name.startswith(ident.node_id):
            continue
        data = path.read_bytes()
        header, lines = B.read_batch(data)
        if header["kind"] != "events":
            continue
        agg = B.summarise(header, lines, offset_hours=cfg.hub.utc_offset_hours)
        daily = B.seal_bytes(ident.node_id, batch_no, agg, first_seq=header["first_seq"],
                             last_seq=header["last_seq"], count=header["count"], kind="daily",
                             titles=header.get("titles"))
        write_atomic(path, daily)
        crashpoint("cap:after_batch")
        write_atomic(sig_path(path), B.sign_batch(ident, batch_no, daily).encode())
        total -= len(data) - len(daily)
        summarised += 1
    if summarised:
        with transaction(conn):
            q.count_summarised(conn, summarised)
        log.warning("W_OUTBOX_SUMMARISED: %d old batches summarised into daily aggregates to fit %d bytes",
                    summarised, cap)
    if total > cap:
        log.warning("E_OUTBOX_FULL: outbox holds %d bytes, over the %d byte cap, all summarised; kept", total, cap)
    return {"summarised": summarised, "bytes": total, "over_cap": total > cap}


def backlog(cfg) -> dict:
    """``{"batches", "bytes", "oldest"}`` for health and the heartbeat; reads only the directory."""
    files = batch_files(cfg)
    size = 0
    for _, p in files:
        with contextlib.suppress(FileNotFoundError):
            size += p.stat().st_size
    oldest = None
    for _, p in files[:1]:
        try:
            oldest = read_header(p).get("sealed_at")
        except (OSError, ValueError, EOFError):
            with contextlib.suppress(OSError):
                oldest = p.stat().st_mtime
    return {"batches": len(files), "bytes": size, "oldest": oldest}


def unsealed_events(conn: sqlite3.Connection) -> int:
    st = state(conn)
    return q.events_after(conn, st["sealed_upto"])


