"""Outbox SQL (``sync_outbox`` and the unsealed ``usage_events``, :mod:`edgenode.node.sync.outbox`), as
functions that take the connection first.  Writers run inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3

# Each event's compact line is built by SQLite's json_object (keys in sorted order, no spaces): about
# twice as fast as formatting in Python, which matters for a backlog of a million events.  Values the
# hub would refuse are made safe here, so one odd row can never block the uplink for good: ``x`` only
# when it is a JSON object, seconds clamped to 0..1 day, times to 1970..2100.
EVENT_LINE_SQL = """
SELECT seq, json_object(
    'c', column_key,
    'd', round(min(max(seconds, 0.0), 86400.0), 3),
    'k', kind,
    'm', terminal,
    'r', resource_id,
    's', seq,
    't', round(min(max(at, 0.0), 4102444800.0), 3),
    'x', CASE WHEN json_valid(data) AND json_type(data) = 'object' THEN json(data) END)
FROM usage_events WHERE seq > ? ORDER BY seq LIMIT ?"""


def outbox_state(conn: sqlite3.Connection) -> dict:
    return dict(conn.execute("SELECT * FROM sync_outbox WHERE id = 1").fetchone())


def event_lines(conn: sqlite3.Connection, after_seq: int, limit: int) -> list[tuple[int, str]]:
    """``(seq, compact line)`` of the first ``limit`` events above ``after_seq``."""
    cur = conn.cursor()
    cur.row_factory = None  # plain tuples: sqlite3.Row costs a third of the fetch
    return cur.execute(EVENT_LINE_SQL, (after_seq, limit)).fetchall()


def titles_between(conn: sqlite3.Connection, first_seq: int, last_seq: int) -> dict[str, str]:
    """``{resource id: catalogue title}`` of the resources events ``first_seq..last_seq`` name."""
    return {r[0]: r[1] for r in conn.execute("SELECT DISTINCT e.resource_id, r.title FROM usage_events e "
                                             "JOIN resources r ON r.id = e.resource_id WHERE e.seq BETWEEN ? AND ?",
                                             (first_seq, last_seq))}


def adopt_batch(conn: sqlite3.Connection, batch_no: int, last_seq: int) -> None:
    """Raise the marks to cover a batch file sealed before a crash (never lowers them)."""
    conn.execute("UPDATE sync_outbox SET last_batch_no = max(last_batch_no, ?), "
                 "sealed_upto = max(sealed_upto, ?) WHERE id = 1", (batch_no, last_seq))


def mark_sealed(conn: sqlite3.Connection, sealed_upto: int, batch_no: int) -> None:
    conn.execute("UPDATE sync_outbox SET sealed_upto = ?, last_batch_no = ? WHERE id = 1", (sealed_upto, batch_no))


def count_acked(conn: sqlite3.Connection, events: int) -> None:
    """One more batch of ``events`` events acknowledged by the hub."""
    conn.execute("UPDATE sync_outbox SET acked_batches = acked_batches + 1, acked_events = acked_events + ? "
                 "WHERE id = 1", (events,))


def count_summarised(conn: sqlite3.Connection, batches: int) -> None:
    conn.execute("UPDATE sync_outbox SET summarised_batches = summarised_batches + ? WHERE id = 1", (batches,))


def events_after(conn: sqlite3.Connection, seq: int) -> int:
    """How many usage events have a sequence number above ``seq``."""
    return conn.execute("SELECT count(*) FROM usage_events WHERE seq > ?", (seq,)).fetchone()[0]
