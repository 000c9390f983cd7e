"""Deleting personal data: names and phone numbers of bookings, after the retention period.

``purge`` blanks ``name``, ``phone`` and the terminal id of every booking whose
activity ended more than ``activities.retention_days`` ago, with
``PRAGMA secure_delete`` on so SQLite overwrites the freed bytes, then
VACUUMs and truncates the WAL: afterwards the numbers are in neither
``edgenode.db`` nor ``edgenode.db-wal`` (``tests/test_privacy.py`` greps the
file bytes).  Order ids, seat counts and statuses stay for the statistics.

Run daily by the scheduler (``purge(cfg, conn)``), by hand as ``edgenode
privacy purge``, or from the admin page.
"""

from __future__ import annotations

import logging
import sqlite3
import time

from edgenode.node.activities import privacy_queries as pq
from edgenode.core.db import transaction

log = logging.getLogger(__name__)


def due(conn: sqlite3.Connection, retention_days: int, now: float | None = None) -> list[str]:
    """Activities whose bookings' personal data is due for deletion."""
    cutoff = (time.time() if now is None else now) - retention_days * 86400
    return pq.activities_ended_unpurged(conn, cutoff)


def purge(cfg, conn: sqlite3.Connection, *, now: float | None = None, vacuum: bool = True,
          force_vacuum: bool = False) -> dict:
    """Remove names and phone numbers past retention; returns counts.  Safe to run any time."""
    now = time.time() if now is None else now
    pq.secure_delete_on(conn)
    ids = due(conn, cfg["activities.retention_days"], now)
    bookings = 0
    with transaction(conn):
        for aid in ids:
            bookings += pq.blank_contacts(conn, aid)
            pq.mark_purged(conn, aid, now)
    vacuumed = False
    if force_vacuum or (vacuum and (ids or bookings)):
        vacuumed = compact(conn)
    if ids:
        log.info("privacy purge: removed contact details of %d booking(s) of %d activity(ies)", bookings, len(ids))
    return {"activities": len(ids), "bookings": bookings, "vacuumed": vacuumed}


def compact(conn: sqlite3.Connection) -> bool:
    """VACUUM and truncate the WAL, so old page images holding deleted values leave the disk.

    A reader holding an old snapshot can keep the WAL from being truncated; we
    report that instead of waiting, and the next run finishes the job.
    """
    try:
        pq.vacuum(conn)
        busy = pq.truncate_wal(conn)
    except sqlite3.OperationalError as e:
        log.warning("W_PURGE_VACUUM: could not vacuum now (%s); the next purge retries", e)
        return False
    if busy:
        log.warning("W_PURGE_VACUUM: a reader kept the WAL from being truncated; the next purge retries")
    return not busy


def housekeeping(cfg, conn, store) -> dict:
    """Housekeeping step: names and phones past their retention, first (before the vacuum)."""
    purge(cfg, conn)
    return {}
