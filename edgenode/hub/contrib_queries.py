"""SQL of the hub's contributions (``hub/contrib.py``, ``hub/contrib_review.py``)."""

from __future__ import annotations

import sqlite3

FIELDS = ("sha256", "size", "kind", "ext", "title", "credit", "campaign", "duration", "state", "reason", "column_key",
          "source", "completed_at", "reviewed_at", "published_seq", "forward", "forwarded_at")


def row(conn: sqlite3.Connection, node_id: str, cid: str):
    return conn.execute("SELECT * FROM hub_contrib WHERE node_id = ? AND cid = ?", (node_id, cid)).fetchone()


def insert(conn: sqlite3.Connection, node_id: str, cid: str, doc: dict, now: float, source: str) -> None:
    conn.execute("INSERT INTO hub_contrib (node_id, cid, sha256, size, kind, ext, title, credit, campaign, duration, "
                 "state, source, offered_at) VALUES (?,?,?,?,?,?,?,?,?,?, 'receiving', ?, ?)",
                 (node_id, cid, doc["sha256"], doc["size"], doc["kind"], doc["ext"], doc["title"], doc["credit"],
                  doc["campaign"], doc.get("duration"), source, now))


def update(conn: sqlite3.Connection, node_id: str, cid: str, *, expect: tuple[str, ...] = (), **fields) -> int:
    cols = [k for k in fields if k in FIELDS]
    sql = f"UPDATE hub_contrib SET {', '.join(f'{k} = ?' for k in cols)} WHERE node_id = ? AND cid = ?"
    args = [fields[k] for k in cols] + [node_id, cid]
    if expect:
        sql += f" AND state IN ({','.join('?' * len(expect))})"
        args += list(expect)
    return conn.execute(sql, args).rowcount


def listing(conn: sqlite3.Connection, states: tuple[str, ...] = ()) -> list:
    sql = ("SELECT c.*, n.name AS node_name, n.township FROM hub_contrib c "
           "LEFT JOIN hub_nodes n ON n.node_id = c.node_id")
    if states:
        sql += f" WHERE c.state IN ({','.join('?' * len(states))})"
    return conn.execute(sql + " ORDER BY c.completed_at DESC, c.offered_at DESC", states).fetchall()


def unpublished_adopted(conn: sqlite3.Connection) -> list:
    return conn.execute("SELECT c.*, n.name AS node_name FROM hub_contrib c LEFT JOIN hub_nodes n "
                        "ON n.node_id = c.node_id WHERE c.state = 'adopted' AND c.published_seq IS NULL "
                        "ORDER BY c.reviewed_at").fetchall()


def states_for(conn: sqlite3.Connection, node_id: str, cids: list[str]) -> list:
    if not cids:
        return []
    marks = ",".join("?" * len(cids))
    return conn.execute(f"SELECT cid, state, reason FROM hub_contrib WHERE node_id = ? AND cid IN ({marks})",
                        (node_id, *cids)).fetchall()


def to_forward(conn: sqlite3.Connection) -> list:
    return conn.execute("SELECT * FROM hub_contrib WHERE state = 'adopted' AND forward = 1 AND forwarded_at IS NULL "
                        "ORDER BY reviewed_at").fetchall()
