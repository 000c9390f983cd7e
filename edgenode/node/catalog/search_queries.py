"""Search SQL: the word index table and the lookups over it.

:mod:`edgenode.node.catalog.search` decides what a query means (words, tiers, MATCH
expressions); these functions only run it.  Functions take the connection first.
"""

from __future__ import annotations

import sqlite3

_COLUMNS = "tw, tg, py, pyrun, ini, inirun, lead, leadini, dg, facets"


def insert_index_row(conn: sqlite3.Connection, num: int, row: tuple) -> None:
    conn.execute(f"INSERT INTO search_words (rowid, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (num, *row))


def insert_index_rows(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """Many (num, *columns) rows at once (the benchmark's bulk build)."""
    conn.executemany(f"INSERT INTO search_words (rowid, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     rows)


def optimize(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO search_words (search_words) VALUES ('optimize')")


def unindex_resource(conn: sqlite3.Connection, num: int) -> None:
    conn.execute("DELETE FROM search_words WHERE rowid = ?", (num,))


def nums_out_of_step(conn: sqlite3.Connection) -> list[int]:
    """Resources indexed though hidden, or visible but not indexed."""
    rows = conn.execute("SELECT num, visible, EXISTS (SELECT 1 FROM search_words WHERE rowid = num) AS indexed "
                        "FROM resources").fetchall()
    return [r["num"] for r in rows if bool(r["visible"]) != bool(r["indexed"])]


def index_source(conn: sqlite3.Connection, num: int) -> sqlite3.Row | None:
    """What a resource's index row is made of, with its visibility."""
    return conn.execute("SELECT title, description, column_key, kind, visible FROM resources WHERE num = ?",
                        (num,)).fetchone()


def index_tags(conn: sqlite3.Connection, num: int) -> list[str]:
    return [r[0] for r in conn.execute("SELECT tag FROM resource_tags WHERE resource_num = ? ORDER BY tag", (num,))]


def series_words(conn: sqlite3.Connection, num: int) -> list[str]:
    """The title of the series a resource belongs to (none for a standalone resource)."""
    return [r[0] for r in conn.execute("SELECT s.title FROM resources r JOIN series s ON s.num = r.series_num "
                                       "WHERE r.num = ?", (num,))]


def count_matches(conn: sqlite3.Connection, expr: str) -> int:
    return conn.execute("SELECT count(*) FROM search_words WHERE search_words MATCH ?", (expr,)).fetchone()[0]


def match_page(conn: sqlite3.Connection, expr: str, limit: int, offset: int) -> list[int]:
    """Newest first: rowid order lets FTS5 stop at the LIMIT instead of scoring every match."""
    return [r[0] for r in conn.execute("SELECT rowid FROM search_words WHERE search_words MATCH ? "
                                       "ORDER BY rowid DESC LIMIT ? OFFSET ?", (expr, limit, offset))]


def resources_by_num(conn: sqlite3.Connection, nums: list[int]) -> dict[int, dict]:
    marks = ",".join("?" * len(nums))
    return {r["num"]: dict(r) for r in conn.execute(f"SELECT * FROM resources WHERE num IN ({marks})", nums)}
