"""Search SQL: the two FTS5 index tables and the tiered lookups over them.

:mod:`edgenode.node.catalog.search` decides what a query means (terms, routes, MATCH
expressions); these functions only run it.  Functions take the connection first.
"""

from __future__ import annotations

import sqlite3


def insert_index_rows(conn: sqlite3.Connection, num: int, tri: tuple, gram: tuple) -> None:
    conn.execute("INSERT INTO search_tri (rowid, title, tags, pinyin, description, facets) VALUES (?, ?, ?, ?, ?, ?)",
                 (num, *tri))
    conn.execute("INSERT INTO search_gram (rowid, title, tags, pinyin, description, facets) "
                 "VALUES (?, ?, ?, ?, ?, ?)", (num, *gram))


def unindex_resource(conn: sqlite3.Connection, num: int) -> None:
    conn.execute("DELETE FROM search_tri WHERE rowid = ?", (num,))
    conn.execute("DELETE FROM search_gram WHERE rowid = ?", (num,))


def nums_out_of_step(conn: sqlite3.Connection) -> list[int]:
    """Resources indexed though hidden, or visible but not indexed.

    ``search_gram`` stands for both tables: they are always written together.
    """
    rows = conn.execute("SELECT num, visible, EXISTS (SELECT 1 FROM search_gram WHERE rowid = num) AS indexed "
                        "FROM resources").fetchall()
    return [r["num"] for r in rows if bool(r["visible"]) != bool(r["indexed"])]


def index_source(conn: sqlite3.Connection, num: int) -> sqlite3.Row | None:
    """What a resource's index rows are made of, with its visibility."""
    return conn.execute("SELECT title, description, column_key, kind, visible FROM resources WHERE num = ?",
                        (num,)).fetchone()


def index_tags(conn: sqlite3.Connection, num: int) -> list[str]:
    # Unordered on purpose, as the index has always been built: the trigram tags column is one
    # string, so a different order could change which substrings span two tags.
    return [r[0] for r in conn.execute("SELECT tag FROM resource_tags WHERE resource_num = ?", (num,))]


def series_words(conn: sqlite3.Connection, num: int) -> list[str]:
    """The title of the series a resource belongs to (none for a standalone resource)."""
    return [r[0] for r in conn.execute("SELECT s.title FROM resources r JOIN series s ON s.num = r.series_num "
                                       "WHERE r.num = ?", (num,))]


def tier_sql(parts: list[tuple[str, str]]) -> tuple[str, list[str]]:
    """Rowids matching every (table, MATCH expression) part."""
    sql = " INTERSECT ".join(f"SELECT rowid AS num FROM {t} WHERE {t} MATCH ?" for t, _ in parts)
    return sql, [e for _, e in parts]


def tier_difference(wide: tuple[str, list], narrow: tuple[str, list]) -> tuple[str, list]:
    """Rowids of the ``wide`` tier that the ``narrow`` one lacks (both from :func:`tier_sql`)."""
    return f"{wide[0]} EXCEPT {narrow[0]}", wide[1] + narrow[1]


def count_tier(conn: sqlite3.Connection, sql: str, params: list) -> int:
    return conn.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]


def tier_page(conn: sqlite3.Connection, sql: str, params: list, limit: int, offset: int) -> list[int]:
    """Newest first: rowid order lets FTS5 stop at the LIMIT instead of scoring every match."""
    return [r[0] for r in conn.execute(f"{sql} ORDER BY num DESC LIMIT ? OFFSET ?", (*params, limit, offset))]


def resources_by_num(conn: sqlite3.Connection, nums: list[int]) -> dict[int, dict]:
    marks = ",".join("?" * len(nums))
    return {r["num"]: dict(r) for r in conn.execute(f"SELECT * FROM resources WHERE num IN ({marks})", nums)}
