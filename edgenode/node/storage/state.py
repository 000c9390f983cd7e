"""Per-resource storage state: pins, 可预约下载 (file away), and noticing a file come back.

A resource is *on request* while ``storage_state.state`` is ``evicted`` or
``metadata`` and its main blob is not recorded as ok.  The state is derived
from the blobs table on purpose: when an import brings the blob back
(``record_blob``), the portal plays it again at once, before
:func:`reconcile` has tidied the row and fulfilled the requests.
"""

from __future__ import annotations

import sqlite3
import time

from edgenode.node.catalog import queries as q
from edgenode.core.db import transaction
from edgenode.core.errors import NotFound

ON_REQUEST_SQL = """SELECT s.resource_num FROM storage_state s
    WHERE s.state IN ('evicted', 'metadata') AND NOT EXISTS (
        SELECT 1 FROM resource_blobs rb JOIN blobs b ON b.sha256 = rb.sha256 AND b.state = 'ok'
        WHERE rb.resource_num = s.resource_num AND rb.role = 'main')"""


def _num(conn: sqlite3.Connection, resource_id: str) -> int:
    row = conn.execute("SELECT num FROM resources WHERE id = ? AND withdrawn_at IS NULL", (resource_id,)).fetchone()
    if not row:
        raise NotFound(f"no resource {resource_id!r}", zh="没有找到这个资源")
    return row[0]


def set_pin(conn: sqlite3.Connection, resource_id: str, pinned: bool = True) -> dict:
    """Pin (never evict) or unpin one resource."""
    num = _num(conn, resource_id)
    with transaction(conn):
        conn.execute("INSERT INTO storage_state (resource_num, pinned, changed_at) VALUES (?, ?, ?) "
                     "ON CONFLICT (resource_num) DO UPDATE SET pinned = excluded.pinned",
                     (num, int(pinned), time.time()))
    return {"resource_id": resource_id, "pinned": pinned}


def is_on_request(conn: sqlite3.Connection, num: int) -> bool:
    return conn.execute(ON_REQUEST_SQL + " AND s.resource_num = ?", (num,)).fetchone() is not None


def on_request_nums(conn: sqlite3.Connection, among: list[int] | None = None) -> set[int]:
    """Resources whose file is away; ``among``: only these (one query for a page of cards)."""
    if among is None:
        return {r[0] for r in conn.execute(ON_REQUEST_SQL)}
    if not among:
        return set()
    marks = ",".join("?" * len(among))
    return {r[0] for r in conn.execute(ON_REQUEST_SQL + f" AND s.resource_num IN ({marks})", among)}


def mark_metadata(conn: sqlite3.Connection, nums: list[int]) -> None:
    """For the import: these resources were listed without fetching their files (on-demand channel).

    Call inside the import's transaction, before ``refresh_visibility``.
    """
    now = time.time()
    conn.executemany("INSERT INTO storage_state (resource_num, state, changed_at) VALUES (?, 'metadata', ?) "
                     "ON CONFLICT (resource_num) DO UPDATE SET state = 'metadata', changed_at = excluded.changed_at",
                     [(n, now) for n in nums])


def reconcile(conn: sqlite3.Connection, *, now: float | None = None) -> dict:
    """Resources whose file is back become ``present`` (fresh again) and their requests fulfilled.

    Cheap and idempotent: called after each import, by ``storage status`` and the admin page.
    """
    now = time.time() if now is None else now
    back = [r[0] for r in conn.execute("""SELECT s.resource_num FROM storage_state s
        WHERE s.state IN ('evicted', 'metadata') AND EXISTS (
            SELECT 1 FROM resource_blobs rb JOIN blobs b ON b.sha256 = rb.sha256 AND b.state = 'ok'
            WHERE rb.resource_num = s.resource_num AND rb.role = 'main')""")]
    fulfilled = 0
    if back:
        with transaction(conn):
            conn.executemany("UPDATE storage_state SET state = 'present', sha256 = NULL, reason = '', "
                             "changed_at = ?, arrived_at = ? WHERE resource_num = ?",
                             [(now, now, n) for n in back])
            fulfilled = sum(conn.execute("UPDATE storage_requests SET state = 'fulfilled', fulfilled_at = ? "
                                         "WHERE resource_num = ? AND state = 'open'", (now, n)).rowcount
                            for n in back)
            q.refresh_visibility(conn, back)
    return {"restored": len(back), "fulfilled": fulfilled}
