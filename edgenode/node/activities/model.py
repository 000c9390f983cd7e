"""Validation of activities and bookings, phone masking and status names.

Every function here raises :class:`EdgenodeError` with a stable code, an
English message and a Chinese one for the portal; nothing touches the database.
"""

from __future__ import annotations

import re

from edgenode.core.fields import clean_text, invalid, parse_int, parse_time

STATUS_ZH = {"pending": "待审核", "approved": "已审核", "cancelled": "已取消", "checked_in": "已签到"}
ACTIVE = ("pending", "approved", "checked_in")  # statuses that hold seats
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
MAX_CAPACITY = 100_000


def activity_fields(data: dict) -> dict:
    """A validated activity from a form, the CLI or a bundle entry."""
    out = {
        "title": clean_text(data.get("title"), "title", "活动名称", max_len=100),
        "description": clean_text(data.get("description"), "description", "活动介绍", max_len=4000,
                                  required=False, multiline=True),
        "place": clean_text(data.get("place"), "place", "活动地点", max_len=200, required=False),
        "start_at": parse_time(data.get("start"), "start", "开始时间"),
        "end_at": parse_time(data.get("end"), "end", "结束时间"),
        "capacity": parse_int(data.get("capacity"), "capacity", "名额", low=1, high=MAX_CAPACITY),
        "audit": _bool(data.get("audit")),
        "resource_id": clean_text(data.get("resource_id"), "resource_id", "关联资源", max_len=128,
                                  required=False) or None,
    }
    if out["end_at"] <= out["start_at"]:
        raise invalid("E_TIME_ORDER", "end must be after start", "结束时间应晚于开始时间")
    return out


def _bool(v) -> bool:
    if isinstance(v, bool):
        return v
    return str(v or "").strip().lower() in ("1", "true", "yes", "on", "是")


def normalise_phone(value) -> str:
    digits = re.sub(r"[\s-]", "", str(value or ""))[:32]
    if digits.startswith("+86"):
        digits = digits[3:]
    if not PHONE_RE.match(digits):
        raise invalid("E_PHONE_INVALID", "phone must be an 11-digit mobile number", "请填写11位手机号码")
    return digits


def booking_fields(data: dict, *, max_seats: int) -> dict:
    return {
        "name": clean_text(data.get("name"), "name", "联系人", max_len=20),
        "phone": normalise_phone(data.get("phone")),
        "seats": parse_int(data.get("seats", 1), "seats", "预约人数", low=1, high=max_seats),
    }


def mask_phone(phone: str | None) -> str:
    """138****0820; a purged number shows as 已删除."""
    if not phone:
        return "已删除"
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str | None) -> str:
    """陈忠 → 陈*: enough for the administrator to recognise a booking at the door."""
    if not name:
        return "已删除"
    return name[0] + "*" * min(len(name) - 1, 3) if len(name) > 1 else name
