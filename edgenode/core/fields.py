"""Form fields as villagers and administrators type them: text, times, whole numbers.

Every function raises :class:`EdgenodeError` with a stable code, an English
message and a Chinese one for the portal.  Shared by activities, campaigns and
feedback, and knowing none of them.
"""

from __future__ import annotations

import re
from datetime import datetime

from edgenode.core.errors import EdgenodeError

# 18-digit resident ID numbers (last may be X): never collected, refused if typed into a field.
ID_CARD_RE = re.compile(r"\d{17}[\dXx]")
PHONE_IN_TEXT_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u2028-\u202e]")
TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


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
