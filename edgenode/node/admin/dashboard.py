"""What the administrator's dashboard shows, as one plain dict.

Framework-free so the CLI (``edgenode admin dashboard --json``) and the web
page show the same figures.
"""

from __future__ import annotations

import shutil
import sqlite3

from edgenode.node.catalog import queries as q
from edgenode.protocol.metadata import COLUMNS
from edgenode.node.usage import stats


def dashboard(conn: sqlite3.Connection, store, *, now: float | None = None) -> dict:
    disk = shutil.disk_usage(store.root)
    totals = q.totals(conn)
    counts = q.column_counts(conn)
    starts = stats.period_starts(now)
    return {
        "storage": {
            "content_bytes": totals["bytes"],
            "disk_total_bytes": disk.total,
            "disk_used_bytes": disk.used,
            "disk_free_bytes": disk.free,
            "disk_used_percent": round(100 * disk.used / disk.total, 1) if disk.total else 0.0,
        },
        "resources": {"total": totals["resources"], "visible": totals["visible"],
                      "by_column": [{"key": k, "name": COLUMNS[k], "count": counts[k]} for k in COLUMNS]},
        "usage": stats.summary(conn, now),
        "most_watched": stats.most_watched(conn, since=starts["month"], limit=10),
        "most_watched_all_time": stats.most_watched(conn, limit=10),
    }
