"""The problem list: what county staff need to do, most severe first (docs/hub.md, "Problems first").

The problems themselves are the fleet's (:func:`edgenode.hub.fleet.fleet`), so the list,
the fleet table's 只看有问题的 filter, ``/metrics`` and the alerts always agree.  Here
they are ordered and joined with staff notes: a problem can be **acknowledged** (someone
is on it; it stays listed, under 已确认, until it ends) or **snoozed** (hidden from the
list of open problems until a time), each with a reason.  The hourly alert check forgets
the notes of problems that ended (:func:`forget_ended_notes`).
"""

from __future__ import annotations

import sqlite3
import time

from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.hub import alerts_queries, fleet as fleet_mod, problems_queries as q

MAX_REASON = 200
MAX_SNOOZE_DAYS = 30


def tz_label(offset_hours: float) -> str:
    """How a page names the statistics time zone (``hub.utc_offset_hours``)."""
    return "北京时间" if offset_hours == 8 else f"UTC{offset_hours:+g}"


def entries(rows: list[dict], notes: dict[tuple, dict], now: float) -> dict:
    """Problems of these fleet rows as list entries, split into open and handled, most severe first."""
    open_, handled = [], []
    for r in rows:
        for p in r["problems"]:
            note = notes.get((r["node_id"], p["kind"], p["subject"]))
            if note and note["action"] == "snooze" and (note["until"] or 0) <= now:
                note = None  # the snooze has run out
            e = {**p, "node_id": r["node_id"], "name": r["name"] or "（未命名服务点）", "township": r["township"],
                 "note": note}
            (handled if note else open_).append(e)
    key = lambda e: (e["severity"], e["since"] if e["since"] is not None else now, e["township"], e["name"])  # noqa: E731
    open_.sort(key=key)
    handled.sort(key=key)
    return {"open": open_, "handled": handled}


def problem_list(conn: sqlite3.Connection, cfg, *, now: float | None = None, rows: list[dict] | None = None) -> dict:
    """``{"open": [...], "handled": [...], "rows": fleet rows, "nodes": ids of nodes with any problem}``."""
    now = time.time() if now is None else now
    rows = fleet_mod.fleet(conn, cfg, now=now) if rows is None else rows
    out = entries(rows, q.notes(conn), now)
    out["rows"] = rows
    out["nodes"] = {r["node_id"] for r in rows if r["problems"]}
    return out


def note(conn: sqlite3.Connection, cfg, node_id: str, kind: str, subject: str, *, action: str, reason: str,
         by: str, hours: float | None = None, now: float | None = None) -> dict:
    """Acknowledge (``action="ack"``) or snooze for ``hours`` a current problem, with a reason."""
    now = time.time() if now is None else now
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise EdgenodeError("E_PROBLEM_REASON", f"give a reason of 1 to {MAX_REASON} characters",
                            zh=f"请填写原因（{MAX_REASON} 字以内）。")
    if action not in ("ack", "snooze"):
        raise EdgenodeError("E_PROBLEM_ACTION", "action must be ack or snooze", zh="请选择确认或暂缓。")
    until = None
    if action == "snooze":
        if not isinstance(hours, (int, float)) or not 0 < hours <= MAX_SNOOZE_DAYS * 24:
            raise EdgenodeError("E_PROBLEM_SNOOZE", f"snooze for more than 0 and at most {MAX_SNOOZE_DAYS * 24} hours",
                                zh=f"暂缓时间须在 {MAX_SNOOZE_DAYS} 天以内。")
        until = now + hours * 3600
    row = fleet_mod.fleet_row(conn, cfg, node_id, now=now)
    problem = next((p for p in (row or {}).get("problems", []) if p["kind"] == kind and p["subject"] == subject), None)
    if problem is None:
        raise EdgenodeError("E_PROBLEM_GONE", "this node has no such problem now (it may have ended)",
                            zh="这个问题现在已经不存在（可能刚刚恢复），无需处理。", status=404)
    with transaction(conn):
        if kind == "conflict" and action == "ack":
            # Nothing later ends a conflict by itself: confirming it is what closes it.
            alerts_queries.clear_open_alert_by_key(conn, "conflict", node_id, subject, now)
            q.delete_note(conn, node_id, kind, subject)  # a snooze of it ends with it
        else:
            q.upsert_note(conn, node_id, kind, subject, action, reason, by, now, until)
    return {"node_id": node_id, "kind": kind, "subject": subject, "action": action, "until": until,
            "name": row["name"], "problem": problem["zh"]}


def reopen(conn: sqlite3.Connection, node_id: str, kind: str, subject: str) -> int:
    """Drop a note, so the problem is open again."""
    with transaction(conn):
        return q.delete_note(conn, node_id, kind, subject)


def forget_ended_notes(conn: sqlite3.Connection, current: set[tuple]) -> int:
    """Delete notes of problems no longer current (``current``: ``(kind, node_id, subject)``); in the caller's
    transaction.  Conflict notes stay: conflicts end only when confirmed."""
    gone = [k for k in q.notes(conn) if k[1] != "conflict" and (k[1], k[0], k[2]) not in current]
    for node_id, kind, subject in gone:
        q.delete_note(conn, node_id, kind, subject)
    return len(gone)
