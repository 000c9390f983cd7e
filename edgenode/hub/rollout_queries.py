"""Statements of the rollouts (``hub/rollout.py``), taking the connection first."""

from __future__ import annotations

import sqlite3


def insert_rollout(db: sqlite3.Connection, version: str, max_fail: float, at: float, by: str, kind: str = "node",
                   upstream_id: int | None = None) -> int:
    return db.execute("INSERT INTO hub_rollouts (version, state, ring, max_fail_share, created_at, created_by, kind, "
                      "upstream_id) VALUES (?, 'running', 0, ?, ?, ?, ?, ?)",
                      (version, max_fail, at, by, kind, upstream_id)).lastrowid


def insert_member(db: sqlite3.Connection, rollout_id: int, node_id: str, ring: int) -> None:
    db.execute("INSERT INTO hub_rollout_nodes (rollout_id, node_id, ring, state) VALUES (?, ?, ?, 'waiting')",
               (rollout_id, node_id, ring))


def insert_log(db: sqlite3.Connection, rollout_id: int, at: float, event: str, ring, node_id, detail: str) -> None:
    db.execute("INSERT INTO hub_rollout_log (rollout_id, at, event, ring, node_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
               (rollout_id, at, event, ring, node_id, detail[:500]))


def rollout(db: sqlite3.Connection, rollout_id: int) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM hub_rollouts WHERE id = ?", (rollout_id,)).fetchone()


def rollouts(db: sqlite3.Connection, limit: int = 50, kind: str | None = None) -> list[sqlite3.Row]:
    return db.execute("SELECT * FROM hub_rollouts WHERE ? IS NULL OR kind = ? ORDER BY id DESC LIMIT ?",
                      (kind, kind, limit)).fetchall()


def running_ids(db: sqlite3.Connection, kind: str = "node") -> list[int]:
    """Running rollouts of one kind: a province may roll out to its counties while it updates its own nodes."""
    return [r[0] for r in db.execute("SELECT id FROM hub_rollouts WHERE state = 'running' AND kind = ?", (kind,))]


def members(db: sqlite3.Connection, rollout_id: int) -> list[sqlite3.Row]:
    return db.execute("SELECT m.*, n.name, n.township FROM hub_rollout_nodes m LEFT JOIN hub_nodes n "
                      "USING (node_id) WHERE rollout_id = ? ORDER BY ring, node_id", (rollout_id,)).fetchall()


def membership(db: sqlite3.Connection, node_id: str) -> sqlite3.Row | None:
    """The node's row in the newest running rollout, if any."""
    return db.execute("SELECT m.*, r.version FROM hub_rollout_nodes m JOIN hub_rollouts r ON r.id = m.rollout_id "
                      "WHERE m.node_id = ? AND r.state = 'running' ORDER BY r.id DESC LIMIT 1",
                      (node_id,)).fetchone()


def set_member(db: sqlite3.Connection, rollout_id: int, node_id: str, state: str, at: float, code: str = "",
               detail: str = "") -> None:
    db.execute("UPDATE hub_rollout_nodes SET state = ?, done_at = ?, code = ?, detail = ? "
               "WHERE rollout_id = ? AND node_id = ?", (state, at, code, detail[:500], rollout_id, node_id))


def open_ring(db: sqlite3.Connection, rollout_id: int, ring: int, at: float) -> int:
    db.execute("UPDATE hub_rollouts SET ring = ? WHERE id = ?", (ring, rollout_id))
    return db.execute("UPDATE hub_rollout_nodes SET state = 'go', go_at = ? WHERE rollout_id = ? AND ring = ? "
                      "AND state = 'waiting'", (at, rollout_id, ring)).rowcount


def ring_counts(db: sqlite3.Connection, rollout_id: int) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for ring, state, n in db.execute("SELECT ring, state, count(*) FROM hub_rollout_nodes WHERE rollout_id = ? "
                                     "GROUP BY ring, state", (rollout_id,)):
        out.setdefault(ring, {})[state] = n
    return out


def finish(db: sqlite3.Connection, rollout_id: int, state: str, at: float, reason: str = "",
           reason_zh: str = "") -> None:
    db.execute("UPDATE hub_rollouts SET state = ?, finished_at = ?, reason = ?, reason_zh = ? WHERE id = ?",
               (state, at, reason[:500], reason_zh[:500], rollout_id))


def log_rows(db: sqlite3.Connection, rollout_id: int) -> list[sqlite3.Row]:
    return db.execute("SELECT * FROM hub_rollout_log WHERE rollout_id = ? ORDER BY id", (rollout_id,)).fetchall()


def candidate_nodes(db: sqlite3.Connection, kind: str) -> list[str]:
    return [r[0] for r in db.execute("SELECT node_id FROM hub_nodes WHERE revoked_at IS NULL AND kind = ? "
                                     "ORDER BY enrolled_at, node_id", (kind,))]
