"""Audit log SQL (``hub_audit``): one row per staff action, on the web or the command line.

Functions take the connection first; :mod:`edgenode.hub.audit` owns the transaction.
"""

from __future__ import annotations

import sqlite3


def insert(db: sqlite3.Connection, at: float, username: str, role: str, action: str, target: str, detail: str,
           outcome: str) -> None:
    db.execute("INSERT INTO hub_audit (at, username, role, action, target, detail, outcome) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)", (at, username, role, action, target, detail, outcome))


def recent(db: sqlite3.Connection, limit: int, username: str | None = None) -> list[dict]:
    where, args = ("WHERE username = ?", [username]) if username else ("", [])
    return [dict(r) for r in db.execute(f"SELECT * FROM hub_audit {where} ORDER BY id DESC LIMIT ?",
                                        [*args, limit])]


def node_names(db: sqlite3.Connection) -> dict[str, str]:
    return {r[0]: r[1] for r in db.execute("SELECT node_id, name FROM hub_nodes")}
