"""Uploads at the point: the tus core (create, append at an offset, terminate, expire), framework-free.

The bytes on disk are the truth: an upload's offset is the size of its
``DATA/contrib/uploads/<id>.part`` file, so a crash or a cut connection never makes
the node claim bytes it does not hold (see :func:`_copy_in` on fsync).
Every refusal is an :class:`EdgenodeError` with a stable ``E_CONTRIB_*`` code and
a Chinese message, raised *before* anything is written, so a refused upload
leaves the upload area as it was.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import sqlite3
import time
import unicodedata
from datetime import datetime
from pathlib import Path

from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.core.store import fsync_dir
from edgenode.node.contrib import queries as q
from edgenode.protocol.metadata import EXT_KIND

KINDS = ("video", "audio", "image")
EXTS = {ext: kind for ext, kind in EXT_KIND.items() if kind in KINDS}
UID = re.compile(r"^[0-9a-f]{32}$")
PHONE = re.compile(r"1[3-9]\d{9}|\d{3,4}[- ]?\d{7,8}")
# Bytes per read from the request and per write to the part file, into one reused buffer.  Not
# larger: on the reference VM a 1 MB write() into the page cache cost 5-10x what four of 256 KB
# did (the kernel fills fresh large folios), and gunicorn's body reads copy more per call.
READ = 256 * 1024
MB = 1024 * 1024
WRITEBACK = 32 * MB


def fail(code: str, message: str, zh: str, status: int = 400) -> EdgenodeError:
    return EdgenodeError(code, message, zh=zh, status=status)


def root(cfg) -> Path:
    return cfg.data_path / "contrib"


def area(cfg, name: str) -> Path:
    d = root(cfg) / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def part_path(cfg, uid: str) -> Path:
    return area(cfg, "uploads") / f"{uid}.part"


def today(now: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if now is None else now).strftime("%Y-%m-%d")


def safe_filename(name: str) -> str:
    """The file's own name, as a label only: no folders, no control characters, never a path we open."""
    name = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    return name[-100:]


def _text(meta: dict, key: str, limit: int, zh: str, *, required: bool = False) -> str:
    value = " ".join(str(meta.get(key) or "").split())
    if required and not value:
        raise fail("E_CONTRIB_FIELD", f"{key} is required", f"请填写{zh}。")
    if len(value) > limit:
        raise fail("E_CONTRIB_FIELD", f"{key} is longer than {limit} characters", f"{zh}不能超过 {limit} 个字。")
    if PHONE.search(value):
        raise fail("E_CONTRIB_PHONE", f"{key} looks like it holds a phone number; none is kept",
                   "请不要填写电话号码：服务点不保存电话号码。")
    return value


def check_meta(meta: dict, campaigns: set[str] | None = None) -> dict:
    """Cleaned metadata, or a refusal naming the field."""
    filename = safe_filename(meta.get("filename") or "")
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext not in EXTS:
        raise fail("E_CONTRIB_TYPE", f"unsupported file type {ext!r}; upload a video, audio recording or picture",
                   "不支持这种文件格式，请上传视频、录音或图片（如 mp4、mp3、jpg）。", 415)
    consent = str(meta.get("consent") or "").lower() in ("1", "true", "yes", "on")
    if not consent:
        raise fail("E_CONTRIB_CONSENT", "consent to publish is required", "请勾选“同意公开发布”后再上传。")
    campaign = str(meta.get("campaign") or "").strip()
    if campaign and campaigns is not None and campaign not in campaigns:
        raise fail("E_CONTRIB_CAMPAIGN", f"unknown campaign {campaign!r}", "没有这个征集活动，请重新选择。")
    return {"title": _text(meta, "title", 60, "作品名称", required=True), "credit": _text(meta, "credit", 30, "署名"),
            "campaign": campaign, "consent": True, "filename": filename, "ext": ext}


