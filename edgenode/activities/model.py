"""Validation of activities and bookings, phone masking and status names.

Every function here raises :class:`EdgenodeError` with a stable code, an
English message and a Chinese one for the portal; nothing touches the database.
"""

from __future__ import annotations

import re
from datetime import datetime

from edgenode.errors import EdgenodeError

STATUS_ZH = {"pending": "待审核", "approved": "已审核", "cancelled": "已取消", "checked_in": "已签到"}
ACTIVE = ("pending", "approved", "checked_in")  # statuses that hold seats
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
# 18-digit resident ID numbers (last may be X): never collected, refused if typed into a field.
ID_CARD_RE = re.compile(r"\d{17}[\dXx]")
PHONE_IN_TEXT_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u2028-\u202e]")
TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
MAX_CAPACITY = 100_000


def invalid(code: str, message: str, zh: str) -> EdgenodeError:
    return EdgenodeError(code, message, zh=zh, status=400)


def clean_text(value, field: str, zh_field: str, *, max_len: int, required: bool = True,
               multiline: bool = False) -> str:
    text = "" if value is None else str(value)
    if multiline:
        text = text.replace("\r\n", "\n")
        bad = _CONTROL.search(text.replace("\n", ""))
    else:
        bad = _CONTROL.search(text)
    if bad:
        raise invalid("E_FIELD_INVALID", f"{field} contains control characters", f"{zh_field}含有不允许的字符")
    text = text.strip()
    if required and not text:
        raise invalid("E_FIELD_REQUIRED", f"{field} is required", f"请填写{zh_field}")
    if ID_CARD_RE.search(text[:4096]):
        raise invalid("E_ID_NUMBER", f"{field} looks like an ID-card number; none is needed",
                      "本服务点不需要身份证号，请不要填写")
    if len(text) > max_len:
        raise invalid("E_FIELD_TOO_LONG", f"{field} is longer than {max_len} characters",
                      f"{zh_field}不能超过{max_len}个字")
    return text


def parse_time(value, field: str, zh_field: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value or "").strip()
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).timestamp()
        except ValueError:
            continue
    raise invalid("E_TIME_INVALID", f"{field} must look like 2026-12-01 19:30", f"{zh_field}格式应为 2026-12-01 19:30")


def format_time(t: float | None) -> str:
    return "" if t is None else datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def parse_int(value, field: str, zh_field: str, *, low: int, high: int) -> int:
    if isinstance(value, bool):
        value = None
    try:
        n = int(str(value).strip()) if not isinstance(value, int) else value
    except (TypeError, ValueError):
        raise invalid("E_NUMBER_INVALID", f"{field} must be a whole number", f"{zh_field}应为整数") from None
    if not low <= n <= high:
        raise invalid("E_NUMBER_RANGE", f"{field} must be between {low} and {high}",
                      f"{zh_field}应在{low}到{high}之间")
    return n


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
