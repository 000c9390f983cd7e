"""Heartbeat SQL: the latest snapshot per node (``hub_latest``) and the trend history
(``hub_heartbeats``), as functions that take the connection first.

Writers run inside the caller's transaction (:mod:`edgenode.hub.heartbeat` owns it).
A heartbeat is two inserts and nothing else: at 1,000 heartbeats/s every statement shows.
"""

from __future__ import annotations

import sqlite3


def replace_latest(db: sqlite3.Connection, node_id: str, received_at: float, signed_ts: int | None,
                   body: str) -> None:
    db.execute("INSERT OR REPLACE INTO hub_latest (node_id, received_at, signed_ts, body) VALUES (?, ?, ?, ?)",
               (node_id, received_at, signed_ts, body))


def insert_history(db: sqlite3.Connection, node_id: str, received_at: float, trend: str) -> int:
    """Append one trend row; returns its id."""
    return db.execute("INSERT INTO hub_heartbeats (node_id, received_at, body) VALUES (?, ?, ?)",
                      (node_id, received_at, trend)).lastrowid


def prune_history(db: sqlite3.Connection, node_id: str, keep: int) -> None:
    """Delete all but the newest ``keep`` trend rows of a node."""
    db.execute("DELETE FROM hub_heartbeats WHERE node_id = ? AND id < (SELECT id FROM hub_heartbeats "
               "WHERE node_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)", (node_id, node_id, keep - 1))


def nodes_with_history(db: sqlite3.Connection) -> list[str]:
    return [row[0] for row in db.execute("SELECT DISTINCT node_id FROM hub_heartbeats")]


def latest(db: sqlite3.Connection, node_id: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM hub_latest WHERE node_id = ?", (node_id,)).fetchone()


def history_newest_first(db: sqlite3.Connection, node_id: str, limit: int) -> list[sqlite3.Row]:
    """(received_at, body) of a node's newest ``limit`` trend rows, newest first."""
    return db.execute("SELECT received_at, body FROM hub_heartbeats WHERE node_id = ? ORDER BY id DESC LIMIT ?",
                      (node_id, limit)).fetchall()


def nodes_with_latest(db: sqlite3.Connection, node_id: str | None = None) -> list[sqlite3.Row]:
    """Every enrolled node (or the one ``node_id``) with its latest heartbeat's body (``hb_body``) and time
    (``hb_at``), or NULLs."""
    where, args = ("WHERE n.node_id = ? ", (node_id,)) if node_id else ("", ())
    return db.execute("SELECT n.*, l.body AS hb_body, l.received_at AS hb_at FROM hub_nodes n "
                      f"LEFT JOIN hub_latest l USING (node_id) {where}ORDER BY n.township, n.name, n.node_id",
                      args).fetchall()


def nodes_with_latest_time(db: sqlite3.Connection, node_id: str | None = None) -> list[sqlite3.Row]:
    """As :func:`nodes_with_latest` without the bodies (``hb_at`` only): the fleet view reads a body only when
    it has not parsed that heartbeat before."""
    where, args = ("WHERE n.node_id = ? ", (node_id,)) if node_id else ("", ())
    return db.execute("SELECT n.*, l.received_at AS hb_at FROM hub_nodes n "
                      f"LEFT JOIN hub_latest l USING (node_id) {where}ORDER BY n.township, n.name, n.node_id",
                      args).fetchall()


def latest_bodies(db: sqlite3.Connection, node_ids: list[str]) -> dict[str, tuple[float, str]]:
    """``{node_id: (received_at, body)}`` of these nodes' latest heartbeats."""
    out = {}
    for i in range(0, len(node_ids), 500):
        part = node_ids[i:i + 500]
        out.update((r[0], (r[1], r[2])) for r in db.execute(
            "SELECT node_id, received_at, body FROM hub_latest WHERE node_id IN (%s)" % ",".join("?" * len(part)),
            part))
    return out


def database_path(db: sqlite3.Connection) -> str:
    return db.execute("PRAGMA database_list").fetchone()[2]
