"""Staff account SQL (``hub_staff``), as functions that take the connection first.

Writers run inside the caller's transaction (:mod:`edgenode.hub.staff` owns it and
the lockout rules).
"""

from __future__ import annotations

import sqlite3


def upsert_password(db: sqlite3.Connection, username: str, pw_hash: str, created_at: float) -> None:
    # A new password also lifts a lockout: setting one is how staff get back in.
    db.execute("INSERT INTO hub_staff (username, pw_hash, created_at) VALUES (?, ?, ?) "
               "ON CONFLICT (username) DO UPDATE SET pw_hash = excluded.pw_hash, failures = 0, locked_until = 0",
               (username, pw_hash, created_at))


def account(db: sqlite3.Connection, username: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM hub_staff WHERE username = ?", (username,)).fetchone()


def reset_failures(db: sqlite3.Connection, username: str) -> None:
    db.execute("UPDATE hub_staff SET failures = 0 WHERE username = ?", (username,))


def set_failures(db: sqlite3.Connection, username: str, failures: int, locked_until: float) -> None:
    db.execute("UPDATE hub_staff SET failures = ?, locked_until = ? WHERE username = ?",
               (failures, locked_until, username))


def any_account(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM hub_staff LIMIT 1").fetchone() is not None


def set_role(db: sqlite3.Connection, username: str, role: str) -> bool:
    return db.execute("UPDATE hub_staff SET role = ? WHERE username = ?", (role, username)).rowcount > 0


def accounts(db: sqlite3.Connection) -> list[dict]:
    return [dict(r) for r in db.execute("SELECT username, role, created_at, locked_until FROM hub_staff "
                                        "ORDER BY username")]
