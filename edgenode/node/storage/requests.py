"""Villagers' requests for resources whose file is not on this node (可预约下载).

A request is recorded here (listed on the admin page) and as a usage event of
kind ``request`` with ``x = {"resource_id": ...}``, so it travels upstream in
the next sealed usage batch and the hub can put the file into the next pull.
An on-demand channel's import fetches a requested file (``subscriptions.decide``);
:func:`edgenode.node.storage.state.reconcile` marks the request fulfilled once the
file is back.
"""

from __future__ import annotations

import sqlite3
import time

from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError, NotFound
from edgenode.node.storage import queries as sq
from edgenode.node.storage import state
from edgenode.node.usage import events

MAX_TERMINAL = 64


def request(conn: sqlite3.Connection, resource_id: str, terminal: str, *, now: float | None = None) -> dict:
    """Record one request; a repeat from the same terminal is not counted twice.

    Returns ``{"resource_id", "new": bool, "open": <open requests for it>}``.
    """
    now = time.time() if now is None else now
    terminal = (terminal or "").strip()[:MAX_TERMINAL] or "unknown"
    row = sq.visible_resource(conn, resource_id)
    if not row:
        raise NotFound(f"no resource {resource_id!r}", zh="没有找到这个资源")
    num, rid = row
    if not state.is_on_request(conn, num):
        raise EdgenodeError("E_NOT_ON_REQUEST", f"{rid}: the file is already on this node; nothing to request",
                            zh="这个资源已经可以直接观看，无需预约", status=409)
    # One transaction for the row and the upstream event, so neither exists without the other.
    # INSERT OR IGNORE against the partial unique index: one open request per terminal.
    with transaction(conn):
        new = sq.insert_request(conn, num, rid, terminal, now)
        if new:
            events.record(conn, [{"kind": "request", "terminal": terminal, "resource_id": rid, "at": now,
                                  "data": {"resource_id": rid}}])
    n_open = sq.open_request_count(conn, num)
    return {"resource_id": rid, "new": new, "open": n_open}


def listing(conn: sqlite3.Connection, *, include_fulfilled: bool = False, limit: int = 200) -> list[dict]:
    """Requested resources, most asked-for first: id, title, count, first and last request, state."""
    rows = sq.request_listing(conn, include_fulfilled, limit)
    return [dict(r) for r in rows]


def open_ids(conn: sqlite3.Connection) -> list[str]:
    """Catalogue ids with an open request: what the next pull should bring."""
    return sq.open_request_ids(conn)
