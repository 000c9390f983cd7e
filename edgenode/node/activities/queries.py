"""Activity and booking SQL: publish, book (never oversold), approve, cancel, check in, list, export.

Booking runs in one ``BEGIN IMMEDIATE`` transaction whose INSERT carries the
capacity check in its own WHERE clause, so two web workers (or fifty
terminals at once) can never sell the same seat twice: the second writer
waits for the lock and then sees the first one's seats.

Only counts go upstream: every booking, cancellation and check-in is also a
usage event (``booking``, ``booking_cancel``, ``checkin``) carrying the
activity id and the number of seats, never a name or a phone number -- unless
``activities.contacts_upstream`` is on and the activity is the county's own.
"""

from __future__ import annotations

import csv
import hmac
import io
import secrets
import sqlite3
import time

from edgenode.node.activities import codes
from edgenode.core.fields import format_time
from edgenode.node.activities.model import ACTIVE, STATUS_ZH, activity_fields, booking_fields, mask_name, mask_phone
from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError, NotFound
from edgenode.node.usage import events

ADMIN_TERMINAL = "admin"
_ACTIVE_SQL = "(" + ", ".join(f"'{s}'" for s in ACTIVE) + ")"  # statuses that hold seats, as an SQL list


def _err(code: str, message: str, zh: str, status: int = 409) -> EdgenodeError:
    return EdgenodeError(code, message, zh=zh, status=status)


# -- activities ----------------------------------------------------------------------------------

