"""Idle hours: when transcoding may run.

A setting is a list of ``"HH:MM-HH:MM"`` ranges in local time; an end before
the start crosses midnight (``"22:00-07:00"``).  Pure functions over an
injected ``datetime`` so tests need no clock.
"""

from __future__ import annotations

from datetime import datetime


def _minutes(text: str) -> int:
    if len(text) != 5 or text[2] != ":" or not (text[:2].isdigit() and text[3:].isdigit()):
        raise ValueError(f"{text!r} is not a time like 22:00")
    h, m = int(text[:2]), int(text[3:])
    if not (0 <= h <= 23 and 0 <= m <= 59) and (h, m) != (24, 0):
        raise ValueError(f"{text!r} is not a time of day")
    return h * 60 + m


def parse_range(value) -> tuple[int, int]:
    if not isinstance(value, str) or value.count("-") != 1:
        raise ValueError(f"{value!r}: write a range like \"22:00-07:00\"")
    start, end = (_minutes(p.strip()) for p in value.split("-"))
    if start == end or start == 1440:
        raise ValueError(f"{value!r}: start and end must differ (00:00-24:00 is all day)")
    return start, end


def check_idle_hours(value) -> str | None:
    """The config validator for ``transcode.idle_hours``."""
    try:
        for v in value:
            parse_range(v)
    except ValueError as e:
        return str(e)
    return None


def is_idle(ranges: list[str], now: datetime) -> bool:
    """Is ``now`` (local time) inside one of the ranges?"""
    minute = now.hour * 60 + now.minute
    for r in ranges:
        start, end = parse_range(r)
        if (start < end and start <= minute < end) or (start > end and (minute >= start or minute < end)):
            return True
    return False
