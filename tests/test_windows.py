"""Sync windows: pure functions with an injected clock; the config validator."""

from __future__ import annotations

from datetime import datetime

import pytest

from edgenode.core.config import load_config
from edgenode.core.errors import ConfigError
from edgenode.core.windows import allowance, next_opening, parse_windows

# 2026-11-25 is a Wednesday
WED = datetime(2026, 11, 25)


def at(h, m=0, day=0):
    return WED.replace(hour=h, minute=m).replace(day=25 + day)


WINDOWS = parse_windows([
    {"start": "02:00", "end": "04:00", "bwlimit": 200, "jobs": ["pull"]},             # satellite pass
    {"start": "19:00", "end": "23:00", "jobs": ["pull", "uplink", "heartbeat"]},      # extranet evenings
    {"start": "23:30", "end": "01:00", "days": ["sat"], "bwlimit": 50},              # crosses midnight
])


@pytest.mark.parametrize("when, job, allowed, bw", [
    (at(2, 0), "pull", True, 200),
    (at(3, 59), "pull", True, 200),
    (at(4, 0), "pull", False, 0),          # the end is exclusive
    (at(2, 30), "uplink", False, 0),       # the satellite window allows only the pull
    (at(19, 0), "uplink", True, 0),
    (at(22, 59), "heartbeat", True, 0),
    (at(23, 0), "heartbeat", False, 0),
    (at(12, 0), "pull", False, 0),
    (at(23, 45, day=3), "uplink", True, 50),   # Saturday 23:45
    (at(0, 30, day=4), "uplink", True, 50),    # Sunday 00:30 belongs to Saturday's window
    (at(0, 30, day=1), "uplink", False, 0),    # Thursday 00:30: the window is Saturdays only
    (at(23, 45, day=0), "uplink", False, 0),
])
def test_allowance(when, job, allowed, bw):
    a = allowance(WINDOWS, job, when)
    assert (a.allowed, a.bwlimit) == (allowed, bw), a.reason


def test_deadline_is_the_window_end():
    assert allowance(WINDOWS, "pull", at(3, 0)).until == at(4, 0)
    assert allowance(WINDOWS, "uplink", at(23, 45, day=3)).until == at(1, 0, day=4)


def test_no_windows_means_always():
    a = allowance([], "pull", at(12))
    assert a.allowed and a.bwlimit == 0 and a.until is None


def test_next_opening():
    assert next_opening(WINDOWS, "uplink", at(12)) == at(19)
    assert next_opening(WINDOWS, "pull", at(23, 10)) == at(2, day=1)
    assert next_opening(WINDOWS, "uplink", at(20)) == at(20)


def test_overlapping_windows_most_generous_wins():
    ws = parse_windows([{"start": "10:00", "end": "12:00", "bwlimit": 100},
                        {"start": "11:00", "end": "13:00", "bwlimit": 0}])
    a = allowance(ws, "pull", at(11, 30))
    assert a.bwlimit == 0 and a.until == at(13)


@pytest.mark.parametrize("window, fragment", [
    ({"start": "2:00", "end": "04:00"}, "time like"),
    ({"start": "25:00", "end": "04:00"}, "not a time of day"),
    ({"start": "02:00"}, "needs start and end"),
    ({"start": "02:00", "end": "02:00"}, "the same"),
    ({"start": "02:00", "end": "03:00", "days": ["monday"]}, "days must be"),
    ({"start": "02:00", "end": "03:00", "bwlimit": -1}, "bwlimit"),
    ({"start": "02:00", "end": "03:00", "bwlimit": "1M"}, "bwlimit"),
    ({"start": "02:00", "end": "03:00", "jobs": ["housekeeping"]}, "jobs must be"),
    ({"start": "02:00", "end": "03:00", "colour": "red"}, "unknown window key"),
    ("02:00-03:00", "must be a table"),
])
def test_bad_windows_stop_start_up(tmp_path, window, fragment):
    with pytest.raises(ConfigError) as e:
        load_config(env={}, overrides={"data_dir": str(tmp_path), "sync.windows": [window]})
    assert "sync.windows" in e.value.message and fragment in e.value.message


def test_windows_from_toml(tmp_path):
    p = tmp_path / "edgenode.toml"
    p.write_text('[[sync.windows]]\nstart = "19:00"\nend = "23:00"\nbwlimit = 300\ndays = ["mon", "fri"]\n',
                 encoding="utf-8")
    cfg = load_config(p, env={}, overrides={"data_dir": str(tmp_path)})
    (w,) = parse_windows(cfg["sync.windows"])
    assert w.bwlimit == 300 and w.days == {0, 4}
