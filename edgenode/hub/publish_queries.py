"""Publication SQL: every published bundle (``hub_publications``) and each channel's
latest one (``hub_channels``), as functions that take the connection first.

Writers run inside the caller's transaction (:mod:`edgenode.hub.publish` owns it).
"""

from __future__ import annotations

import sqlite3


def max_seq(db: sqlite3.Connection, channel: str) -> int | None:
    """The highest published sequence of a channel, None before its first bundle."""
    return db.execute("SELECT max(seq) FROM hub_publications WHERE channel = ?", (channel,)).fetchone()[0]


def is_published(db: sqlite3.Connection, channel: str, seq: int) -> bool:
    return db.execute("SELECT 1 FROM hub_publications WHERE channel = ? AND seq = ?",
                      (channel, seq)).fetchone() is not None


def publications(db: sqlite3.Connection) -> list[dict]:
    """(channel, seq, bundle_dir) of every publication, by channel then sequence."""
    return [dict(r) for r in db.execute("SELECT channel, seq, bundle_dir FROM hub_publications ORDER BY channel, seq")]


def replace_publication(db: sqlite3.Connection, channel: str, seq: int, bundle_dir: str, source: str,
                        at: float) -> None:
    db.execute("INSERT OR REPLACE INTO hub_publications (channel, seq, bundle_dir, source, published_at) "
               "VALUES (?, ?, ?, ?, ?)", (channel, seq, bundle_dir, source, at))


def advance_channel(db: sqlite3.Connection, channel: str, seq: int, bundle_dir: str, at: float) -> None:
    # Only forward: registering an older bundle (a rescan, a late upstream copy) keeps the latest.
    db.execute("INSERT INTO hub_channels (channel, latest_seq, bundle_dir, published_at) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (channel) DO UPDATE SET latest_seq = excluded.latest_seq, "
               "bundle_dir = excluded.bundle_dir, published_at = excluded.published_at "
               "WHERE excluded.latest_seq >= hub_channels.latest_seq", (channel, seq, bundle_dir, at))


def latest_channels(db: sqlite3.Connection) -> dict[str, int]:
    """``{channel: latest_seq}``, by channel name."""
    return {r[0]: r[1] for r in db.execute("SELECT channel, latest_seq FROM hub_channels ORDER BY channel")}
