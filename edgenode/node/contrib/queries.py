"""The contrib area's SQL (callers hold the transaction when they write more than one row)."""

from __future__ import annotations

import sqlite3

FIELDS = ("title", "credit", "campaign", "consent", "filename", "kind", "ext", "state", "reason", "code", "size",
          "sha256", "duration", "uploaded_at")


def insert_upload(conn: sqlite3.Connection, uid: str, length: int, meta: str, day: str, now: float) -> None:
    conn.execute("INSERT INTO contrib_uploads (id, length, meta, day, created_at, touched_at) VALUES (?,?,?,?,?,?)",
                 (uid, length, meta, day, now, now))


def upload(conn: sqlite3.Connection, uid: str):
    return conn.execute("SELECT * FROM contrib_uploads WHERE id = ?", (uid,)).fetchone()


def day_total(conn: sqlite3.Connection, day: str) -> int:
    return conn.execute("SELECT COALESCE(SUM(length), 0) FROM contrib_uploads WHERE day = ?", (day,)).fetchone()[0]


def touch_upload(conn: sqlite3.Connection, uid: str, now: float) -> None:
    conn.execute("UPDATE contrib_uploads SET touched_at = ? WHERE id = ?", (now, uid))


def mark_upload_done(conn: sqlite3.Connection, uid: str) -> int:
    return conn.execute("UPDATE contrib_uploads SET done = 1 WHERE id = ? AND done = 0", (uid,)).rowcount


def delete_upload(conn: sqlite3.Connection, uid: str) -> None:
    conn.execute("DELETE FROM contrib_uploads WHERE id = ?", (uid,))


def stale_uploads(conn: sqlite3.Connection, before: float) -> list:
    return conn.execute("SELECT id FROM contrib_uploads WHERE done = 0 AND touched_at < ?", (before,)).fetchall()


def old_done_uploads(conn: sqlite3.Connection, before: float) -> int:
    """Forget finished uploads' rows once their day can no longer count against the cap."""
    return conn.execute("DELETE FROM contrib_uploads WHERE done = 1 AND created_at < ?", (before,)).rowcount


def open_upload_ids(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT id FROM contrib_uploads WHERE done = 0")}


def insert_contribution(conn: sqlite3.Connection, uid: str, meta: dict, now: float) -> None:
    conn.execute("INSERT INTO contributions (id, title, credit, campaign, consent, filename, state, created_at, "
                 "updated_at) VALUES (?,?,?,?,?,?, 'processing', ?, ?)",
                 (uid, meta["title"], meta["credit"], meta["campaign"], int(meta["consent"]), meta["filename"],
                  now, now))


def contribution(conn: sqlite3.Connection, cid: str):
    return conn.execute("SELECT * FROM contributions WHERE id = ?", (cid,)).fetchone()


def contributions(conn: sqlite3.Connection, states: tuple[str, ...] | None = None, limit: int = 500) -> list:
    if states:
        marks = ",".join("?" * len(states))
        return conn.execute(f"SELECT * FROM contributions WHERE state IN ({marks}) ORDER BY created_at LIMIT ?",
                            (*states, limit)).fetchall()
    return conn.execute("SELECT * FROM contributions ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()


def update(conn: sqlite3.Connection, cid: str, now: float, *, expect: tuple[str, ...] = (), **fields) -> int:
    """Set ``fields`` on one contribution; with ``expect``, only while its state is one of those."""
    cols = [k for k in fields if k in FIELDS]
    sets = ", ".join(f"{k} = ?" for k in cols)
    sql = f"UPDATE contributions SET {sets}, updated_at = ? WHERE id = ?"
    args = [fields[k] for k in cols] + [now, cid]
    if expect:
        sql += f" AND state IN ({','.join('?' * len(expect))})"
        args += list(expect)
    return conn.execute(sql, args).rowcount
