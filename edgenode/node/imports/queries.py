"""Import SQL: the history of import runs and the accepted bundles' signed manifests.

Functions take the connection first.  Writers open no transaction: a successful import
writes its rows inside the pipeline's one commit transaction.
"""

from __future__ import annotations

import sqlite3
import time


def insert_import(conn: sqlite3.Connection, r, finished_at: float) -> int:
    """One history row from an ``ImportResult``; returns its id."""
    return conn.execute(
        "INSERT INTO imports (started_at, finished_at, source, bundle, channel, seq, result, added, updated, "
        "withdrawn, files_copied, files_skipped, bytes_copied, bytes_total, duration, error_code, error, warnings) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (r.started_at, finished_at, r.source, r.bundle, r.channel, r.seq, r.result, r.added, r.updated,
         r.withdrawn, r.files_copied, r.files_skipped, r.bytes_copied, r.bytes_total, r.duration, r.error_code,
         r.error, "\n".join(r.warnings))).lastrowid


def recent_imports(conn: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM imports ORDER BY started_at DESC, id DESC LIMIT ?", (limit,)).fetchall()


def import_for_job(conn: sqlite3.Connection, source: str, bundle_name: str, started_at: float) -> sqlite3.Row | None:
    """The history row of the attempt a job row mirrors: same source, bundle folder and start."""
    return conn.execute(
        "SELECT * FROM imports WHERE source = ? AND (bundle = ? OR substr(bundle, -length(?)) = ?) "
        "AND started_at BETWEEN ? AND ? ORDER BY id DESC LIMIT 1",
        (source, bundle_name, "/" + bundle_name, "/" + bundle_name, started_at - 10, started_at + 1)).fetchone()


def stale_recorded(conn: sqlite3.Connection, bundle: str) -> bool:
    return conn.execute("SELECT 1 FROM imports WHERE bundle = ? AND result = 'stale'", (bundle,)).fetchone() is not None


def save_bundle(conn: sqlite3.Connection, channel: str, seq: int, manifest: bytes, signature: str, key_id: str,
                manifest_sha256: str) -> None:
    """Keep the signed manifest so the collection can be re-verified later; a re-import replaces it."""
    conn.execute("INSERT OR REPLACE INTO bundles (channel, seq, manifest, signature, key_id, manifest_sha256, "
                 "imported_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (channel, seq, manifest, signature, key_id, manifest_sha256, time.time()))
