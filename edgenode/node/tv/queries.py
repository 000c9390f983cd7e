"""TV mode SQL, as functions that take the connection first; writers run inside the caller's transaction."""

from __future__ import annotations

import sqlite3
import time


def put_playlist(conn: sqlite3.Connection, pid: str, title: str, items: list[str], source: str) -> None:
    conn.execute("INSERT INTO tv_playlists (id, title, source, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) "
                 "DO UPDATE SET title = excluded.title, source = excluded.source, updated_at = excluded.updated_at",
                 (pid, title, source, time.time()))
    conn.execute("DELETE FROM tv_playlist_items WHERE playlist_id = ?", (pid,))
    conn.executemany("INSERT INTO tv_playlist_items (playlist_id, pos, resource_id) VALUES (?, ?, ?)",
                     [(pid, i, rid) for i, rid in enumerate(items)])


def playlist_source(conn: sqlite3.Connection, pid: str) -> str | None:
    row = conn.execute("SELECT source FROM tv_playlists WHERE id = ?", (pid,)).fetchone()
    return row[0] if row else None


def delete_playlist(conn: sqlite3.Connection, pid: str) -> int:
    return conn.execute("DELETE FROM tv_playlists WHERE id = ?", (pid,)).rowcount


def clear_source(conn: sqlite3.Connection, source: str) -> None:
    """Everything one source set (a county channel's new bundle replaces its schedule whole)."""
    conn.execute("DELETE FROM tv_slots WHERE source = ?", (source,))
    conn.execute("DELETE FROM tv_loop WHERE source = ?", (source,))
    conn.execute("DELETE FROM tv_playlists WHERE source = ?", (source,))


def add_slot(conn: sqlite3.Connection, start: str, end: str, pid: str, days: str, source: str) -> int:
    return conn.execute("INSERT INTO tv_slots (start, end, playlist_id, days, source) VALUES (?, ?, ?, ?, ?)",
                        (start, end, pid, days, source)).lastrowid


def delete_slot(conn: sqlite3.Connection, num: int) -> int:
    return conn.execute("DELETE FROM tv_slots WHERE num = ? AND source = 'local'", (num,)).rowcount


def set_loop(conn: sqlite3.Connection, source: str, pid: str | None) -> None:
    conn.execute("DELETE FROM tv_loop WHERE source = ?", (source,))
    if pid:
        conn.execute("INSERT INTO tv_loop (source, playlist_id) VALUES (?, ?)", (source, pid))


def slots(conn: sqlite3.Connection) -> list[dict]:
    return [dict(r) for r in conn.execute("SELECT s.*, p.title FROM tv_slots s JOIN tv_playlists p "
                                          "ON p.id = s.playlist_id ORDER BY s.source != 'local', s.start, s.num")]


def loops(conn: sqlite3.Connection) -> dict[str, str]:
    return {r[0]: r[1] for r in conn.execute("SELECT source, playlist_id FROM tv_loop")}


def playlists(conn: sqlite3.Connection) -> list[dict]:
    rows = [dict(r) for r in conn.execute("SELECT * FROM tv_playlists ORDER BY source != 'local', id")]
    for p in rows:
        p["items"] = [r[0] for r in conn.execute("SELECT resource_id FROM tv_playlist_items WHERE playlist_id = ? "
                                                 "ORDER BY pos", (p["id"],))]
    return rows


def playlist_title(conn: sqlite3.Connection, pid: str) -> str | None:
    row = conn.execute("SELECT title FROM tv_playlists WHERE id = ?", (pid,)).fetchone()
    return row[0] if row else None


def playable_items(conn: sqlite3.Connection, pid: str) -> list[dict]:
    """The playlist's visible, browser-playable videos and audio, in order."""
    return [dict(r) for r in conn.execute("""
        SELECT r.* FROM tv_playlist_items i JOIN resources r ON r.id = i.resource_id
        WHERE i.playlist_id = ? AND r.visible = 1 AND r.playable = 1 AND r.kind IN ('video', 'audio')
        ORDER BY i.pos""", (pid,))]


def newest_playable(conn: sqlite3.Connection, limit: int = 20) -> list[dict]:
    return [dict(r) for r in conn.execute("""SELECT * FROM resources WHERE visible = 1 AND playable = 1
        AND kind IN ('video', 'audio') ORDER BY added_at DESC, num DESC LIMIT ?""", (limit,))]
