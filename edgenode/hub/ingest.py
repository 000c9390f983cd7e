"""Idempotent ingest of signed usage batches (network upload and USB import alike).

One batch, one transaction: the batch row, the per-day aggregates and the
terminal ids it contributes, and the node's counters commit together.  The
batch row's primary key (node_id, batch_no) is the dedup guard, so a
redelivered batch is answered "duplicate" without touching the figures, and
a crash before COMMIT leaves no trace of it (the node still holds its copy,
because it deletes only after our 200).
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import time

from cryptography.exceptions import InvalidSignature

from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.hub import ingest_queries as q, tally, titles_queries
from edgenode.hub.days import day_or_today as _day_or_today
from edgenode.hub.registry import key_object, log_event, revoked_error
from edgenode.protocol.figures import ANONYMOUS
from edgenode.protocol.usage_batch import batch_message, read_batch

def aggregate(header: dict, lines: list[dict], offset_hours: float) -> tuple[list[tuple], list[tuple]]:
    """Per-day aggregate rows ``(day, column, resource, kind, n, seconds, u)`` and
    terminal rows ``(month, column, resource, terminal)`` of one batch."""
    if header["kind"] != "events":  # "daily": the node summarised old events; only counts remain
        agg: dict[tuple, list] = {}
        for a in lines:
            g = agg.setdefault((a["day"], a["c"] or "", a["r"] or "", a["k"]), [0, 0.0, 0])
            g[0] += a["n"]
            g[1] += a["d"]
            g[2] += a["u"]
        return [(*k, *v) for k, v in agg.items()], []
    # The hot loop keys on raw values (day number, None for "no column"); strings are made
    # once per distinct key afterwards.  This loop runs for every event the hub ingests.
    off = offset_hours * 3600
    raw: dict[tuple, list] = {}
    seen: set[tuple] = set()
    get = raw.get
    add = seen.add
    for e in lines:
        t = e["t"]
        try:
            dn = int((t + off) // 86400)
        except (OverflowError, ValueError):
            dn = -(10 ** 9)  # no calendar day: mapped to today below
        c, r = e["c"], e["r"]
        key = (dn, c, r, e["k"])
        a = get(key)
        if a is None:
            raw[key] = [1, e["d"]]
        else:
            a[0] += 1
            a[1] += e["d"]
        add((dn, c, r, e["m"]))
    days = {dn: _day_or_today(dn, offset_hours) for dn in {k[0] for k in raw}}
    rows = [(days[dn], c or "", r or "", k, n, secs, 0) for (dn, c, r, k), (n, secs) in raw.items()]
    terms = {(days[dn][:7], c or "", r or "", m) for dn, c, r, m in seen if m != ANONYMOUS}
    return rows, list(terms)


def _bad_batch(message: str) -> EdgenodeError:
    return EdgenodeError("E_BATCH_FORMAT", message, zh="统计数据包格式错误：" + message, status=400)


def conflict(conn: sqlite3.Connection, node_id: str, batch_no: int, old_sha: str, new_sha: str) -> EdgenodeError:
    from edgenode.hub.alerts import raise_alert
    detail = f"batch {batch_no}: stored sha256 {old_sha[:16]}…, offered {new_sha[:16]}…"
    log_event(conn, "warning", "E_BATCH_CONFLICT", node_id, detail)
    raise_alert(conn, "conflict", node_id, str(batch_no), detail)
    return EdgenodeError("E_BATCH_CONFLICT", f"batch {batch_no} was stored before with different content",
                         zh="同一编号的统计数据包内容不同，已拒收并报警。", status=409)


def ingest_batch(conn: sqlite3.Connection, node: dict, batch_no, data: bytes, sig_b64: str, *,
                 offset_hours: float = 8.0, source: str = "net") -> dict:
    """Verify and store one batch for an enrolled ``node`` row.

    Returns ``{"ok": True, "status": "stored"|"duplicate", "contiguous": N}``;
    raises EdgenodeError for a bad signature, a malformed batch or a conflict.
    """
    node_id = node["node_id"]
    batch_no, sha = _verify(conn, node, batch_no, data, sig_b64, source)

    old = q.batch_sha(conn, node_id, batch_no)
    if old is not None:
        return _again(conn, node_id, batch_no, old, sha)

    header, lines = _parse(conn, node_id, batch_no, data)
    daily, terms = aggregate(header, lines, offset_hours)
    now = time.time()
    try:
        with transaction(conn):
            contiguous = _write(conn, node_id, batch_no, sha, header, lines, daily, terms,
                                now=now, offset_hours=offset_hours, source=source)
    except sqlite3.IntegrityError:
        # Another worker stored the same batch number between our check and our insert.
        old = q.batch_sha(conn, node_id, batch_no)
        if old is None:
            raise
        return _again(conn, node_id, batch_no, old, sha)
    return {"ok": True, "status": "stored", "contiguous": contiguous}


def _verify(conn, node: dict, batch_no, data: bytes, sig_b64: str, source: str) -> tuple[int, str]:
    """Check the node, the batch number and the signature; returns ``(batch_no, sha256)``."""
    node_id = node["node_id"]
    if node.get("revoked_at"):
        log_event(conn, "warning", "E_NODE_REVOKED", node_id, f"batch from a revoked node ({source})")
        raise revoked_error()
    try:
        batch_no = int(batch_no)
        if batch_no < 0:
            raise ValueError
    except (TypeError, ValueError):
        log_event(conn, "warning", "E_BATCH_FORMAT", node_id, f"bad batch number {batch_no!r}")
        raise _bad_batch("X-Edgenode-Batch-No must be a non-negative integer") from None
    sha = hashlib.sha256(data).hexdigest()
    try:
        key_object(node["public_key"]).verify(base64.b64decode((sig_b64 or "").strip(), validate=True),
                                              batch_message(node_id, batch_no, sha))
    except (InvalidSignature, ValueError):
        log_event(conn, "warning", "E_BAD_SIGNATURE", node_id, f"batch {batch_no}: signature does not verify "
                  f"({source})")
        raise EdgenodeError("E_BAD_SIGNATURE", f"batch {batch_no}: the batch signature does not verify",
                            zh="统计数据包签名无效。", status=401) from None
    return batch_no, sha


def _parse(conn, node_id: str, batch_no: int, data: bytes) -> tuple[dict, list[dict]]:
    try:
        header, lines = read_batch(data)
    except EdgenodeError as e:
        log_event(conn, "warning", e.code, node_id, f"batch {batch_no}: {e.message}")
        raise
    if header["node_id"] != node_id or header["batch_no"] != batch_no:
        log_event(conn, "warning", "E_BATCH_FORMAT", node_id, f"batch {batch_no}: header names "
                  f"{header['node_id']}/{header['batch_no']}")
        raise _bad_batch("the batch header's node_id or batch_no does not match the upload")
    return header, lines


def _write(conn, node_id: str, batch_no: int, sha: str, header: dict, lines: list[dict],
           daily: list[tuple], terms: list[tuple], *, now: float, offset_hours: float, source: str) -> int:
    """All of one batch's writes; the caller holds the transaction.  Returns the new contiguous mark."""
    q.insert_batch(conn, node_id, batch_no, sha, header, now, source)
    _write_aggregates(conn, node_id, daily, now)
    _write_terminals(conn, node_id, terms)
    if header.get("titles"):
        titles_queries.set_titles(conn, header["titles"], now)
    tally.ingest(conn, node_id, header, lines, offset_hours=offset_hours)  # votes, requests (hub/tally.py)
    contiguous = _advance(conn, node_id, batch_no)
    q.count_batch_on_node(conn, node_id, batch_no, contiguous, header["count"], now)
    return contiguous


