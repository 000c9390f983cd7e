"""Series (系列/专辑) and subtitles SQL, as functions that take the connection first.

A series is a row of ``series``; its episodes are resources with ``series_num``,
ordered by season then episode.  Listings show a series once: its newest
visible episode stands for it (:func:`browse_grouped`), and the card says how
many episodes the latest import brought ("新增 16 集").
"""

from __future__ import annotations

import sqlite3
import time

from edgenode.node.catalog import search as fts

# The newest visible episode of a resource's series stands for the whole series in listings.
_REPRESENTS = """(r.series_num IS NULL OR r.num = (
    SELECT r2.num FROM resources r2 WHERE r2.series_num = r.series_num AND r2.visible = 1
    ORDER BY r2.added_at DESC, r2.num DESC LIMIT 1))"""


def upsert_series(conn: sqlite3.Connection, meta: dict, *, channel: str | None, source: str) -> int:
    """Insert or update a series (``meta``: id, title, description, column, tags); returns its num."""
    now = time.time()
    row = conn.execute("SELECT num FROM series WHERE id = ?", (meta["id"],)).fetchone()
    values = (meta["title"], meta.get("description", ""), meta["column"], " ".join(meta.get("tags") or ()),
              channel, source)
    if row:
        conn.execute("UPDATE series SET title = ?, description = ?, column_key = ?, tags = ?, channel = ?, "
                     "source = ?, updated_at = ? WHERE num = ?", (*values, now, row[0]))
        return row[0]
    return conn.execute("INSERT INTO series (id, title, description, column_key, tags, channel, source, added_at, "
                        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (meta["id"], *values, now, now)).lastrowid


def series_channel(conn: sqlite3.Connection, series_id: str) -> str | None | bool:
    """The channel owning a series id; False when the id is unknown."""
    row = conn.execute("SELECT channel FROM series WHERE id = ?", (series_id,)).fetchone()
    return False if row is None else row[0]


def reindex_episodes(conn: sqlite3.Connection, series_num: int) -> None:
    """A renamed series: its episodes' search rows carry the series title."""
    fts.sync_index(conn, [r[0] for r in conn.execute("SELECT num FROM resources WHERE series_num = ?",
                                                     (series_num,))])


def get_series(conn: sqlite3.Connection, series_id: str) -> dict | None:
    row = conn.execute("SELECT * FROM series WHERE id = ?", (series_id,)).fetchone()
    return dict(row) if row else None


def episodes(conn: sqlite3.Connection, series_num: int) -> list[dict]:
    """Visible episodes in order: season, then episode."""
    return [dict(r) for r in conn.execute(
        "SELECT * FROM resources WHERE series_num = ? AND visible = 1 "
        "ORDER BY coalesce(season, 1), episode, num", (series_num,))]


def neighbours(conn: sqlite3.Connection, res: dict) -> tuple[dict | None, dict | None]:
    """(previous, next) visible episodes of an episode, across seasons."""
    if not res.get("series_num"):
        return None, None
    key = (res.get("season") or 1, res["episode"], res["num"])
    order = "coalesce(season, 1) {0}, episode {0}, num {0}"
    cond = "series_num = ? AND visible = 1 AND (coalesce(season, 1), episode, num) {} (?, ?, ?)"
    prev = conn.execute(f"SELECT * FROM resources WHERE {cond.format('<')} ORDER BY {order.format('DESC')} LIMIT 1",
                        (res["series_num"], *key)).fetchone()
    nxt = conn.execute(f"SELECT * FROM resources WHERE {cond.format('>')} ORDER BY {order.format('')} LIMIT 1",
                       (res["series_num"], *key)).fetchone()
    return (dict(prev) if prev else None), (dict(nxt) if nxt else None)


