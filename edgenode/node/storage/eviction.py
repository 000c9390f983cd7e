"""The eviction policy: which files go when the store needs room, in which order.

Never evicted:

* pinned resources: pinned one by one (``edgenode storage pin``), or belonging
  to an ``always`` channel, or without a channel (added by hand or the demo:
  nothing upstream could bring them back);
* fresh resources: added, or brought back after an eviction, fewer than
  ``storage.fresh_days`` days ago;
* a blob that another, non-evictable resource also uses.

Everything else is a candidate, taken in this order:

* tier 0 ``unreferenced``: blobs no resource needs any more (withdrawn
  resources, dropped transcode originals) — removing them loses nothing;
* tier 1 ``original``: originals kept beside a finished transcode;
* tier 1 ``expired``: resources of an expired bundle (the publisher's expiry
  also ends a channel's ``always`` pin; a resource's own pin still holds), and
  resources of channels now set to ``never``;
* tier 2 ``lru``: the rest, by ``idle seconds × size`` descending, where idle
  time counts from the last play (``play_start``/``progress``/``play_end``
  events) or, never played, from arrival.  A large file nobody has watched for
  months goes before a small one watched last week.

Ties break on the resource number, so a plan is deterministic.  Only the main
file is evicted; the poster stays so the listing still shows a picture.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, astuple, dataclass
from datetime import datetime, timezone
from typing import Iterable, Iterator

from edgenode.core.db import transaction
from edgenode.node.storage import queries as sq
from edgenode.node.storage import subscriptions

PLAY_KINDS = ("play_start", "progress", "play_end")
TIER_NAMES = {0: "unreferenced", 1: "expired", 2: "lru"}


@dataclass(slots=True)
class Victim:
    tier: int
    reason: str           # unreferenced, original, expired, never, lru
    sha256: str
    size: int
    resource_id: str | None = None
    resource_num: int | None = None
    title: str = ""
    last_played: float | None = None
    score: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def refresh_last_played(conn: sqlite3.Connection) -> int:
    """Fold new play events into ``storage_last_played``; returns how many resources moved.

    Incremental by event sequence, so a planner run reads only what is new.
    """
    row = sq.last_played_mark(conn)
    mark = int(row[0]) if row else 0
    top = sq.top_usage_seq(conn)
    if top <= mark:
        return 0
    rows = sq.last_plays_between(conn, mark, top, PLAY_KINDS)
    with transaction(conn):
        sq.upsert_last_played(conn, rows)
        sq.set_last_played_mark(conn, top)
    return len(rows)


def _parse_time(text) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def expired_sources(conn: sqlite3.Connection, now: float) -> list[str]:
    """``source`` values (``bundle:<channel>:<seq>``) of accepted bundles past their expiry."""
    if not sq.has_bundles_table(conn):
        return []  # the bundles area is not installed
    out = []
    for channel, seq, expires in sq.bundle_expiries(conn):
        at = _parse_time(expires)
        if at is not None and at <= now:
            out.append(f"bundle:{channel}:{seq}")
    return out


def _unreferenced(conn: sqlite3.Connection) -> list[Victim]:
    rows = sq.unreferenced_blobs(conn)
    return [Victim(0, "unreferenced", sha, size) for sha, size in rows]


def _originals(conn: sqlite3.Connection) -> list[Victim]:
    rows = sq.evictable_originals(conn)
    return [Victim(1, "original", sha, size, rid, num, title) for sha, size, rid, num, title in rows]


def channel_modes(conn: sqlite3.Connection, cfg) -> dict[str, str]:
    """Effective mode of every channel in the catalogue (an index-only scan, no sizes)."""
    channels = sq.catalogue_channels(conn)
    overrides = sq.subscription_overrides(conn)
    return {ch: overrides.get(ch) or subscriptions.config_mode(cfg, ch) for ch in channels}


def stream_candidates(conn: sqlite3.Connection, cfg, now: float | None = None) -> Iterator[tuple]:
    """Candidates in eviction order as plain tuples (Victim's fields), read lazily."""
    now = time.time() if now is None else now
    refresh_last_played(conn)
    modes = channel_modes(conn, cfg)
    params = {
        "now": now,
        "fresh_before": now - cfg["storage.fresh_days"] * 86400,
        "always": json.dumps([c for c, m in modes.items() if m == "always"]),
        "never": json.dumps([c for c, m in modes.items() if m == "never"]),
        "expired": json.dumps(expired_sources(conn, now)),
    }
    for v in _unreferenced(conn) + _originals(conn):  # originals: tier 1, before expired/never resources
        yield astuple(v)
    cur = sq.eviction_candidates(conn, params)
    try:
        while rows := cur.fetchmany(2000):
            for num, rid, title, sha, size, last_played, reason, score in rows:
                yield (2 if reason == "lru" else 1, reason, sha, size, rid, num, title, last_played, score)
    finally:
        cur.close()


def iter_candidates(conn: sqlite3.Connection, cfg, *, now: float | None = None) -> Iterator[Victim]:
    """Every evictable blob, in eviction order (see the module docstring), produced lazily.

    The planner stops reading as soon as enough bytes are chosen, so a decision
    over 100,000 resources builds only the victims it takes.
    """
    stream = stream_candidates(conn, cfg, now)
    try:
        for t in stream:
            yield Victim(*t)
    finally:
        stream.close()


def candidates(conn: sqlite3.Connection, cfg, *, now: float | None = None) -> list[Victim]:
    """All candidates as a list (admin page, CLI dry runs, tests)."""
    return list(iter_candidates(conn, cfg, now=now))


def choose(victims: Iterable, need: int, keep: Iterable[str] = ()) -> tuple[list[Victim], int, bool]:
    """Take victims (``Victim`` or its field tuples) in order until ``need`` bytes are freed.

    Returns (chosen, bytes, exhausted).  ``keep``: blobs the caller is about to rely
    on (an import reusing a file already in the store) are never chosen.
    """
    picked, freed = [], 0
    seen = set(keep)
    it = iter(victims)
    exhausted = True
    try:
        for v in it:
            if freed >= need:
                exhausted = False
                break
            sha, size = (v.sha256, v.size) if isinstance(v, Victim) else (v[2], v[3])
            if sha in seen:
                continue
            seen.add(sha)
            picked.append(v)
            freed += size
    finally:
        close = getattr(it, "close", None)
        if close:
            close()  # release the planner's read cursor before anyone writes
    if exhausted and freed < need:
        return picked, freed, True  # a refusal: the caller needs only the bytes, not objects
    return [v if isinstance(v, Victim) else Victim(*v) for v in picked], freed, exhausted
