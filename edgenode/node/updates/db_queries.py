"""Putting the pre-update backup back into the live database."""

from __future__ import annotations

import os
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
    # Run as root (the updater's unit), SQLite may have made -wal/-shm as root: hand them back to the
    # database's owner, or the portal could not open its own database.
    st = Path(db_path).stat()
    for side in (Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        try:
            if side.stat().st_uid != st.st_uid:
                os.chown(side, st.st_uid, st.st_gid)
        except FileNotFoundError:
            pass
