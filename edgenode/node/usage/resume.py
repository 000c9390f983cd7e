"""继续观看: where this terminal stopped, per video or audio, and what to show on home.

Positions come with the player's beacons (``events.record`` keeps the last
one per terminal and resource in ``resume_points``).  A terminal is the random
``tid`` cookie, never a person or an account; the points stay on the node
(the uplink reads ``usage_events`` only) and housekeeping deletes them after
``usage.keep_days`` (``retention.prune``).

A position counts as *stopped part way* from ``MIN_SECONDS`` in until the
last 5% (at most ``END_MARGIN`` seconds, the credits); past that the item is
finished and starts from the beginning again.
"""

from __future__ import annotations

import sqlite3

from edgenode.node.usage import resume_queries as q

MIN_SECONDS = 5.0
END_MARGIN = 10.0


def _part_way(position: float, duration: float | None) -> bool:
    return position >= MIN_SECONDS and (not duration or position < duration - min(END_MARGIN, 0.05 * duration))


def start_at(conn: sqlite3.Connection, terminal: str | None, res: dict) -> float:
    """Where the resource page starts playing for this terminal: its stop, or 0."""
    if not terminal or res.get("kind") not in ("video", "audio"):
        return 0.0
    position = q.position(conn, terminal, res["id"])
    return round(position, 1) if position is not None and _part_way(position, res.get("duration")) else 0.0


def continue_watching(conn: sqlite3.Connection, terminal: str | None, limit: int = 4) -> list[dict]:
    """This terminal's videos and audio stopped part way, last watched first; one per series."""
    if not terminal:
        return []
    out, series = [], set()
    for r in q.recent(conn, terminal, limit * 4):
        if not _part_way(r["position"], r["duration"]) or (r["series_num"] and r["series_num"] in series):
            continue
        series.add(r["series_num"])
        out.append(r)
        if len(out) == limit:
            break
    return out


def forget_older_than(conn: sqlite3.Connection, cutoff: float) -> int:
    return q.delete_before(conn, cutoff)
