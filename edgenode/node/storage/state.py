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
from edgenode.node.storage import queries as sq


def _num(conn: sqlite3.Connection, resource_id: str) -> int:
    row = sq.visible_num(conn, resource_id)
    if not row:
        raise NotFound(f"no resource {resource_id!r}", zh="没有找到这个资源")
    return row[0]


def set_pin(conn: sqlite3.Connection, resource_id: str, pinned: bool = True) -> dict:
    """Pin (never evict) or unpin one resource."""
    num = _num(conn, resource_id)
    with transaction(conn):
        sq.upsert_pin(conn, num, pinned, time.time())
    return {"resource_id": resource_id, "pinned": pinned}


def is_on_request(conn: sqlite3.Connection, num: int) -> bool:
    return sq.is_on_request(conn, num)


def on_request_nums(conn: sqlite3.Connection, among: list[int] | None = None) -> set[int]:
    """Resources whose file is away; ``among``: only these (one query for a page of cards)."""
    if among is None:
        return sq.on_request_all(conn)
    if not among:
        return set()
    return sq.on_request_among(conn, among)


def mark_metadata(conn: sqlite3.Connection, nums: list[int]) -> None:
    """For the import: these resources were listed without fetching their files (on-demand channel).

    Call inside the import's transaction, before ``refresh_visibility``.
    """
    now = time.time()
    sq.upsert_metadata(conn, nums, now)


def reconcile(conn: sqlite3.Connection, *, now: float | None = None) -> dict:
    """Resources whose file is back become ``present`` (fresh again) and their requests fulfilled.

    Cheap and idempotent: called after each import, by ``storage status`` and the admin page.
    """
    now = time.time() if now is None else now
    back = sq.back_nums(conn)
    fulfilled = 0
    if back:
        with transaction(conn):
            sq.set_present(conn, back, now)
            fulfilled = sum(sq.fulfil_requests(conn, n, now) for n in back)
            q.refresh_visibility(conn, back)
    return {"restored": len(back), "fulfilled": fulfilled}
