"""Statements of a province's rollout to its counties (``hub/tier_software.py``, ``hub/tier_release.py``).

At a province: each county's latest software section (``hub_tier_software``).  At a county:
what each province rollout asked here (``hub_upstream_rollouts``).  Functions take the
connection first; writers run inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3

# -- at a province ---------------------------------------------------------------------------------


def upsert_county_software(db: sqlite3.Connection, via: str, report_no: int, version: str, body: str,
                           at: float) -> None:
    db.execute("INSERT INTO hub_tier_software (via, report_no, version, body, at) VALUES (?, ?, ?, ?, ?) "
               "ON CONFLICT (via) DO UPDATE SET report_no = excluded.report_no, version = excluded.version, "
               "body = excluded.body, at = excluded.at WHERE excluded.report_no >= hub_tier_software.report_no",
               (via, report_no, version, body, at))
    # The county hub's row shows the version it runs now, as a node's shows its heartbeat's.
    db.execute("UPDATE hub_nodes SET version = ? WHERE node_id = ? AND kind = 'hub'", (version, via))


def county_software(db: sqlite3.Connection, via: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM hub_tier_software WHERE via = ?", (via,)).fetchone()


def all_county_software(db: sqlite3.Connection) -> dict[str, sqlite3.Row]:
    return {r["via"]: r for r in db.execute("SELECT * FROM hub_tier_software")}


def hub_node_ids_by_name(db: sqlite3.Connection, name: str) -> list[str]:
    return [r[0] for r in db.execute("SELECT node_id FROM hub_nodes WHERE kind = 'hub' AND revoked_at IS NULL "
                                     "AND name = ?", (name,))]


# -- at a county -----------------------------------------------------------------------------------


def upstream_rollout(db: sqlite3.Connection, upstream_id: int) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM hub_upstream_rollouts WHERE upstream_id = ?", (upstream_id,)).fetchone()


def latest_upstream_rollout(db: sqlite3.Connection) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM hub_upstream_rollouts ORDER BY upstream_id DESC LIMIT 1").fetchone()


def upstream_rollouts(db: sqlite3.Connection, limit: int = 20) -> list[sqlite3.Row]:
    return db.execute("SELECT * FROM hub_upstream_rollouts ORDER BY upstream_id DESC LIMIT ?", (limit,)).fetchall()


def set_upstream_rollout(db: sqlite3.Connection, upstream_id: int, version: str, state: str, at: float, *,
                         code: str = "", reason: str = "", reason_zh: str = "", local_id: int | None = None) -> None:
    db.execute("INSERT INTO hub_upstream_rollouts (upstream_id, version, state, code, reason, reason_zh, local_id, at) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (upstream_id) DO UPDATE SET version = excluded.version, "
               "state = excluded.state, code = excluded.code, reason = excluded.reason, "
               "reason_zh = excluded.reason_zh, local_id = excluded.local_id, at = excluded.at",
               (upstream_id, version, state, code, reason[:500], reason_zh[:500], local_id, at))


def rollout_counts(db: sqlite3.Connection, rollout_id: int) -> dict[str, int]:
    return dict(db.execute("SELECT state, count(*) FROM hub_rollout_nodes WHERE rollout_id = ? GROUP BY state",
                           (rollout_id,)))