def _write_aggregates(conn, node_id: str, daily: list[tuple], now: float) -> None:
    per_day: dict[tuple, list] = {}
    monthly: dict[tuple, list] = {}
    for day, c, r, k, n, secs, u in daily:
        d = per_day.setdefault((day, c, k), [0, 0.0, 0])
        d[0] += n
        d[1] += secs
        d[2] += u
        m = monthly.setdefault((day[:7], c, r, k), [0, 0.0])
        m[0] += n
        m[1] += secs
    q.add_daily(conn, [(node_id, *k, *v, now) for k, v in per_day.items()])
    q.add_monthly(conn, [(node_id, *k, v[0], v[1]) for k, v in monthly.items()])
    monthly_col: dict[tuple, list] = {}
    for (month, c, _r, k), (n, secs) in monthly.items():
        m = monthly_col.setdefault((month, c, k), [0, 0.0])
        m[0] += n
        m[1] += secs
    q.add_monthly_col(conn, [(k[0], node_id, k[1], k[2], v[0], v[1]) for k, v in monthly_col.items()])
    q.add_monthly_res(conn, [(*k, *v) for k, v in monthly.items() if k[2]])


def _write_terminals(conn, node_id: str, terms: list[tuple]) -> None:
    q.add_terminals(conn, [(node_id, *t) for t in terms])
    q.add_terminals_col(conn, list({(t[0], node_id, t[1], t[3]) for t in terms}))
    q.add_terminals_node(conn, list({(t[0], node_id, t[3]) for t in terms}))
    q.add_terminals_year_col(conn, list({(t[0][:4], node_id, t[1], t[3]) for t in terms}))
    q.add_terminals_year_node(conn, list({(t[0][:4], node_id, t[3]) for t in terms}))


def _again(conn, node_id: str, batch_no: int, old_sha: str, sha: str) -> dict:
    if old_sha != sha:
        raise conflict(conn, node_id, batch_no, old_sha, sha)
    return {"ok": True, "status": "duplicate", "contiguous": q.node_contiguous(conn, node_id)}


def _advance(conn, node_id: str, batch_no: int) -> int:
    """The highest N with batches 1..N all stored, after storing ``batch_no``."""
    contiguous = q.node_contiguous(conn, node_id)
    if batch_no != contiguous + 1:
        return contiguous
    for n in q.batch_nos_after(conn, node_id, contiguous):
        if n != contiguous + 1:
            break
        contiguous = n
    return contiguous


def gaps(conn: sqlite3.Connection, node_id: str, limit: int = 20) -> list[int]:
    """Missing batch numbers between the contiguous mark and the highest stored."""
    node = q.node_batch_marks(conn, node_id)
    if node is None or node["max_batch_no"] <= node["contiguous"]:
        return []
    have = set(q.batch_nos_after(conn, node_id, node["contiguous"]))
    return [n for n in range(node["contiguous"] + 1, node["max_batch_no"]) if n not in have][:limit]
