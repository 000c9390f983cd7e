"""Putting the pre-update backup back into the live database."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def restore(db_path: Path, backup: Path) -> None:
    """Copy the backup into the live database in one SQLite transaction (a power cut keeps one or the other)."""
    src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    dst = sqlite3.connect(db_path, timeout=30)
    try:
        dst.execute("PRAGMA synchronous=FULL")
        src.backup(dst)
    finally:
        src.close()
        dst.close()
