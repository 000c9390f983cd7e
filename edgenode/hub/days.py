"""Statistics days: unix times as YYYY-MM-DD in the hub's time zone (ingest and tally share them)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

_DAY_CACHE: dict[int, str] = {}


def day(day_number: int) -> str:
    s = _DAY_CACHE.get(day_number)
    if s is None:
        s = datetime.fromtimestamp(day_number * 86400, timezone.utc).strftime("%Y-%m-%d")
        if len(_DAY_CACHE) < 100_000:
            _DAY_CACHE[day_number] = s
    return s


def local_day(t: float, offset_hours: float) -> str:
    """The statistics day (YYYY-MM-DD) of a unix time in the hub's time zone."""
    try:
        return day(int((t + offset_hours * 3600) // 86400))
    except (OverflowError, ValueError, OSError):
        # A wildly wrong village clock: count the event on the day it reached the hub.
        return day(int((time.time() + offset_hours * 3600) // 86400))


def day_or_today(dn: int, offset_hours: float) -> str:
    try:
        return day(dn)
    except (OverflowError, ValueError, OSError):
        # A wildly wrong village clock: count the event on the day it reached the hub.
        return local_day(time.time(), offset_hours)
