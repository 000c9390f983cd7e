"""Trust store SQL: publisher keys, their channels, per-channel sequence and the key list's sequence.

Functions take the connection first.  Writers open no transaction of their own: the
trust rules in :mod:`edgenode.node.imports.trust` decide which statements must land together.
"""

from __future__ import annotations

import sqlite3
import time


def key_row(conn: sqlite3.Connection, key_id: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM trust_keys WHERE key_id = ?", (key_id,)).fetchone()


def stored_public_key(conn: sqlite3.Connection, key_id: str) -> str | None:
    """The base64 public key trusted under ``key_id``, None when the id is unknown."""
    row = conn.execute("SELECT public_key FROM trust_keys WHERE key_id = ?", (key_id,)).fetchone()
    return row[0] if row else None


def key_exists(conn: sqlite3.Connection, key_id: str) -> bool:
    return conn.execute("SELECT 1 FROM trust_keys WHERE key_id = ?", (key_id,)).fetchone() is not None


def insert_key(conn: sqlite3.Connection, key_id: str, public_key: str, comment: str, added_by: str) -> None:
    conn.execute("INSERT INTO trust_keys (key_id, public_key, comment, added_at, added_by) "
                 "VALUES (?, ?, ?, ?, ?)", (key_id, public_key, comment, time.time(), added_by))


def delete_key(conn: sqlite3.Connection, key_id: str) -> None:
    conn.execute("DELETE FROM trust_keys WHERE key_id = ?", (key_id,))


def key_ids(conn: sqlite3.Connection) -> list[str]:
    """Oldest first, so listings stay in the order keys were trusted."""
    return [r[0] for r in conn.execute("SELECT key_id FROM trust_keys ORDER BY added_at, key_id")]


def all_public_keys(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT public_key FROM trust_keys")]


def grant_channels(conn: sqlite3.Connection, key_id: str, channels: list[str]) -> None:
    """Channels the key already has are kept, not duplicated."""
    conn.executemany("INSERT OR IGNORE INTO trust_channels (key_id, channel) VALUES (?, ?)",
                     [(key_id, c) for c in channels])


def revoke_channels(conn: sqlite3.Connection, key_id: str, channels) -> None:
    conn.executemany("DELETE FROM trust_channels WHERE key_id = ? AND channel = ?",
                     [(key_id, c) for c in channels])


def has_any_channel(conn: sqlite3.Connection, key_id: str) -> bool:
    return conn.execute("SELECT 1 FROM trust_channels WHERE key_id = ?", (key_id,)).fetchone() is not None


def sorted_channels(conn: sqlite3.Connection, key_id: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT channel FROM trust_channels WHERE key_id = ? ORDER BY channel",
                                       (key_id,))]


def channel_set(conn: sqlite3.Connection, key_id: str) -> set[str]:
    return {r[0] for r in conn.execute("SELECT channel FROM trust_channels WHERE key_id = ?", (key_id,))}


def channel_state_row(conn: sqlite3.Connection, channel: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM channel_state WHERE channel = ?", (channel,)).fetchone()


def channel_state_rows(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM channel_state ORDER BY channel").fetchall()


def save_channel_sequence(conn: sqlite3.Connection, channel: str, seq: int, manifest_sha256: str) -> None:
    conn.execute("INSERT INTO channel_state (channel, seq, manifest_sha256, imported_at) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT (channel) DO UPDATE SET seq = excluded.seq, manifest_sha256 = excluded.manifest_sha256, "
                 "imported_at = excluded.imported_at", (channel, seq, manifest_sha256, time.time()))


def keylist_sequence(conn: sqlite3.Connection) -> int:
    """The sequence of the last key list applied; 0 before the first."""
    row = conn.execute("SELECT value FROM trust_meta WHERE name = 'keylist_seq'").fetchone()
    return row[0] if row else 0


def save_keylist_sequence(conn: sqlite3.Connection, seq: int) -> None:
    conn.execute("INSERT INTO trust_meta (name, value) VALUES ('keylist_seq', ?) "
                 "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (seq,))
