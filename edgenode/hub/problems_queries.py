"""Problem-list SQL: staff notes (``hub_problem_notes``) and refused uploads from ``hub_log``.

Writers run inside the caller's transaction (:mod:`edgenode.hub.problems` owns it).
"""

from __future__ import annotations

import sqlite3


def refusals_since_last_batch(db: sqlite3.Connection, since: float) -> dict[str, dict]:
    """Per node, the uploads refused after ``since`` and after its last stored batch:
    ``{node_id: {"n", "first_at", "last_at", "code"}}`` (``code`` of the latest).  A batch conflict is not
    counted here: it is a problem of its own, until confirmed."""
    rows = db.execute(
        "SELECT l.node_id, count(*), min(l.at), max(l.at), l.code FROM hub_log l JOIN hub_nodes n USING (node_id) "
        "WHERE l.level = 'warning' AND l.at > ? AND (l.code = 'E_BAD_SIGNATURE' OR l.code LIKE 'E_BATCH%') "
        "AND l.code != 'E_BATCH_CONFLICT' "
        "AND l.at > coalesce(n.last_batch_at, 0) GROUP BY l.node_id", (since,))
    return {r[0]: {"n": r[1], "first_at": r[2], "last_at": r[3], "code": r[4]} for r in rows}


def notes(db: sqlite3.Connection) -> dict[tuple, dict]:
    return {(r["node_id"], r["kind"], r["subject"]): dict(r) for r in db.execute("SELECT * FROM hub_problem_notes")}


def upsert_note(db: sqlite3.Connection, node_id: str, kind: str, subject: str, action: str, reason: str,
                by: str, at: float, until: float | None) -> None:
    db.execute("INSERT OR REPLACE INTO hub_problem_notes (node_id, kind, subject, action, reason, by_staff, at, until) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (node_id, kind, subject, action, reason, by, at, until))


def delete_note(db: sqlite3.Connection, node_id: str, kind: str, subject: str) -> int:
    return db.execute("DELETE FROM hub_problem_notes WHERE node_id = ? AND kind = ? AND subject = ?",
                      (node_id, kind, subject)).rowcount


def open_alert_times(db: sqlite3.Connection) -> dict[tuple, float]:
    """``{(rule, node_id, subject): raised_at}`` of the open alerts: when the hourly check first saw each."""
    return {(r[0], r[1], r[2]): r[3] for r in db.execute(
        "SELECT rule, node_id, subject, raised_at FROM hub_alerts WHERE cleared_at IS NULL")}
