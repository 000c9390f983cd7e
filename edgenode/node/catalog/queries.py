"""Catalogue SQL, as functions that take the connection first.

Writers expect to run inside :func:`edgenode.core.db.transaction`, so a caller can
apply many changes (a whole bundle) atomically.
"""

from __future__ import annotations

import sqlite3
import time

from edgenode.node.catalog import search as fts
from edgenode.node.catalog import search_queries as sq
from edgenode.protocol.metadata import COLUMNS
from edgenode.core.errors import NotFound
from edgenode.core import registry

RESOURCE_FIELDS = ("id", "title", "description", "column_key", "kind", "sha256", "size", "mime", "ext", "duration",
                   "width", "height", "codecs", "playable", "poster_sha256", "language", "source", "channel", "series_num",
                   "season", "episode")


def upsert_resource(conn: sqlite3.Connection, res: dict, tags: list[str], subtitles=()) -> int:
    """Insert or update one resource with its tags, blobs, subtitles and search rows; returns its num.

    ``subtitles``: (language, label, sha256 of the sanitised WebVTT, default) for each track.

    The resource's visibility is recomputed from the blobs table, so a caller
    must record blobs (:func:`record_blob`) before or in the same transaction.
    """
    now = time.time()
    values = {k: res.get(k) for k in RESOURCE_FIELDS}
    values.setdefault("codecs", "")
    values["codecs"] = values["codecs"] or ""
    values["ext"] = values["ext"] or ""
    values["language"] = values["language"] or "zh"
    values["playable"] = 1 if values["playable"] in (None, True, 1) else 0
    row = conn.execute("SELECT num FROM resources WHERE id = ?", (values["id"],)).fetchone()
    if row:
        num = row[0]
        sets = ", ".join(f"{k} = :{k}" for k in values if k != "id")
        conn.execute(f"UPDATE resources SET {sets}, updated_at = :now, withdrawn_at = NULL WHERE num = :num",
                     {**values, "now": now, "num": num})
    else:
        cols = ", ".join(values)
        marks = ", ".join(f":{k}" for k in values)
        num = conn.execute(f"INSERT INTO resources ({cols}, added_at, updated_at) VALUES ({marks}, :added, :now)",
                           {**values, "added": res.get("added_at") or now, "now": now}).lastrowid
    conn.execute("DELETE FROM resource_tags WHERE resource_num = ?", (num,))
    conn.executemany("INSERT INTO resource_tags (resource_num, tag) VALUES (?, ?)", [(num, t) for t in tags])
    conn.execute("DELETE FROM resource_blobs WHERE resource_num = ?", (num,))
    conn.execute("INSERT INTO resource_blobs (resource_num, sha256, role) VALUES (?, ?, 'main')",
                 (num, values["sha256"]))
    if values["poster_sha256"]:
        conn.execute("INSERT INTO resource_blobs (resource_num, sha256, role) VALUES (?, ?, 'poster')",
                     (num, values["poster_sha256"]))
    conn.execute("DELETE FROM resource_subtitles WHERE resource_num = ?", (num,))
    for lang, label, sha, default in subtitles:
        conn.execute("INSERT INTO resource_blobs (resource_num, sha256, role) VALUES (?, ?, ?)", (num, sha, f"sub:{lang}"))
        conn.execute("INSERT INTO resource_subtitles (resource_num, language, label, sha256, is_default) "
                     "VALUES (?, ?, ?, ?, ?)", (num, lang, label, sha, int(bool(default))))
    refresh_visibility(conn, [num])  # also (re-)indexes it for search when visible
    return num


def record_blob(conn: sqlite3.Connection, sha256: str, size: int, state: str = "ok") -> None:
    conn.execute("INSERT INTO blobs (sha256, size, state, checked_at) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT (sha256) DO UPDATE SET size = excluded.size, state = excluded.state, "
                 "checked_at = excluded.checked_at", (sha256, size, state, time.time()))


# Hook point: SQL conditions on ``resources`` under which a resource stays listed although its blobs
# are not in the store (storage: evicted files stay listed as 可预约下载).
LISTED_HOOK = "catalog.listed_on_request"


def _listed_without_blobs() -> str:
    return " OR ".join(f"({c})" for c in registry.hooks(LISTED_HOOK)) or "0"


def refresh_visibility(conn: sqlite3.Connection, nums: list[int] | None = None) -> None:
    """A resource is visible only when it is not withdrawn and every blob it needs is verified ok.

    The search index follows: it holds exactly the visible resources.
    """
    sql = f"""UPDATE resources SET visible = (
                withdrawn_at IS NULL AND (NOT EXISTS (
                    SELECT 1 FROM resource_blobs rb LEFT JOIN blobs b ON b.sha256 = rb.sha256
                    WHERE rb.resource_num = resources.num AND (b.state IS NULL OR b.state != 'ok'))
                OR {_listed_without_blobs()}))"""
    if nums is None:
        conn.execute(sql)
    else:
        conn.executemany(sql + " WHERE num = ?", [(n,) for n in nums])
    fts.sync_index(conn, nums)