def create_activity(conn: sqlite3.Connection, data: dict, *, origin: str = "local", source: str = "admin",
                    activity_id: str | None = None, now: float | None = None) -> dict:
    """Publish an activity; ``data`` as a form gives it (start/end as text or unix time)."""
    f = activity_fields(data)
    if f["resource_id"] and conn.execute("SELECT 1 FROM resources WHERE id = ? AND withdrawn_at IS NULL",
                                         (f["resource_id"],)).fetchone() is None:
        raise EdgenodeError("E_RESOURCE_UNKNOWN", f"no resource {f['resource_id']!r} on this node to screen",
                            zh="本服务点没有这个资源，无法放映", status=400)
    aid = activity_id or f"local-{secrets.token_hex(4)}"
    with transaction(conn):
        conn.execute("""INSERT INTO act_activities (id, title, description, place, start_at, end_at, capacity, audit,
                        resource_id, origin, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                     (aid, f["title"], f["description"], f["place"], f["start_at"], f["end_at"], f["capacity"],
                      int(f["audit"]), f["resource_id"], origin, source, time.time() if now is None else now))
    return get_activity(conn, aid)


def upsert_published(conn: sqlite3.Connection, aid: str, f: dict, *, source: str, cancelled: bool) -> str:
    """Insert or update a county activity (caller holds the transaction).  Capacity may not drop
    below the seats already booked: bookings already made stay valid."""
    row = conn.execute("SELECT id FROM act_activities WHERE id = ?", (aid,)).fetchone()
    if row is None:
        conn.execute("""INSERT INTO act_activities (id, title, description, place, start_at, end_at, capacity, audit,
                        resource_id, origin, source, created_at, cancelled_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'county', ?, ?, ?)""",
                     (aid, f["title"], f["description"], f["place"], f["start_at"], f["end_at"], f["capacity"],
                      int(f["audit"]), f["resource_id"], source, time.time(), time.time() if cancelled else None))
        return "added"
    booked = seats_taken(conn, aid)
    conn.execute("""UPDATE act_activities SET title = ?, description = ?, place = ?, start_at = ?, end_at = ?,
                    capacity = max(?, ?), audit = ?, resource_id = ?, source = ? WHERE id = ?""",
                 (f["title"], f["description"], f["place"], f["start_at"], f["end_at"], f["capacity"], booked,
                  int(f["audit"]), f["resource_id"], source, aid))
    if cancelled:
        _cancel_activity_in_tx(conn, aid)
    return "updated"


def get_activity(conn: sqlite3.Connection, aid: str) -> dict:
    row = conn.execute(f"""SELECT a.*, (SELECT coalesce(sum(seats), 0) FROM act_bookings b
                           WHERE b.activity_id = a.id AND b.status IN {_ACTIVE_SQL}) AS booked
                           FROM act_activities a WHERE a.id = ?""", (str(aid)[:128],)).fetchone()
    if row is None:
        raise NotFound(f"no activity {aid!r}", zh="没有找到这个活动")
    return _activity(row)


def _activity(row) -> dict:
    a = dict(row)
    a["audit"] = bool(a["audit"])
    a["left"] = max(a["capacity"] - a["booked"], 0)
    a["start"] = format_time(a["start_at"])
    a["end"] = format_time(a["end_at"])
    return a


def list_activities(conn: sqlite3.Connection, *, upcoming: bool = False, now: float | None = None,
                    limit: int = 200) -> list[dict]:
    """Upcoming (not yet ended, not cancelled) activities soonest first; else all, newest first."""
    now = time.time() if now is None else now
    where, order = ("WHERE a.end_at > ? AND a.cancelled_at IS NULL", "a.start_at") if upcoming else ("WHERE ? = ?",
                                                                                                      "a.start_at DESC")
    args = (now,) if upcoming else (1, 1)
    rows = conn.execute(f"""SELECT a.*, (SELECT coalesce(sum(seats), 0) FROM act_bookings b
                            WHERE b.activity_id = a.id AND b.status IN {_ACTIVE_SQL}) AS booked
                            FROM act_activities a {where} ORDER BY {order} LIMIT ?""", (*args, limit)).fetchall()
    return [_activity(r) for r in rows]


def seats_taken(conn: sqlite3.Connection, aid: str) -> int:
    return conn.execute(f"SELECT coalesce(sum(seats), 0) FROM act_bookings WHERE activity_id = ? AND status IN "
                        f"{_ACTIVE_SQL}", (aid,)).fetchone()[0]


def cancel_activity(conn: sqlite3.Connection, aid: str) -> int:
    """Cancel an activity and every open booking of it; returns how many bookings were cancelled."""
    get_activity(conn, aid)
    with transaction(conn):
        return _cancel_activity_in_tx(conn, aid)


def _cancel_activity_in_tx(conn, aid: str) -> int:
    now = time.time()
    conn.execute("UPDATE act_activities SET cancelled_at = coalesce(cancelled_at, ?) WHERE id = ?", (now, aid))
    cur = conn.execute("UPDATE act_bookings SET status = 'cancelled', updated_at = ? WHERE activity_id = ? "
                       "AND status IN ('pending', 'approved')", (now, aid))
    return cur.rowcount


# -- bookings ------------------------------------------------------------------------------------

def book(conn: sqlite3.Connection, cfg, activity_id: str, data: dict, *, terminal: str,
         now: float | None = None) -> dict:
    """Book seats.  Returns the booking with its order id and the pickup code (shown once)."""
    f = booking_fields(data, max_seats=cfg["activities.max_seats"])
    key = codes.load_key(cfg)
    now = time.time() if now is None else now
    with transaction(conn):
        act = conn.execute("SELECT * FROM act_activities WHERE id = ?", (str(activity_id)[:128],)).fetchone()
        if act is None:
            raise NotFound(f"no activity {activity_id!r}", zh="没有找到这个活动")
        if act["cancelled_at"] is not None:
            raise _err("E_ACTIVITY_CANCELLED", "the activity was cancelled", "该活动已取消")
        if act["end_at"] <= now:
            raise _err("E_ACTIVITY_OVER", "the activity has ended", "该活动已结束，不能再预约")
        recent = conn.execute("SELECT count(*) FROM act_bookings WHERE terminal = ? AND created_at > ?",
                              (terminal, now - 86400)).fetchone()[0]
        if recent >= cfg["activities.terminal_daily_bookings"]:
            raise _err("E_TERMINAL_LIMIT", "too many bookings from this terminal today",
                       "这台设备今天预约次数已达上限，请明天再试", status=429)
        if conn.execute(f"SELECT 1 FROM act_bookings WHERE activity_id = ? AND phone = ? AND status IN {_ACTIVE_SQL}",
                        (act["id"], f["phone"])).fetchone():
            raise _err("E_ALREADY_BOOKED", "this phone number already holds a booking for the activity",
                       "这个手机号已经预约过本活动")
        order_id, code = _fresh_ids(conn, key, now)
        status = "pending" if act["audit"] else "approved"
        # The capacity check is part of the INSERT: no seat is sold that the SUM does not see.
        cur = conn.execute(f"""
            INSERT INTO act_bookings (order_id, activity_id, name, phone, seats, status, code_hash, terminal,
                                      created_at, updated_at)
            SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
            WHERE (SELECT coalesce(sum(seats), 0) FROM act_bookings
                   WHERE activity_id = ? AND status IN {_ACTIVE_SQL}) + ? <= ?""",
                           (order_id, act["id"], f["name"], f["phone"], f["seats"], status,
                            codes.code_hash(key, code), terminal, now, now, act["id"], f["seats"], act["capacity"]))
        if cur.rowcount != 1:
            left = act["capacity"] - seats_taken(conn, act["id"])
            if left <= 0:
                raise _err("E_FULL", "the activity is fully booked", "已满：本活动名额已约满")
            raise _err("E_FULL", f"only {left} seat(s) left", f"已满：剩余名额不足，仅剩{left}个")
        _upstream(conn, cfg, act, "booking", f["seats"], terminal, contact=f)
    return {"order_id": order_id, "code": code, "status": status, "status_zh": STATUS_ZH[status],
            "seats": f["seats"], "activity_id": act["id"], "activity_title": act["title"],
            "start": format_time(act["start_at"]), "place": act["place"]}


def _fresh_ids(conn, key: bytes, now: float) -> tuple[str, str]:
    # We hold the write lock, so "not there now" stays true until our INSERT.
    for _ in range(50):
        order_id, code = codes.new_order_id(now), codes.new_code()
        if conn.execute("SELECT 1 FROM act_bookings WHERE order_id = ? OR code_hash = ?",
                        (order_id, codes.code_hash(key, code))).fetchone() is None:
            return order_id, code
    raise _err("E_CODE_SPACE", "could not find an unused pickup code", "系统繁忙，请重试", status=503)


def _upstream(conn, cfg, act, kind: str, seats: int, terminal: str, contact: dict | None = None) -> None:
    # ``act`` is an activity row or a booking row joined with its activity.
    aid = act["activity_id"] if "activity_id" in act.keys() else act["id"]
    x = {"activity": aid, "seats": seats}
    if contact and act["origin"] == "county" and cfg["activities.contacts_upstream"]:
        x.update(name=contact["name"], phone=contact["phone"])
    events.record(conn, [{"kind": kind, "terminal": terminal, "resource_id": act["resource_id"], "data": x}])


def _booking_row(conn, order_id: str):
    return conn.execute("""SELECT b.*, a.title AS activity_title, a.start_at, a.place, a.origin, a.resource_id,
                           a.cancelled_at AS activity_cancelled_at
                           FROM act_bookings b JOIN act_activities a ON a.id = b.activity_id
                           WHERE b.order_id = ?""", (str(order_id)[:32],)).fetchone()


def _public(row, *, full_contact: bool = False) -> dict:
    b = {k: row[k] for k in ("order_id", "activity_id", "activity_title", "seats", "status", "created_at",
                             "checked_in_at", "place")}
    b["status_zh"] = STATUS_ZH[row["status"]]
    b["start"] = format_time(row["start_at"])
    b["created"] = format_time(row["created_at"])
    b["name"] = row["name"] if full_contact else mask_name(row["name"])
    b["phone"] = (row["phone"] or "已删除") if full_contact else mask_phone(row["phone"])
    return b


def get_booking(conn: sqlite3.Connection, order_id: str, *, full_contact: bool = False) -> dict:
    row = _booking_row(conn, order_id)
    if row is None:
        raise NotFound(f"no booking {order_id!r}", zh="没有找到这个预约")
    return _public(row, full_contact=full_contact)


LOOKUP_MAX_FAILURES = 10
LOOKUP_LOCK_SECONDS = 3600


def lookup(conn: sqlite3.Connection, cfg, order_id: str, code: str, *, now: float | None = None) -> dict:
    """A villager checks their booking with order id and pickup code (both must match).

    After ``LOOKUP_MAX_FAILURES`` wrong codes for one order id within an hour, that order's
    lookup is locked for the rest of the hour (the administrator can still see it)."""
    now = time.time() if now is None else now
    order_id = str(order_id or "").strip()[:32]
    failures = conn.execute("SELECT count(*) FROM act_lookup_failures WHERE order_id = ? AND at > ?",
                            (order_id, now - LOOKUP_LOCK_SECONDS)).fetchone()[0]
    if failures >= LOOKUP_MAX_FAILURES:
        raise _err("E_LOOKUP_LOCKED", "too many wrong codes for this order; try again later",
                   "取票码错误次数太多，请一小时后再试，或请管理员查询", status=429)
    row = _booking_row(conn, order_id)
    norm = codes.normalise_code(code)
    if row is None or norm is None or not hmac.compare_digest(row["code_hash"],
                                                              codes.code_hash(codes.load_key(cfg), norm)):
        if row is not None:
            with transaction(conn):
                conn.execute("DELETE FROM act_lookup_failures WHERE at < ?", (now - LOOKUP_LOCK_SECONDS,))
                conn.execute("INSERT INTO act_lookup_failures (order_id, at) VALUES (?, ?)", (order_id, now))
        raise _err("E_LOOKUP_FAILED", "order id and pickup code do not match", "订单号或取票码不正确", status=404)
    return _public(row)


def list_bookings(conn: sqlite3.Connection, activity_id: str | None = None, *, status: str | None = None,
                  limit: int = 1000) -> list[dict]:
    """Bookings with masked name and phone (every listing masks them)."""
    sql = ("SELECT b.*, a.title AS activity_title, a.start_at, a.place FROM act_bookings b "
           "JOIN act_activities a ON a.id = b.activity_id WHERE 1 = 1")
    args: list = []
    if activity_id:
        sql += " AND b.activity_id = ?"
        args.append(activity_id)
    if status:
        sql += " AND b.status = ?"
        args.append(status)
    sql += " ORDER BY b.created_at DESC LIMIT ?"
    return [_public(r) for r in conn.execute(sql, (*args, limit))]


def _transition(conn, cfg, order_id: str, allowed: tuple, new: str, code: str, message: str, zh: str) -> dict:
    with transaction(conn):
        row = _booking_row(conn, order_id)
        if row is None:
            raise NotFound(f"no booking {order_id!r}", zh="没有找到这个预约")
        if row["status"] not in allowed:
            raise _err(code, f"{message} (status is {row['status']})", f"{zh}（当前状态：{STATUS_ZH[row['status']]}）")
        conn.execute("UPDATE act_bookings SET status = ?, updated_at = ? WHERE order_id = ?",
                     (new, time.time(), row["order_id"]))
        if new == "cancelled":
            _upstream(conn, cfg, row, "booking_cancel", row["seats"], ADMIN_TERMINAL)
    return get_booking(conn, order_id)


def approve(conn: sqlite3.Connection, cfg, order_id: str) -> dict:
    return _transition(conn, cfg, order_id, ("pending",), "approved", "E_NOT_PENDING",
                       "only a pending booking can be approved", "只有待审核的预约可以审核通过")


def cancel(conn: sqlite3.Connection, cfg, order_id: str) -> dict:
    return _transition(conn, cfg, order_id, ("pending", "approved"), "cancelled", "E_NOT_CANCELLABLE",
                       "only a pending or approved booking can be cancelled", "只有待审核或已审核的预约可以取消")


def cancel_own(conn: sqlite3.Connection, cfg, order_id: str, code: str) -> dict:
    """A villager cancels their own booking with order id + code, freeing the seats."""
    lookup(conn, cfg, order_id, code)
    return cancel(conn, cfg, order_id)


def check_in(conn: sqlite3.Connection, cfg, code: str, *, activity_id: str | None = None,
             now: float | None = None) -> dict:
    """Check a booking in by its pickup code.  Forged, reused, cancelled or unapproved codes are refused."""
    norm = codes.normalise_code(code)
    if norm is None:
        raise _err("E_CODE_INVALID", "a pickup code is 8 digits", "取票码应为8位数字", status=400)
    h = codes.code_hash(codes.load_key(cfg), norm)
    now = time.time() if now is None else now
    with transaction(conn):
        row = conn.execute("""SELECT b.*, a.title AS activity_title, a.start_at, a.place, a.origin, a.resource_id,
                              a.cancelled_at AS activity_cancelled_at
                              FROM act_bookings b JOIN act_activities a ON a.id = b.activity_id
                              WHERE b.code_hash = ?""", (h,)).fetchone()
        if row is None:
            raise _err("E_CODE_UNKNOWN", "no booking has this pickup code", "取票码无效：没有这个预约", status=404)
        if activity_id and row["activity_id"] != activity_id:
            raise _err("E_CODE_OTHER_ACTIVITY", "this pickup code belongs to another activity",
                       f"该取票码属于另一个活动：{row['activity_title']}")
        if row["status"] == "checked_in":
            raise _err("E_CODE_USED", "this pickup code was already used",
                       f"该取票码已于 {format_time(row['checked_in_at'])} 签到过，不能重复使用")
        if row["status"] == "cancelled":
            raise _err("E_BOOKING_CANCELLED", "this booking was cancelled", "该预约已取消")
        if row["status"] == "pending":
            raise _err("E_NOT_APPROVED", "this booking still waits for approval", "该预约尚未审核通过")
        conn.execute("UPDATE act_bookings SET status = 'checked_in', checked_in_at = ?, updated_at = ? "
                     "WHERE order_id = ? AND status = 'approved'", (now, now, row["order_id"]))
        _upstream(conn, cfg, row, "checkin", row["seats"], ADMIN_TERMINAL)
    return get_booking(conn, row["order_id"])


# -- export --------------------------------------------------------------------------------------

CSV_HEADER = ["活动名称", "订单ID", "联系人", "联系电话", "预约数量", "预约状态", "预约时间", "签到时间"]


def _cell(v) -> str:
    s = "" if v is None else str(v)
    # A spreadsheet runs cells starting with these as formulas (CSV injection).
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def export_csv(conn: sqlite3.Connection, activity_id: str | None = None) -> str:
    """Bookings as CSV (UTF-8 with BOM so Excel shows Chinese), name and phone masked."""
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out)
    w.writerow(CSV_HEADER)
    for b in reversed(list_bookings(conn, activity_id, limit=1_000_000)):
        w.writerow([_cell(v) for v in (b["activity_title"], b["order_id"], b["name"], b["phone"], b["seats"],
                                       b["status_zh"], b["created"],
                                       format_time(b["checked_in_at"]) if b["checked_in_at"] else "")])
    return out.getvalue()
