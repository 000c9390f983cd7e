"""Administrator account SQL.  Functions take the connection first; writers open no transaction.

The login rules (hashing, lock-out) are in :mod:`edgenode.node.web.accounts`.
"""

from __future__ import annotations

import sqlite3


def account_row(conn: sqlite3.Connection, username: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM admin_accounts WHERE username = ?", (username,)).fetchone()


def account_rows(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM admin_accounts ORDER BY username").fetchall()


def any_account(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM admin_accounts LIMIT 1").fetchone() is not None


def save_password_hash(conn: sqlite3.Connection, username: str, password_hash: str, now: float) -> None:
    """Create the account or replace its hash; bumping the generation ends older sessions."""
    conn.execute("""INSERT INTO admin_accounts (username, password_hash, updated_at) VALUES (?, ?, ?)
                    ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash,
                    generation = generation + 1, failures = 0, locked_until = 0,
                    updated_at = excluded.updated_at""", (username, password_hash, now))


def clear_lockout(conn: sqlite3.Connection, username: str) -> int:
    """Returns how many accounts matched (0 for an unknown name)."""
    return conn.execute("UPDATE admin_accounts SET failures = 0, locked_until = 0 WHERE username = ?",
                        (username,)).rowcount


def record_login(conn: sqlite3.Connection, username: str, now: float) -> None:
    conn.execute("UPDATE admin_accounts SET failures = 0, locked_until = 0, last_login_at = ? "
                 "WHERE username = ?", (now, username))


def count_failure(conn: sqlite3.Connection, username: str) -> int:
    """Add one consecutive failure; returns the new count."""
    return conn.execute("UPDATE admin_accounts SET failures = failures + 1 WHERE username = ? "
                        "RETURNING failures", (username,)).fetchone()[0]


def lock_until(conn: sqlite3.Connection, username: str, until: float) -> None:
    """Failures restart from zero: once the lock-out ends, the account has its full number of tries again."""
    conn.execute("UPDATE admin_accounts SET failures = 0, locked_until = ? WHERE username = ?",
                 (until, username))
