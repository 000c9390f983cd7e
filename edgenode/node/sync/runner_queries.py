"""Sync runner SQL (:mod:`edgenode.node.sync.runner`) over the volatile ``jobs`` table."""

from __future__ import annotations

import sqlite3


def delete_old_jobs(vconn: sqlite3.Connection, kinds: tuple[str, ...], cutoff: float) -> int:
    """Delete finished jobs of these kinds that ended before ``cutoff``, except the newest row of each
    kind and state; returns how many went."""
    marks = ",".join("?" * len(kinds))
    cur = vconn.execute(
        f"DELETE FROM jobs WHERE kind IN ({marks}) AND finished_at IS NOT NULL AND finished_at < ? AND id NOT IN "
        f"(SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY kind, state ORDER BY started_at DESC) AS rn "
        f"FROM jobs WHERE kind IN ({marks})) WHERE rn = 1)", (*kinds, cutoff, *kinds))
    return cur.rowcount
