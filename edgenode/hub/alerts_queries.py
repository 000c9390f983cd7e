"""Alert SQL (``hub_alerts``), as functions that take the connection first.

An alert is open while ``cleared_at`` is NULL; the table's unique key on
(rule, node_id, subject) among open rows is what makes raising twice harmless.
Writers run inside the caller's transaction (:mod:`edgenode.hub.alerts` owns it).
"""

from __future__ import annotations

import sqlite3


def insert_alert_unless_open(db: sqlite3.Connection, rule: str, node_id: str, subject: str, detail: str,
                             at: float) -> bool:
    """True when a new alert row was written (False: the same one is already open)."""
    cur = db.execute("INSERT OR IGNORE INTO hub_alerts (rule, node_id, subject, detail, raised_at) "
                     "VALUES (?, ?, ?, ?, ?)", (rule, node_id, subject, detail, at))
    return cur.rowcount == 1


def insert_alert(db: sqlite3.Connection, rule: str, node_id: str, subject: str, detail: str, at: float) -> None:
    db.execute("INSERT INTO hub_alerts (rule, node_id, subject, detail, raised_at) VALUES (?, ?, ?, ?, ?)",
               (rule, node_id, subject, detail, at))


def open_alerts(db: sqlite3.Connection, node_id: str | None = None) -> list[dict]:
    """Open alerts, newest first, of one node when ``node_id`` is given."""
    sql = "SELECT * FROM hub_alerts WHERE cleared_at IS NULL"
    args: tuple = ()
    if node_id:
        sql += " AND node_id = ?"
        args = (node_id,)
    return [dict(r) for r in db.execute(sql + " ORDER BY raised_at DESC", args)]


def open_alert_ids(db: sqlite3.Connection, rules: tuple[str, ...]) -> dict[tuple, int]:
    """``{(rule, node_id, subject): id}`` of the open alerts of these rules."""
    return {(r["rule"], r["node_id"], r["subject"]): r["id"] for r in db.execute(
        "SELECT id, rule, node_id, subject FROM hub_alerts WHERE cleared_at IS NULL AND rule IN (%s)"
        % ",".join("?" * len(rules)), rules)}


def set_alert_detail(db: sqlite3.Connection, alert_id: int, detail: str) -> None:
    db.execute("UPDATE hub_alerts SET detail = ? WHERE id = ?", (detail, alert_id))


def clear_alert(db: sqlite3.Connection, alert_id: int, at: float) -> None:
    db.execute("UPDATE hub_alerts SET cleared_at = ? WHERE id = ?", (at, alert_id))


def clear_open_alert(db: sqlite3.Connection, alert_id: int, at: float) -> int:
    """Clear the alert if it is still open; returns 1 when it was, else 0."""
    return db.execute("UPDATE hub_alerts SET cleared_at = ? WHERE id = ? AND cleared_at IS NULL",
                      (at, alert_id)).rowcount


def open_unnotified(db: sqlite3.Connection) -> list[dict]:
    """Open alerts not yet sent to the webhook, oldest first."""
    return [dict(r) for r in db.execute(
        "SELECT id, rule, node_id, subject, detail, raised_at FROM hub_alerts "
        "WHERE cleared_at IS NULL AND notified_at IS NULL ORDER BY id")]


def mark_notified(db: sqlite3.Connection, stamps: list[tuple[float, int]]) -> None:
    """Set ``notified_at`` from ``(notified_at, alert_id)`` pairs."""
    db.executemany("UPDATE hub_alerts SET notified_at = ? WHERE id = ?", stamps)


def open_counts_by_rule(db: sqlite3.Connection) -> dict[str, int]:
    return dict(db.execute("SELECT rule, count(*) FROM hub_alerts WHERE cleared_at IS NULL GROUP BY rule"))


def clear_open_alert_by_key(db: sqlite3.Connection, rule: str, node_id: str, subject: str, at: float) -> int:
    return db.execute("UPDATE hub_alerts SET cleared_at = ? WHERE rule = ? AND node_id = ? AND subject = ? "
                      "AND cleared_at IS NULL", (at, rule, node_id, subject)).rowcount
