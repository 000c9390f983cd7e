"""Registry SQL: enrolment codes (``hub_codes``), enrolled nodes (``hub_nodes``) and the hub log (``hub_log``).

Functions take the connection first.  Writers run inside the caller's
:func:`edgenode.core.db.transaction`: the calling module (``registry``, ``signing``,
``usb``, ``jobs``) owns the transaction and the decisions.
"""

from __future__ import annotations

import sqlite3

# -- enrolment codes -------------------------------------------------------------------------------


def insert_code(db: sqlite3.Connection, code_hash: str, hint: str, township: str, created_at: float,
                expires_at: float) -> None:
    db.execute("INSERT INTO hub_codes (code_hash, hint, township, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
               (code_hash, hint, township, created_at, expires_at))


def codes_newest_first(db: sqlite3.Connection) -> list[sqlite3.Row]:
    return db.execute("SELECT * FROM hub_codes ORDER BY created_at DESC").fetchall()


def code_by_hash(db: sqlite3.Connection, code_hash: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM hub_codes WHERE code_hash = ?", (code_hash,)).fetchone()


def revoke_open_codes_by_hint(db: sqlite3.Connection, hint: str, at: float) -> int:
    """Revoke the unused, unrevoked codes ending in ``hint``; returns how many."""
    return db.execute("UPDATE hub_codes SET revoked_at = ? WHERE hint = ? AND used_at IS NULL "
                      "AND revoked_at IS NULL", (at, hint)).rowcount


def mark_code_used(db: sqlite3.Connection, code_hash: str, at: float, node_id: str) -> None:
    db.execute("UPDATE hub_codes SET used_at = ?, used_by = ? WHERE code_hash = ?", (at, node_id, code_hash))


# -- nodes -----------------------------------------------------------------------------------------


def node_by_id(db: sqlite3.Connection, node_id: str) -> sqlite3.Row | None:
    # A primary-key read per request, never cached: a revocation shows on the very next request.
    return db.execute("SELECT * FROM hub_nodes WHERE node_id = ?", (node_id,)).fetchone()


def nodes_matching(db: sqlite3.Connection, ref: str) -> list[sqlite3.Row]:
    """Nodes whose id or exact name is ``ref``, or whose id starts with ``ref`` (6 characters or more)."""
    return db.execute("SELECT * FROM hub_nodes WHERE node_id = ? OR name = ? OR "
                      "(length(?) >= 6 AND node_id LIKE ? || '%')", (ref, ref, ref, ref)).fetchall()


def nodes_in_order(db: sqlite3.Connection) -> list[sqlite3.Row]:
    return db.execute("SELECT * FROM hub_nodes ORDER BY township, name, node_id").fetchall()


def insert_node(db: sqlite3.Connection, node_id: str, public_key: str, kind: str, name: str, township: str,
                version: str, enrolled_at: float) -> None:
    db.execute("INSERT INTO hub_nodes (node_id, public_key, kind, name, township, version, enrolled_at) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)", (node_id, public_key, kind, name, township, version, enrolled_at))


def mark_node_revoked(db: sqlite3.Connection, node_id: str, at: float) -> None:
    # coalesce: revoking twice keeps the first time.
    db.execute("UPDATE hub_nodes SET revoked_at = coalesce(revoked_at, ?) WHERE node_id = ?", (at, node_id))


def set_node_name(db: sqlite3.Connection, node_id: str, name: str) -> None:
    db.execute("UPDATE hub_nodes SET name = ? WHERE node_id = ?", (name, node_id))


def set_node_township(db: sqlite3.Connection, node_id: str, township: str) -> None:
    db.execute("UPDATE hub_nodes SET township = ? WHERE node_id = ?", (township, node_id))


# -- the hub log -----------------------------------------------------------------------------------


def insert_log(db: sqlite3.Connection, at: float, level: str, code: str, node_id: str | None, detail: str) -> int:
    """Append one log row; returns its id."""
    return db.execute("INSERT INTO hub_log (at, level, code, node_id, detail) VALUES (?, ?, ?, ?, ?)",
                      (at, level, code, node_id, detail)).lastrowid


def max_log_id(db: sqlite3.Connection) -> int | None:
    return db.execute("SELECT max(id) FROM hub_log").fetchone()[0]


def delete_log_up_to(db: sqlite3.Connection, last_id: int) -> None:
    db.execute("DELETE FROM hub_log WHERE id <= ?", (last_id,))


def recent_log(db: sqlite3.Connection, node_id: str | None, limit: int) -> list[dict]:
    """The newest log rows, of one node when ``node_id`` is given."""
    if node_id:
        rows = db.execute("SELECT * FROM hub_log WHERE node_id = ? ORDER BY id DESC LIMIT ?", (node_id, limit))
    else:
        rows = db.execute("SELECT * FROM hub_log ORDER BY id DESC LIMIT ?", (limit,))
    return [dict(r) for r in rows]
