"""Old usage events leave the node, folded into all-time totals first.

``usage_events`` would otherwise grow for as long as the node runs (a busy
reading room records a few thousand events a day).  The hub keeps the history;
the node needs recent events for its dashboard (today, this week, this month),
the home page's popular list (30 days) and the per-terminal daily limits.

An event may go only when **both** hold:

* it is at or below ``upto``, which the caller sets to what other areas have
  finished with (the outbox's ``sealed_upto``: the event is in a batch file or
  already at the hub; the eviction planner's folded mark);
* it is older than ``keep_days`` by the node's clock.

Each terminal's resume points (``resume.py``) go by the same age alone.

Its plays, views and seconds are added to ``usage_totals`` in the same
transaction that deletes it, so the all-time figures neither lose nor count
anything twice, whatever moment a power cut picks.  Sequence numbers are
AUTOINCREMENT: deleting never lets a number come back.
"""

from __future__ import annotations

import sqlite3
import time

from edgenode.core.db import transaction
from edgenode.node.usage import resume
from edgenode.node.usage import retention_queries as q

CHUNK = 20000  # events per transaction: short write locks while the portal records page views


def prune(conn: sqlite3.Connection, *, keep_days: int, upto: int, now: float | None = None) -> dict:
    """Fold and delete events older than ``keep_days`` and at or below ``upto``; ``keep_days=0`` keeps all."""
    out = {"pruned": 0, "upto_seq": pruned_upto(conn)}
    if keep_days <= 0:
        return out
    cutoff = (time.time() if now is None else now) - keep_days * 86400
    # Resume points (继续观看) never leave the node, so they wait for no uplink: only for their age.
    with transaction(conn):
        out["resume_pruned"] = resume.forget_older_than(conn, cutoff)
    if upto <= 0:
        return out
    while True:
        # The newest sequence this chunk may reach: old enough, allowed by the caller, CHUNK events at most.
        last, n = q.chunk_end(conn, upto, cutoff, CHUNK)
        if not n:
            return out
        with transaction(conn):
            q.fold_into_totals(conn, last, cutoff)
            deleted = q.delete_events(conn, last, cutoff)
            q.record_pruned(conn, last, deleted, time.time())
        out["pruned"] += deleted
        out["upto_seq"] = max(out["upto_seq"], last)


def pruned_upto(conn: sqlite3.Connection) -> int:
    return q.pruned_upto(conn)
