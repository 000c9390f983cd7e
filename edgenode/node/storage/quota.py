"""Quota and free-space floor: make room before an import, or refuse before anything changes.

Two limits, both optional:

* ``store.quota_gb``: the content store may hold at most this much (GiB, 2^30 bytes);
* ``store.free_space_floor_mb``: the data disk keeps at least this much free.

:func:`make_room` works out how many bytes must go so that ``needed`` more fit
under both, asks the eviction policy for victims in order, and either refuses
with ``E_NO_ROOM`` (nothing touched) or evicts: first the catalogue change in
one transaction (the resource becomes 可预约下载, its blob row goes), then the
files.  A crash between the two leaves files nobody counts; :func:`sweep`
removes them on the next run.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Iterable

from edgenode.node.catalog import queries as q
from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.core.locks import import_lock, storage_lock
from edgenode.node.storage import eviction
from edgenode.node.storage import queries as sq
from edgenode.core.store import DiskFull, Store, fsync_dir

log = logging.getLogger(__name__)

GIB = 1024 ** 3
MIB = 1024 ** 2


class NoRoom(EdgenodeError):
    def __init__(self, message: str, zh: str):
        super().__init__("E_NO_ROOM", message, zh=zh, status=507)


@dataclass
class Plan:
    needed: int
    used: int               # bytes the store holds (the blobs table)
    quota: int              # 0: no quota
    free: int               # free bytes on the store's filesystem
    floor: int
    to_free: int            # bytes that must go for ``needed`` to fit
    victims: list = field(default_factory=list)
    freeing: int = 0
    evictable: int | None = 0  # bytes the policy could free at most (None: not all read)
    done: bool = False

    @property
    def fits(self) -> bool:
        return self.freeing >= self.to_free

    def as_dict(self) -> dict:
        return {"needed": self.needed, "used": self.used, "quota": self.quota, "free": self.free,
                "floor": self.floor, "to_free": self.to_free, "freeing": self.freeing, "fits": self.fits,
                "evictable": self.evictable, "done": self.done, "victims": [v.as_dict() for v in self.victims]}


def used_bytes(conn: sqlite3.Connection) -> int:
    return sq.stored_bytes(conn)


def limits(cfg) -> tuple[int, int]:
    return int(cfg["store.quota_gb"] * GIB), cfg["store.free_space_floor_mb"] * MIB


def plan(conn: sqlite3.Connection, store: Store, cfg, needed: int, *, now: float | None = None,
         keep: Iterable[str] = ()) -> Plan:
    """What would have to go for ``needed`` more bytes to fit (changes nothing)."""
    if needed < 0:
        raise EdgenodeError("E_BAD_SIZE", f"needed bytes must not be negative: {needed}", zh="大小不正确")
    quota, floor = limits(cfg)
    used = used_bytes(conn)
    free = store.free_bytes()
    to_free = max(0, floor + needed - free)
    if quota:
        to_free = max(to_free, used + needed - quota)
    p = Plan(needed, used, quota, free, floor, to_free)
    if to_free:
        p.victims, p.freeing, exhausted = eviction.choose(eviction.stream_candidates(conn, cfg, now), to_free,
                                                          keep)
        # Known exactly only when every candidate was read, which is when it matters (the refusal).
        p.evictable = p.freeing if exhausted else None
    return p


def _refuse(p: Plan) -> NoRoom:
    if p.quota and p.needed > p.quota:
        return NoRoom(f"{p.needed} bytes are larger than the whole quota ({p.quota} bytes, store.quota_gb); "
                      "nothing was changed", zh=f"存储空间不足：需要 {_mb(p.needed)}，超过了存储上限 {_mb(p.quota)}。"
                                                "本次导入未开始，已有内容没有任何改动。")
    pinned = "everything left is pinned, fresh or shared" if p.evictable == 0 else \
        f"only {p.evictable} bytes are evictable"
    limit = f"quota {p.quota} bytes, {p.used} used" if p.quota else "no quota"
    return NoRoom(f"not enough room for {p.needed} bytes: {p.to_free} bytes would have to be freed but {pinned} "
                  f"({limit}; {p.free} bytes free on disk, floor {p.floor}). Nothing was changed; unpin items, "
                  "set channels to on_demand, raise store.quota_gb or add a disk.",
                  zh=f"存储空间不足：需要 {_mb(p.needed)}，可腾出的空间不够（固定保存或新到的内容不会被删除）。"
                     "本次导入未开始，已有内容没有任何改动。请在“存储”页调整订阅或固定内容。")


def _mb(n: int) -> str:
    return f"{n / MIB:.1f} MB"


def make_room(conn: sqlite3.Connection, store: Store, cfg, needed: int, *, now: float | None = None,
              dry_run: bool = False, keep: Iterable[str] = ()) -> Plan:
    """Make ``needed`` bytes fit under the quota and above the free-space floor.

    Evicts per policy and returns the plan, or raises ``E_NO_ROOM`` before
    anything changes.  The import pipeline calls this before copying, inside its
    import lock, with ``keep`` = every blob the bundle lists (a file it finds
    already in the store must not be evicted under it).  Callers outside an
    import use :func:`evict_now`, which takes the import lock first.
    """
    with storage_lock(cfg):
        sweep(conn, store)
        p = plan(conn, store, cfg, needed, now=now, keep=keep)
        if not p.fits:
            if p.needed + p.floor > p.free + p.used:
                # Not even an empty store would make it fit: the disk is too small, eviction is moot.
                raise DiskFull(f"need {p.needed} bytes but the disk has {p.free} free (+{p.used} in the store) "
                               f"and keeps a floor of {p.floor}; nothing was changed")
            raise _refuse(p)
        if p.victims and not dry_run:
            evict(conn, store, p.victims, now=now, cfg=cfg)
            p.done = True
        return p


def evict_now(conn: sqlite3.Connection, store: Store, cfg, needed: int = 0, *, dry_run: bool = False) -> Plan:
    """:func:`make_room` for the CLI, the admin page and transcoding: never while an import runs.

    An import decides which listed files it need not copy before it calls
    ``make_room``; an eviction from elsewhere in that window could remove one.
    """
    with import_lock(cfg):
        return make_room(conn, store, cfg, needed, dry_run=dry_run)


def evict(conn: sqlite3.Connection, store: Store, victims: list, *, now: float | None = None, cfg=None) -> None:
    """Catalogue first (one transaction), then the files.

    With ``cfg``, other hard links to an evicted blob under the data directory's
    rsync mirror (``sync/staging``, linked by the content pull to save a copy) go
    too: otherwise removing the store's name would free no disk space.
    """
    now = time.time() if now is None else now
    linked = set()
    for v in victims:
        try:
            st = store.path_for(v.sha256).stat()
        except FileNotFoundError:
            continue
        if st.st_nlink > 1:
            linked.add((st.st_dev, st.st_ino))
    nums = []
    with transaction(conn):
        for v in victims:
            if v.reason == "unreferenced":
                q.delete_blob_if_unreferenced(conn, v.sha256)
            elif v.reason == "original":
                q.drop_original_blob(conn, v.resource_num)
                q.delete_blob(conn, v.sha256)
            else:
                sq.upsert_evicted(conn, v.resource_num, v.sha256, v.reason, now)
                q.delete_blob(conn, v.sha256)
                nums.append(v.resource_num)
        if nums:
            q.refresh_visibility(conn, nums)
    for v in victims:
        _unlink(store, v.sha256)
        log.info("evicted %s (%s, %d bytes, %s)", v.resource_id or v.sha256[:16], v.reason, v.size,
                 "tier %d" % v.tier)
    if linked and cfg is not None:
        unlink_mirror_copies(cfg.data_path / "sync" / "staging", linked)


def unlink_mirror_copies(root, inodes: set) -> int:
    """Remove files under ``root`` that are hard links to the given (dev, inode) pairs."""
    n = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) in inodes:
                os.unlink(path)
                n += 1
    return n


def _unlink(store: Store, sha256: str) -> None:
    path = store.path_for(sha256)
    try:
        path.unlink()
    except FileNotFoundError:
        return
    fsync_dir(path.parent)


def sweep(conn: sqlite3.Connection, store: Store) -> int:
    """Remove files an interrupted eviction left behind (evicted, no blob row); returns how many."""
    n = 0
    for (sha,) in sq.evicted_without_blob(conn):
        if store.has(sha):
            _unlink(store, sha)
            n += 1
    return n


def status(conn: sqlite3.Connection, store: Store, cfg) -> dict:
    quota, floor = limits(cfg)
    disk = shutil.disk_usage(store.root)
    used = used_bytes(conn)
    counts = sq.state_counts(conn)
    pinned = sq.pinned_count(conn)
    on_request = sq.on_request_count(conn)
    return {
        "used_bytes": used, "quota_bytes": quota,
        "quota_percent": round(100 * used / quota, 1) if quota else None,
        "disk_total_bytes": disk.total, "disk_free_bytes": disk.free, "floor_bytes": floor,
        "headroom_bytes": max(0, min(disk.free - floor, (quota - used) if quota else disk.free - floor)),
        "pinned": pinned, "on_request": on_request, "evicted_total": counts.get("evicted", 0),
    }
