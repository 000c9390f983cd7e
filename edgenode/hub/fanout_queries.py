"""Fan-out SQL at the hub (mirrors, traffic counters, tamper reports), connection first.

Writers run inside the caller's transaction (:mod:`edgenode.hub.fanout` owns it).
"""

from __future__ import annotations

import sqlite3


def set_mirror(db: sqlite3.Connection, node_id: str, rsync_url: str, http_url: str, at: float) -> None:
    db.execute("INSERT INTO hub_mirrors (node_id, rsync_url, http_url, assigned_at) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (node_id) DO UPDATE SET rsync_url = excluded.rsync_url, http_url = excluded.http_url, "
               "suspended_at = NULL, suspended_why = ''", (node_id, rsync_url, http_url, at))


def remove_mirror(db: sqlite3.Connection, node_id: str) -> int:
    return db.execute("DELETE FROM hub_mirrors WHERE node_id = ?", (node_id,)).rowcount


def update_mirror_urls(db: sqlite3.Connection, node_id: str, rsync_url: str, http_url: str) -> None:
    db.execute("UPDATE hub_mirrors SET rsync_url = ?, http_url = ? WHERE node_id = ?", (rsync_url, http_url, node_id))


def suspend_mirror(db: sqlite3.Connection, node_id: str, why: str, at: float) -> None:
    db.execute("UPDATE hub_mirrors SET suspended_at = ?, suspended_why = ? WHERE node_id = ? "
               "AND suspended_at IS NULL", (at, why, node_id))


def mirrors(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every mirror with its node's name, township and revocation."""
    return db.execute("SELECT m.*, n.name, n.township, n.revoked_at FROM hub_mirrors m "
                      "JOIN hub_nodes n USING (node_id) ORDER BY n.township, n.name, m.node_id").fetchall()


def is_mirror(db: sqlite3.Connection, node_id: str) -> bool:
    return db.execute("SELECT 1 FROM hub_mirrors WHERE node_id = ?", (node_id,)).fetchone() is not None


def active_nodes(db: sqlite3.Connection) -> list[sqlite3.Row]:
    return db.execute("SELECT node_id, name, township, kind FROM hub_nodes WHERE revoked_at IS NULL "
                      "ORDER BY township, name, node_id").fetchall()


def upsert_traffic(db: sqlite3.Connection, rows: list[tuple]) -> None:
    """(node_id, month, source, channel, rx, tx) rows; a counter never goes back within its month."""
    db.executemany("INSERT INTO hub_traffic (node_id, month, source, channel, rx, tx) VALUES (?, ?, ?, ?, ?, ?) "
                   "ON CONFLICT (node_id, month, source, channel) DO UPDATE SET rx = max(rx, excluded.rx), "
                   "tx = max(tx, excluded.tx)", rows)


def traffic_by_month(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """(month, channel, source, rx, tx, nodes) summed over the fleet."""
    return db.execute("SELECT month, channel, source, sum(rx) AS rx, sum(tx) AS tx, count(DISTINCT node_id) AS nodes "
                      "FROM hub_traffic GROUP BY month, channel, source ORDER BY month DESC, channel, source").fetchall()


def add_report(db: sqlite3.Connection, at: float, reporter: str, mirror: str, code: str, detail: str) -> None:
    db.execute("INSERT INTO hub_mirror_reports (at, reporter, mirror, code, detail) VALUES (?, ?, ?, ?, ?)",
               (at, reporter, mirror, code, detail))


def reports(db: sqlite3.Connection, limit: int = 100) -> list[sqlite3.Row]:
    return db.execute("SELECT * FROM hub_mirror_reports ORDER BY id DESC LIMIT ?", (limit,)).fetchall()


def publications_with_time(db: sqlite3.Connection) -> list[sqlite3.Row]:
    return db.execute("SELECT channel, seq, bundle_dir, published_at FROM hub_publications "
                      "ORDER BY channel, seq").fetchall()


def set_swarm_endpoint(db: sqlite3.Connection, node_id: str, endpoint: str, at: float) -> None:
    db.execute("INSERT INTO hub_swarm (node_id, endpoint, seen_at) VALUES (?, ?, ?) ON CONFLICT (node_id) "
               "DO UPDATE SET endpoint = excluded.endpoint, seen_at = excluded.seen_at", (node_id, endpoint, at))


def swarm_endpoints(db: sqlite3.Connection, since: float) -> list[sqlite3.Row]:
    """(node_id, endpoint) of unrevoked nodes heard from since ``since``, by node id."""
    return db.execute("SELECT s.node_id, s.endpoint FROM hub_swarm s JOIN hub_nodes n USING (node_id) "
                      "WHERE n.revoked_at IS NULL AND s.seen_at >= ? ORDER BY s.node_id", (since,)).fetchall()
