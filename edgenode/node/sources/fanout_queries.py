"""SQL of the fan-out (byte counters, upstream list, bans, mirror clients), connection first."""

from __future__ import annotations

import sqlite3


def add_bytes(conn: sqlite3.Connection, month: str, source: str, channel: str, direction: str, n: int) -> None:
    conn.execute("INSERT INTO sources_traffic (month, source, channel, direction, bytes) VALUES (?, ?, ?, ?, ?) "
                 "ON CONFLICT (month, source, channel, direction) DO UPDATE SET bytes = bytes + excluded.bytes",
                 (month, source, channel, direction, int(n)))


def traffic_since(conn: sqlite3.Connection, month: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT month, source, channel, direction, bytes FROM sources_traffic WHERE month >= ? "
                        "ORDER BY month, source, channel, direction", (month,)).fetchall()


def replace_upstreams(conn: sqlite3.Connection, rows: list[dict], now: float) -> None:
    conn.execute("DELETE FROM sources_upstreams")
    conn.executemany("INSERT INTO sources_upstreams (pos, kind, node_id, rsync_url, http_url, username, password, "
                     "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     [(i, r["kind"], r.get("node_id") or "", r["rsync_url"], r.get("http_url") or "",
                       r.get("username") or "", r.get("password") or "", now) for i, r in enumerate(rows)])


def upstreams(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM sources_upstreams ORDER BY pos").fetchall()


def ban(conn: sqlite3.Connection, node_id: str, code: str, detail: str, now: float) -> None:
    conn.execute("INSERT OR IGNORE INTO sources_bans (node_id, code, detail, at) VALUES (?, ?, ?, ?)",
                 (node_id, code, detail, now))


def banned(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT node_id FROM sources_bans")}


def unreported_bans(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT node_id, code, detail, at FROM sources_bans WHERE reported_at IS NULL").fetchall()


def mark_reported(conn: sqlite3.Connection, node_ids: list[str], now: float) -> None:
    conn.executemany("UPDATE sources_bans SET reported_at = ? WHERE node_id = ?", [(now, n) for n in node_ids])


def replace_mirror_clients(conn: sqlite3.Connection, clients: list[tuple[str, str]], now: float) -> None:
    conn.execute("DELETE FROM sources_mirror_clients")
    conn.executemany("INSERT INTO sources_mirror_clients (node_id, password, updated_at) VALUES (?, ?, ?)",
                     [(n, p, now) for n, p in clients])


def mirror_clients(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT node_id, password FROM sources_mirror_clients ORDER BY node_id").fetchall()


def replace_published(conn: sqlite3.Connection, latest: dict[str, int]) -> None:
    conn.execute("DELETE FROM sources_published")
    conn.executemany("INSERT INTO sources_published (channel, seq) VALUES (?, ?)", list(latest.items()))


def published(conn: sqlite3.Connection) -> dict[str, int]:
    return {r[0]: r[1] for r in conn.execute("SELECT channel, seq FROM sources_published")}


def accepted_seq(conn: sqlite3.Connection, channel: str) -> int:
    row = conn.execute("SELECT seq FROM channel_state WHERE channel = ?", (channel,)).fetchone()
    return row[0] if row else 0


def replace_swarm_peers(conn: sqlite3.Connection, endpoints: list[str], rank: int) -> None:
    conn.execute("DELETE FROM sources_swarm_peers")
    conn.executemany("INSERT OR IGNORE INTO sources_swarm_peers (endpoint, rank) VALUES (?, ?)",
                     [(e, rank) for e in endpoints])


def swarm_peers(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT endpoint, rank FROM sources_swarm_peers ORDER BY endpoint").fetchall()
