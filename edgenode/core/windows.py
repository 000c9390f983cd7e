"""Sync windows: when the uplink may be used, at what bandwidth, for which jobs.

Pure functions over a parsed window list and an injected ``datetime`` so tests
need no clock.  A window is a table in ``[[sync.windows]]``::

    [[sync.windows]]
    start = "02:00"          # local time, HH:MM
    end = "04:00"            # "24:00" allowed; end < start crosses midnight
    days = ["mon", "tue"]    # optional; the day the window STARTS on; default every day
    bwlimit = 200            # KiB/s handed to rsync --bwlimit; 0 or absent: unlimited
    jobs = ["pull", "uplink", "heartbeat"]   # optional; default all uplink jobs

No windows configured means the link may be used at any time (a point on a
permanent extranet line).  ``edgenode sync now`` ignores windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
UPLINK_JOBS = ("pull", "uplink", "heartbeat")
KEYS = {"start", "end", "days", "bwlimit", "jobs"}


@dataclass(frozen=True)
class Window:
    start: int  # minutes after midnight
    end: int    # minutes after midnight, may be <= start (crosses midnight) or 1440
    days: frozenset[int]  # weekday() numbers the window starts on
    bwlimit: int  # KiB/s, 0 = unlimited
    jobs: frozenset[str]

    def spans(self, now: datetime) -> list[tuple[datetime, datetime]]:
        """The occurrences of this window that could contain ``now`` (started today or yesterday)."""
        out = []
        for back in (1, 0):
            day = (now - timedelta(days=back)).replace(hour=0, minute=0, second=0, microsecond=0)
            if day.weekday() not in self.days:
                continue
            length = (self.end - self.start) % 1440 or 1440
            begin = day + timedelta(minutes=self.start)
            out.append((begin, begin + timedelta(minutes=length)))
        return out


def _hhmm(value, key: str) -> int:
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        raise ValueError(f"{key} must be a time like \"19:30\", not {value!r}")
    try:
        h, m = int(value[:2]), int(value[3:])
    except ValueError:
        raise ValueError(f"{key} must be a time like \"19:30\", not {value!r}") from None
    if not (0 <= h <= 23 and 0 <= m <= 59) and (h, m) != (24, 0):
        raise ValueError(f"{key} {value!r} is not a time of day")
    return h * 60 + m


def parse_window(raw) -> Window:
    if not isinstance(raw, dict):
        raise ValueError("each window must be a table with start and end")
    unknown = set(raw) - KEYS
    if unknown:
        raise ValueError("unknown window key " + ", ".join(sorted(unknown)))
    if "start" not in raw or "end" not in raw:
        raise ValueError("a window needs start and end")
    start, end = _hhmm(raw["start"], "start"), _hhmm(raw["end"], "end")
    if start == 1440:
        raise ValueError("start cannot be 24:00")
    if start == end:
        raise ValueError("start and end are the same; use 00:00 to 24:00 for all day")
    days = raw.get("days", list(DAYS))
    if not isinstance(days, list) or not days or any(d not in DAYS for d in days):
        raise ValueError("days must be a non-empty list of " + ", ".join(DAYS))
    bw = raw.get("bwlimit", 0)
    if not isinstance(bw, int) or isinstance(bw, bool) or bw < 0:
        raise ValueError("bwlimit must be a whole number of KiB/s, 0 for unlimited")
    jobs = raw.get("jobs", list(UPLINK_JOBS))
    if not isinstance(jobs, list) or not jobs or any(j not in UPLINK_JOBS for j in jobs):
        raise ValueError("jobs must be a non-empty list of " + ", ".join(UPLINK_JOBS))
    return Window(start, end, frozenset(DAYS.index(d) for d in days), bw, frozenset(jobs))


def parse_windows(raw: list) -> list[Window]:
    out = []
    for i, w in enumerate(raw):
        try:
            out.append(parse_window(w))
        except ValueError as e:
            raise ValueError(f"window {i + 1}: {e}") from None
    return out


def check_windows(raw) -> str | None:
    """The config validator for ``sync.windows``."""
    try:
        parse_windows(raw)
    except ValueError as e:
        return str(e)
    return None


@dataclass(frozen=True)
class Allowance:
    """What the link allows right now for one job."""
    allowed: bool
    bwlimit: int = 0        # KiB/s, 0 = unlimited
    until: datetime | None = None  # when the current window closes (None: never / not in one)
    reason: str = ""


def allowance(windows: list[Window], job: str, now: datetime) -> Allowance:
    """May ``job`` use the link at ``now``?  With several open windows the most generous
    bandwidth wins and the latest end is the deadline."""
    if not windows:
        return Allowance(True, 0, None, "no windows configured: always allowed")
    open_ = [(w, end) for w in windows if job in w.jobs for begin, end in w.spans(now) if begin <= now < end]
    if not open_:
        return Allowance(False, 0, None, f"outside every window for {job}")
    bw = 0 if any(w.bwlimit == 0 for w, _ in open_) else max(w.bwlimit for w, _ in open_)
    return Allowance(True, bw, max(end for _, end in open_), "inside a window")


def next_opening(windows: list[Window], job: str, now: datetime) -> datetime | None:
    """When ``job`` may next use the link (``now`` if it may already)."""
    if allowance(windows, job, now).allowed:
        return now
    starts = []
    for w in windows:
        if job not in w.jobs:
            continue
        for ahead in range(0, 8):
            day = (now + timedelta(days=ahead)).replace(hour=0, minute=0, second=0, microsecond=0)
            begin = day + timedelta(minutes=w.start)
            if day.weekday() in w.days and begin > now:
                starts.append(begin)
                break
    return min(starts) if starts else None