def browse_grouped(conn: sqlite3.Connection, *, column: str | None = None, page: int = 1,
                   page_size: int = 20) -> fts.SearchResult:
    """Visible resources, newest first, each series once (its newest episode stands for it)."""
    where, params = "r.visible = 1", []
    if column:
        where += " AND r.column_key = ?"
        params.append(column)
    where += " AND " + _REPRESENTS
    total = conn.execute(f"SELECT count(*) FROM resources r WHERE {where}", params).fetchone()[0]
    page = max(1, page)
    rows = conn.execute(f"SELECT r.* FROM resources r WHERE {where} ORDER BY r.added_at DESC, r.num DESC "
                        "LIMIT ? OFFSET ?", (*params, page_size, (page - 1) * page_size)).fetchall()
    items = [dict(r) for r in rows]
    attach_series(conn, items)
    return fts.SearchResult(total, items, page, page_size)


def attach_series(conn: sqlite3.Connection, items: list[dict]) -> None:
    """Give each episode among ``items`` a ``series`` dict: id, title, episode count, count of the latest import,
    total duration and the first episode's poster (the series' picture)."""
    nums = sorted({r["series_num"] for r in items if r.get("series_num")})
    if not nums:
        return
    marks = ",".join("?" * len(nums))
    info = {r["num"]: dict(r) for r in conn.execute(f"""
        SELECT s.num, s.id, s.title, s.description,
               (SELECT count(*) FROM resources e WHERE e.series_num = s.num AND e.visible = 1) AS episodes,
               (SELECT count(*) FROM resources e WHERE e.series_num = s.num AND e.visible = 1 AND e.source = (
                    SELECT e2.source FROM resources e2 WHERE e2.series_num = s.num AND e2.visible = 1
                    ORDER BY e2.added_at DESC, e2.num DESC LIMIT 1)) AS latest,
               (SELECT coalesce(sum(e.duration), 0) FROM resources e WHERE e.series_num = s.num AND e.visible = 1)
                   AS duration,
               (SELECT e.poster_sha256 FROM resources e WHERE e.series_num = s.num AND e.visible = 1
                ORDER BY coalesce(e.season, 1), e.episode LIMIT 1) AS poster
        FROM series s WHERE s.num IN ({marks})""", nums)}
    for r in items:
        if r.get("series_num") in info:
            r["series"] = info[r["series_num"]]


def once_per_series(conn: sqlite3.Connection, items: list[dict]) -> list[dict]:
    """``items`` in their order with each series kept once (its first episode there), shown as the series."""
    seen, out = set(), []
    for r in items:
        if r.get("series_num"):
            if r["series_num"] in seen:
                continue
            seen.add(r["series_num"])
        out.append(r)
    attach_series(conn, out)
    return out


def find_series(conn: sqlite3.Connection, query: str, limit: int = 4) -> list[dict]:
    """Series whose title or tags contain the query (few rows: a series stands for many episodes)."""
    like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    # From the series (a few hundred rows) to each one's newest visible episode: joined the other
    # way round, SQLite walked every visible resource newest first (43 ms at 100,000 resources).
    # CROSS JOIN keeps that order (SQLite never reorders it).
    rows = conn.execute("""SELECT r.* FROM series s CROSS JOIN resources r ON r.num = (
            SELECT r2.num FROM resources r2 WHERE r2.series_num = s.num AND r2.visible = 1
            ORDER BY r2.added_at DESC, r2.num DESC LIMIT 1)
        WHERE s.title LIKE :q ESCAPE '\\' OR s.tags LIKE :q ESCAPE '\\'
        ORDER BY r.added_at DESC LIMIT :lim""", {"q": like, "lim": limit}).fetchall()
    items = [dict(r) for r in rows]
    attach_series(conn, items)
    return items


def subtitles_of(conn: sqlite3.Connection, num: int) -> list[dict]:
    return [dict(r) for r in conn.execute("SELECT language, label, sha256, is_default FROM resource_subtitles "
                                          "WHERE resource_num = ? ORDER BY is_default DESC, language", (num,))]
