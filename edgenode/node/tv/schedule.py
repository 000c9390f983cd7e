"""Which playlist the television shows now: pure rules over slots, no database (docs/portal.md, "TV mode").

At a moment ``now`` (the node's local time plus ``tv.clock_offset_seconds``,
which tests and rehearsals use to fake the time of day):

1. a screening slot of this point that covers ``now``, earliest start first;
2. else a county slot that covers ``now``;
3. else the loop playlist (the point's choice, else the county's);
4. else none: the TV page loops the newest videos.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from edgenode.core.errors import EdgenodeError

HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
DAYS = re.compile(r"^[1-7]{1,7}$")
PLAYLIST_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")


class ScheduleError(EdgenodeError):
    def __init__(self, message: str, zh: str):
        super().__init__("E_TV_SCHEDULE", message, zh=zh, status=400)


def minutes(hhmm: str) -> int:
    m = HHMM.match(str(hhmm).strip())
    if not m:
        raise ScheduleError(f"{str(hhmm)[:20]!r}: times are HH:MM, 00:00 to 23:59", "时间格式应为 时:分，如 19:30")
    return int(m.group(1)) * 60 + int(m.group(2))


def check_slot(start: str, end: str, days: str = "1234567") -> tuple[str, str, str]:
    """Normalised (start, end, days) or ScheduleError."""
    a, b = minutes(start), minutes(end)
    if a == b:
        raise ScheduleError("a screening must not start and end at the same time", "开始和结束时间不能相同")
    days = "".join(sorted(set(str(days or "1234567").strip())))
    if not DAYS.match(days):
        raise ScheduleError("days: digits 1 (Monday) to 7 (Sunday)", "星期应写成 1 到 7 的数字，1 是星期一")
    return f"{a // 60:02d}:{a % 60:02d}", f"{b // 60:02d}:{b % 60:02d}", days


def check_playlist_id(pid: str) -> str:
    if not isinstance(pid, str) or not PLAYLIST_ID.match(pid):
        raise ScheduleError("playlist id: 1-48 lower-case letters, digits, '_' or '-'",
                            "节目单编号只能用小写字母、数字、_ 或 -")
    return pid


def covers(slot: dict, now: datetime) -> bool:
    """Whether ``slot`` (start, end, days) is on at ``now``; a slot past midnight belongs to the day it starts."""
    a, b, t = minutes(slot["start"]), minutes(slot["end"]), now.hour * 60 + now.minute
    if a < b:
        return a <= t < b and str(now.isoweekday()) in slot["days"]
    if t >= a:
        return str(now.isoweekday()) in slot["days"]
    return t < b and str((now - timedelta(days=1)).isoweekday()) in slot["days"]


def choose(slots: list[dict], loops: dict[str, str], now: datetime) -> tuple[str | None, str, dict | None]:
    """(playlist id, why: 'slot' | 'loop' | 'newest', the slot) for ``now``; ``slots`` local first."""
    on = [s for s in slots if covers(s, now)]
    on.sort(key=lambda s: (s["source"] != "local", s["start"]))
    if on:
        return on[0]["playlist_id"], "slot", on[0]
    loop = loops.get("local") or next((v for k, v in sorted(loops.items()) if k != "local"), None)
    return (loop, "loop", None) if loop else (None, "newest", None)


def next_change(slots: list[dict], now: datetime) -> datetime:
    """The next minute at which any slot starts or ends (the TV page checks again then)."""
    t = now.hour * 60 + now.minute
    ahead = [(minutes(x) - t - 1) % 1440 + 1 for s in slots for x in (s["start"], s["end"])]
    step = min(ahead, default=1440)
    return (now + timedelta(minutes=step)).replace(second=0, microsecond=0)