def withdraw(conn: sqlite3.Connection, resource_id: str) -> bool:
    """Hide a resource and release its blobs to gc; it stays findable by id for history."""
    row = conn.execute("SELECT num FROM resources WHERE id = ?", (resource_id,)).fetchone()
    if not row:
        return False
    conn.execute("UPDATE resources SET withdrawn_at = ?, visible = 0 WHERE num = ?", (time.time(), row[0]))
    conn.execute("DELETE FROM resource_blobs WHERE resource_num = ?", (row[0],))
    sq.unindex_resource(conn, row[0])
    return True


def delete(conn: sqlite3.Connection, resource_id: str) -> bool:
    row = conn.execute("SELECT num FROM resources WHERE id = ?", (resource_id,)).fetchone()
    if not row:
        return False
    sq.unindex_resource(conn, row[0])
    conn.execute("DELETE FROM resources WHERE num = ?", (row[0],))
    return True


def referenced_hashes(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT DISTINCT sha256 FROM resource_blobs")}


def ok_hashes(conn: sqlite3.Connection) -> set[str]:
    """Blobs recorded as present and verified."""
    return {r[0] for r in conn.execute("SELECT sha256 FROM blobs WHERE state = 'ok'")}


def forget_unreferenced_blobs(conn: sqlite3.Connection, removed: list[str]) -> None:
    conn.executemany("DELETE FROM blobs WHERE sha256 = ?", [(s,) for s in removed])


def record_verify(conn: sqlite3.Connection, result: dict) -> None:
    """Store a verify run: mark bad/missing blobs and hide the resources that need them."""
    now = time.time()
    for state in ("bad", "missing"):
        conn.executemany("UPDATE blobs SET state = ?, checked_at = ? WHERE sha256 = ?",
                         [(state, now, s) for s in result[state]])
    conn.execute("INSERT INTO store_checks (at, checked, bad, missing) VALUES (?, ?, ?, ?)",
                 (now, result["checked"], len(result["bad"]), len(result["missing"])))
    refresh_visibility(conn)


def last_verify(conn: sqlite3.Connection) -> dict | None:
    row = conn.execute("SELECT * FROM store_checks ORDER BY id DESC LIMIT 1").fetchone()
    return dict(row) if row else None


def get(conn: sqlite3.Connection, resource_id: str, *, include_hidden: bool = False) -> dict:
    row = conn.execute("SELECT * FROM resources WHERE id = ?" + ("" if include_hidden else " AND visible = 1"),
                       (resource_id,)).fetchone()
    if not row:
        raise NotFound(f"no resource {resource_id!r}", zh="没有找到这个资源")
    res = dict(row)
    res["tags"] = tags_of(conn, res["num"])
    return res


def channel_and_withdrawal(conn: sqlite3.Connection, resource_id: str) -> sqlite3.Row | None:
    """(channel, withdrawn_at) of a resource, visible or not; None when the id is unknown.

    A row, not a bare channel: locally added resources have no channel, and that must not
    read as "no such resource".
    """
    return conn.execute("SELECT channel, withdrawn_at FROM resources WHERE id = ?", (resource_id,)).fetchone()


def is_visible(conn: sqlite3.Connection, resource_id: str) -> bool:
    row = conn.execute("SELECT visible FROM resources WHERE id = ?", (resource_id,)).fetchone()
    return bool(row and row[0])


def blob_servable(conn: sqlite3.Connection, sha256: str) -> bool:
    """Whether some visible resource uses the blob (main file or poster), so the portal may serve it."""
    row = conn.execute(
        "SELECT 1 FROM resource_blobs rb JOIN resources r ON r.num = rb.resource_num "
        "WHERE rb.sha256 = ? AND r.visible = 1 LIMIT 1", (sha256,)).fetchone()
    return row is not None


def get_by_num(conn: sqlite3.Connection, num: int) -> dict | None:
    row = conn.execute("SELECT * FROM resources WHERE num = ?", (num,)).fetchone()
    return dict(row) if row else None


def tags_of(conn: sqlite3.Connection, num: int) -> list[str]:
    return [r[0] for r in conn.execute("SELECT tag FROM resource_tags WHERE resource_num = ? ORDER BY tag", (num,))]


def browse(conn: sqlite3.Connection, *, column: str | None = None, kind: str | None = None, tag: str | None = None,
           page: int = 1, page_size: int = 20) -> fts.SearchResult:
    """Visible resources, newest first, with the same filters as search."""
    where, params = _filters(column, kind, tag)
    total = conn.execute(f"SELECT count(*) FROM resources r WHERE {where}", params).fetchone()[0]
    page = max(1, page)
    rows = conn.execute(f"SELECT r.* FROM resources r WHERE {where} ORDER BY r.added_at DESC, r.num DESC "
                        "LIMIT ? OFFSET ?", (*params, page_size, (page - 1) * page_size)).fetchall()
    return fts.SearchResult(total, [dict(r) for r in rows], page, page_size)


def _filters(column, kind, tag) -> tuple[str, list]:
    clauses, params = ["r.visible = 1"], []
    if column:
        clauses.append("r.column_key = ?")
        params.append(column)
    if kind:
        clauses.append("r.kind = ?")
        params.append(kind)
    if tag:
        clauses.append("EXISTS (SELECT 1 FROM resource_tags rt WHERE rt.resource_num = r.num AND rt.tag = ?)")
        params.append(tag)
    return " AND ".join(clauses), params


def related(conn: sqlite3.Connection, res: dict, limit: int = 6) -> list[dict]:
    """Same column, sharing tags first, then newest."""
    rows = conn.execute("""
        SELECT r.*, (SELECT count(*) FROM resource_tags a JOIN resource_tags b ON a.tag = b.tag
                     WHERE a.resource_num = r.num AND b.resource_num = :num) AS shared
        FROM resources r
        WHERE r.visible = 1 AND r.num != :num AND r.column_key = :col
        ORDER BY shared DESC, r.added_at DESC LIMIT :lim""",
                        {"num": res["num"], "col": res["column_key"], "lim": limit}).fetchall()
    return [dict(r) for r in rows]


def column_counts(conn: sqlite3.Connection) -> dict[str, int]:
    counts = dict.fromkeys(COLUMNS, 0)
    for key, n in conn.execute("SELECT column_key, count(*) FROM resources WHERE visible = 1 GROUP BY column_key"):
        counts[key] = n
    return counts


def all_tags(conn: sqlite3.Connection, limit: int = 50) -> list[tuple[str, int]]:
    return [tuple(r) for r in conn.execute("""
        SELECT t.tag, count(*) AS n FROM resource_tags t JOIN resources r ON r.num = t.resource_num
        WHERE r.visible = 1 GROUP BY t.tag ORDER BY n DESC, t.tag LIMIT ?""", (limit,))]


def totals(conn: sqlite3.Connection) -> dict:
    row = conn.execute("SELECT count(*) AS resources, coalesce(sum(size), 0) AS bytes, "
                       "coalesce(sum(visible), 0) AS visible FROM resources WHERE withdrawn_at IS NULL").fetchone()
    return dict(row)


def fingerprint(conn: sqlite3.Connection) -> int:
    """Changes whenever what the portal shows changes (add, update, withdraw, delete, visibility).

    Lets the portal cache rendered pages and drop them the moment the catalogue moves.  Series
    count too.  One row kept by triggers (schema migration 5): every page view reads it.
    """
    return conn.execute("SELECT n FROM catalog_version").fetchone()[0]


def delete_blob(conn: sqlite3.Connection, sha256: str) -> None:
    conn.execute("DELETE FROM blobs WHERE sha256 = ?", (sha256,))


def delete_blob_if_unreferenced(conn: sqlite3.Connection, sha256: str) -> None:
    conn.execute("DELETE FROM blobs WHERE sha256 = ? AND NOT EXISTS "
                 "(SELECT 1 FROM resource_blobs WHERE sha256 = ?)", (sha256, sha256))


def drop_original_blob(conn: sqlite3.Connection, num: int) -> None:
    """Forget the original kept beside a resource's transcode (the blob row is the caller's)."""
    conn.execute("DELETE FROM resource_blobs WHERE resource_num = ? AND role = 'original'", (num,))


def keep_original_blob(conn: sqlite3.Connection, num: int, sha256: str) -> None:
    conn.execute("INSERT OR REPLACE INTO resource_blobs (resource_num, sha256, role) VALUES (?, ?, 'original')",
                 (num, sha256))


def set_main_blob(conn: sqlite3.Connection, num: int, sha256: str) -> None:
    conn.execute("UPDATE resource_blobs SET sha256 = ? WHERE resource_num = ? AND role = 'main'", (sha256, num))


def switch_file(conn: sqlite3.Connection, num: int, sha256: str, size: int, mime: str, ext: str, codecs: str,
                duration: float | None, width: int | None, height: int | None, now: float) -> None:
    """Point a resource at a new, playable file; probe facts it lacks keep their old values."""
    conn.execute("""UPDATE resources SET sha256 = ?, size = ?, mime = ?, ext = ?, codecs = ?, playable = 1,
        duration = coalesce(?, duration), width = coalesce(?, width), height = coalesce(?, height),
        updated_at = ? WHERE num = ?""",
                 (sha256, size, mime, ext, codecs, duration, width, height, now, num))