def check_room(cfg, conn: sqlite3.Connection, length: int, now: float | None = None) -> None:
    if length <= 0:
        raise fail("E_CONTRIB_EMPTY", "the file is empty", "文件是空的，请重新选择。")
    cap = cfg["contrib.max_file_mb"]
    if length > cap * MB:
        raise fail("E_CONTRIB_TOO_BIG", f"{length} bytes is over the {cap} MB limit per file",
                   f"文件太大：每个文件不能超过 {cap} MB。", 413)
    daily = cfg["contrib.daily_mb"]
    if q.day_total(conn, today(now)) + length > daily * MB:
        raise fail("E_CONTRIB_DAILY", f"today's uploads would pass the {daily} MB daily limit",
                   f"今天本服务点收到的作品已达上限（{daily} MB），请明天再传。", 413)
    free = shutil.disk_usage(area(cfg, "uploads")).free
    if free - length < cfg["store.free_space_floor_mb"] * MB:
        raise disk_full()


def disk_full() -> EdgenodeError:
    return fail("E_DISK_FULL", "not enough free disk space for this upload",
                "服务点存储空间不足，暂时不能上传，请告诉管理员。", 507)


def create(cfg, conn: sqlite3.Connection, length: int, meta: dict, *, campaigns: set[str] | None = None,
           now: float | None = None) -> str:
    """A new upload: the metadata and caps checked, an empty part file, a row.  Returns its id."""
    meta = check_meta(meta, campaigns)
    now = time.time() if now is None else now
    with transaction(conn):  # the daily cap: two phones starting at once must not both pass it
        check_room(cfg, conn, length, now)
        uid = secrets.token_hex(16)
        fd = os.open(part_path(cfg, uid), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        q.insert_upload(conn, uid, length, json.dumps(meta, ensure_ascii=False), today(now), now)
    return uid


def gone() -> EdgenodeError:
    return fail("E_CONTRIB_GONE", "no such upload (finished, expired or never started)",
                "这个上传已过期或不存在，请重新选择文件上传。", 404)


def get(conn: sqlite3.Connection, uid: str):
    row = q.upload(conn, uid) if UID.match(uid or "") else None
    if row is None:
        raise gone()
    return row


def offset(cfg, conn: sqlite3.Connection, uid: str) -> tuple[int, int]:
    """``(offset, length)`` of an upload."""
    row = get(conn, uid)
    if row["done"]:
        return row["length"], row["length"]
    try:
        return part_path(cfg, uid).stat().st_size, row["length"]
    except FileNotFoundError:
        raise gone() from None


def append(cfg, conn: sqlite3.Connection, uid: str, at: int, stream, declared: int | None = None) -> int:
    """Write the body at offset ``at``; returns the new offset (what reached the disk, fsynced).
    A cut connection keeps what arrived; the upload resumes from there."""
    row = get(conn, uid)
    if row["done"]:
        raise fail("E_CONTRIB_OFFSET", "this upload is already complete", "文件已经上传完成。", 409)
    length = row["length"]
    try:
        fd = os.open(part_path(cfg, uid), os.O_WRONLY)
    except FileNotFoundError:
        raise gone() from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise fail("E_CONTRIB_BUSY", "another request is writing this upload", "正在上传中，请稍候。", 423) from None
        size = os.fstat(fd).st_size
        if at != size:
            raise fail("E_CONTRIB_OFFSET", f"offset {at} does not match the {size} bytes received",
                       "上传位置不对，正在重新续传。", 409)
        if declared is not None and at + declared > length:
            raise fail("E_CONTRIB_TOO_LONG", "more bytes than the declared length", "文件比声明的大。", 413)
        size = _copy_in(fd, size, length, stream)
    finally:
        os.close(fd)
    with transaction(conn):
        q.touch_upload(conn, uid, time.time())
    if size == length:
        finish(cfg, conn, uid)
    return size


def _copy_in(fd: int, size: int, length: int, stream) -> int:
    """Append what the request brings.  Only the complete file is fsynced (in :func:`finish`'s
    path): a part file's size is what reached the disk, and ext4/XFS never show an appended size
    whose data was lost, so after a power cut HEAD answers a smaller offset and the client resends
    from there.  Write-back starts every WRITEBACK bytes so the final fsync is short and an upload
    does not push the store's hot pages out of the cache.  The body is read into one buffer, not
    into a new bytes object per read (docs/contrib.md "Upload speed")."""
    os.lseek(fd, size, os.SEEK_SET)
    flushed = size
    buf = memoryview(bytearray(READ))
    readinto = _readinto(stream)
    while size < length:
        try:
            n = readinto(buf[:min(READ, length - size)])
        except Exception:  # the client went away (a cut link): keep what arrived
            break
        if not n:
            break
        _write_all(fd, size, buf[:n])
        size += n
        if size - flushed >= WRITEBACK:
            os.posix_fadvise(fd, flushed, size - flushed, os.POSIX_FADV_DONTNEED)
            flushed = size
    else:
        if readinto(buf[:1]):
            raise fail("E_CONTRIB_TOO_LONG", "more bytes than the declared length", "文件比声明的大。", 413)
        os.fsync(fd)
    return size


def _readinto(stream):
    """The stream's ``readinto``, or one made from its ``read``."""
    if hasattr(stream, "readinto"):
        return stream.readinto

    def readinto(b) -> int:
        data = stream.read(len(b))
        b[:len(data)] = data
        return len(data)
    return readinto


def _write_all(fd: int, size: int, view: memoryview) -> None:
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError as e:
        os.ftruncate(fd, size)  # back to the last whole write: the offset we answer stays true
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full() from None
        raise


def finish(cfg, conn: sqlite3.Connection, uid: str) -> None:
    """The whole file is here: move it to incoming/ and make its contribution row (state processing)."""
    row = q.upload(conn, uid)
    meta = json.loads(row["meta"])
    dest = area(cfg, "incoming") / f"{uid}.{meta['ext']}"
    src = part_path(cfg, uid)
    if src.exists():
        os.replace(src, dest)
        fsync_dir(dest.parent)
    with transaction(conn):
        if q.mark_upload_done(conn, uid):
            q.insert_contribution(conn, uid, meta, time.time())


def terminate(cfg, conn: sqlite3.Connection, uid: str) -> None:
    row = get(conn, uid)
    if row["done"]:
        raise fail("E_CONTRIB_OFFSET", "a finished upload cannot be cancelled here", "文件已经上传完成。", 409)
    part_path(cfg, uid).unlink(missing_ok=True)
    with transaction(conn):
        q.delete_upload(conn, uid)


def expires_at(cfg, row) -> float:
    return row["touched_at"] + cfg["contrib.expire_hours"] * 3600


def expire(cfg, conn: sqlite3.Connection, now: float | None = None) -> dict:
    """Delete uploads untouched for ``contrib.expire_hours`` and part files with no row; recover
    uploads whose file was moved but whose row was not yet written (a crash in :func:`finish`)."""
    now = time.time() if now is None else now
    removed = freed = 0
    for r in q.stale_uploads(conn, now - cfg["contrib.expire_hours"] * 3600):
        p = part_path(cfg, r["id"])
        freed += p.stat().st_size if p.exists() else 0
        p.unlink(missing_ok=True)
        with transaction(conn):
            q.delete_upload(conn, r["id"])
        removed += 1
    known = q.open_upload_ids(conn)
    for p in area(cfg, "uploads").glob("*.part"):
        if p.stem not in known and now - p.stat().st_mtime > 600:  # never a file created this moment
            freed += p.stat().st_size
            p.unlink(missing_ok=True)
            removed += 1
    for uid in known:
        row = q.upload(conn, uid)
        meta = json.loads(row["meta"])
        if not part_path(cfg, uid).exists() and (area(cfg, "incoming") / f"{uid}.{meta['ext']}").exists():
            finish(cfg, conn, uid)
    with transaction(conn):
        q.old_done_uploads(conn, now - 3 * 86400)
    return {"expired": removed, "freed_bytes": freed}
