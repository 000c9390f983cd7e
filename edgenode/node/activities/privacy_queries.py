"""SQL for deleting bookings' personal data.  Functions take the connection first; writers open no
transaction (see :mod:`edgenode.node.activities.privacy` for the order they run in)."""

from __future__ import annotations

import sqlite3


def activities_ended_unpurged(conn: sqlite3.Connection, cutoff: float) -> list[str]:
    """Ids of activities that ended by ``cutoff`` and still hold contact details, oldest first."""
    return [r[0] for r in conn.execute(
        "SELECT id FROM act_activities WHERE end_at <= ? AND purged_at IS NULL ORDER BY end_at", (cutoff,))]


def secure_delete_on(conn: sqlite3.Connection) -> None:
    """Make SQLite overwrite freed bytes, so blanked values do not linger in free pages."""
    conn.execute("PRAGMA secure_delete = ON")


def blank_contacts(conn: sqlite3.Connection, activity_id: str) -> int:
    """Blank name, phone and terminal of the activity's bookings; returns how many still had any."""
    return conn.execute("UPDATE act_bookings SET name = '', phone = '', terminal = NULL "
                        "WHERE activity_id = ? AND (name != '' OR phone != '' OR terminal IS NOT NULL)",
                        (activity_id,)).rowcount


def mark_purged(conn: sqlite3.Connection, activity_id: str, now: float) -> None:
    conn.execute("UPDATE act_activities SET purged_at = ? WHERE id = ?", (now, activity_id))


def vacuum(conn: sqlite3.Connection) -> None:
    conn.execute("VACUUM")


def truncate_wal(conn: sqlite3.Connection) -> bool:
    """Checkpoint and truncate the WAL; True when a reader kept it from being truncated."""
    busy, _log, _ckpt = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return bool(busy)
