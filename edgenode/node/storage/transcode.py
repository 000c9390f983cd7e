"""Idle-time transcoding of formats browsers cannot play (WMV, RMVB, FLV, MPEG-2 …) to H.264/AAC MP4.

* Queue: resources with ``playable = 0`` (video or audio) whose file is on disk.
  A file that failed ``transcode.max_attempts`` times stays as it is, with the
  error shown, until its source changes.
* Only inside ``transcode.idle_hours`` (checked before every job, so a run stops
  when the window closes), one job at a time (a lock file), at the lowest CPU
  and I/O priority (``nice -n 19``, ``ionice -c 3``).
* Crash-safe: ffmpeg writes ``store/.staging/transcode-<num>.<ext>``, never
  the store; the result is verified with ffprobe (playable codecs, same
  duration), then enters the store by ``Store.put_file`` and the catalogue
  switches to it in ONE transaction.  A killed job leaves only that staging
  file, which the next run deletes before starting the job again from the
  beginning (ffmpeg cannot continue a half-written MP4, so "resume" is a
  restart; finished jobs are never redone).  ffmpeg dies with its worker
  (``PR_SET_PDEATHSIG``), so no orphan keeps writing.
* A failure leaves the original in place and the error in ``transcode_jobs``.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from edgenode.node.catalog import media
from edgenode.node.catalog import queries as q
from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.core.locks import import_lock
from edgenode.node.storage import queries as sq
from edgenode.node.storage import quota
from edgenode.core.idle import is_idle
from edgenode.core.store import Store

log = logging.getLogger(__name__)

PREFIX = "transcode-"


class TranscodeError(EdgenodeError):
    def __init__(self, message: str):
        super().__init__("E_TRANSCODE", message, zh="格式转换失败，原文件保持不变：" + message, status=500)


def queue(conn: sqlite3.Connection, cfg) -> list[dict]:
    return [dict(r) for r in sq.transcode_queue(conn, cfg["transcode.max_attempts"])]


def status(conn: sqlite3.Connection, cfg, *, now: datetime | None = None) -> dict:
    now = now or datetime.now()
    jobs = [dict(r) for r in sq.recent_jobs(conn)]
    return {
        "enabled": cfg["transcode.enabled"], "idle_hours": cfg["transcode.idle_hours"],
        "idle_now": is_idle(cfg["transcode.idle_hours"], now),
        "queue": queue(conn, cfg),
        "failed": [j for j in jobs if j["state"] == "failed"],
        "running": [j for j in jobs if j["state"] == "running"],
        "done": [j for j in jobs if j["state"] == "done"][:20],
    }


def command(cfg, src: Path, out: Path, kind: str) -> list[str]:
    """The ffmpeg command (without the nice/ionice prefix); the benchmark runs exactly this."""
    cmd = [cfg["media.ffmpeg"], "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(src)]
    if kind == "video":
        cmd += ["-map", "0:v:0", "-map", "0:a:0?", "-c:v", "libx264", "-preset", cfg["transcode.preset"],
                "-crf", str(cfg["transcode.crf"]), "-pix_fmt", "yuv420p",
                "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2"]
    else:
        cmd += ["-vn", "-map", "0:a:0"]
    cmd += ["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-movflags", "+faststart", "-f", "mp4", str(out)]
    return cmd


def low_priority() -> list[str]:
    prefix = []
    if shutil.which("nice"):
        prefix += ["nice", "-n", "19"]
    if shutil.which("ionice"):
        prefix += ["ionice", "-c", "3"]
    return prefix


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG survives exec of nice/ionice/ffmpeg (they are not setuid).
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


def staging_path(store: Store, num: int, kind: str) -> Path:
    return store.staging / f"{PREFIX}{num}.{'mp4' if kind == 'video' else 'm4a'}"


@contextmanager
def _lock(cfg):
    cfg.data_path.mkdir(parents=True, exist_ok=True)
    fd = os.open(cfg.data_path / "transcode.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def run(conn: sqlite3.Connection, store: Store, cfg, *, now=None, force_window: bool = False,
        max_jobs: int | None = None) -> dict:
    """Transcode queued files one at a time while the idle window is open.

    ``now`` is a callable returning the local ``datetime`` (injected by tests);
    it is asked before every job so a run ends when the window closes.
    """
    clock = now or datetime.now
    out = {"ran": 0, "done": [], "failed": [], "reason": ""}
    if not cfg["transcode.enabled"]:
        out["reason"] = "transcode.enabled is false"
        return out
    with _lock(cfg) as mine:
        if not mine:
            out["reason"] = "another transcode is running"
            return out
        _cleanup_stale(conn, store)
        tried: set[int] = set()
        while max_jobs is None or out["ran"] < max_jobs:
            if not force_window and not is_idle(cfg["transcode.idle_hours"], clock()):
                out["reason"] = "outside the idle hours " + ", ".join(cfg["transcode.idle_hours"] or ["(none)"])
                break
            pending = [i for i in queue(conn, cfg) if i["num"] not in tried]
            if not pending:
                out["reason"] = "queue empty"
                break
            item = pending[0]
            tried.add(item["num"])  # a failure is retried on a later run, not in a tight loop
            out["ran"] += 1
            try:
                transcode_one(conn, store, cfg, item)
                out["done"].append(item["id"])
            except EdgenodeError as e:
                out["failed"].append({"id": item["id"], "code": e.code, "error": e.message})
    return out


def _cleanup_stale(conn: sqlite3.Connection, store: Store) -> None:
    """Under the lock nothing else transcodes: 'running' rows and staging outputs are leftovers."""
    for p in store.staging.glob(PREFIX + "*"):
        p.unlink(missing_ok=True)
    with transaction(conn):
        sq.fail_running_jobs(conn)


def _start(conn, item) -> None:
    with transaction(conn):
        sq.start_job(conn, item["num"], item["sha256"], os.getpid(), time.time())


def _fail(conn, num: int, message: str) -> None:
    with transaction(conn):
        sq.fail_job(conn, num, message[:500], time.time())


def transcode_one(conn: sqlite3.Connection, store: Store, cfg, item: dict) -> dict:
    """Transcode one resource, verify, store and switch the catalogue; raises TranscodeError on failure."""
    num, kind = item["num"], item["kind"]
    out = staging_path(store, num, kind)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    _start(conn, item)
    started = time.monotonic()
    try:
        _encode(cfg, store.path_for(item["sha256"]), out, kind, item.get("duration"))
        facts = _verify(cfg, out, kind, item.get("duration"))
        # Room, store and switch under the import lock: an import running now may be relying on a
        # blob it found in the store, which an eviction here must not pull from under it.
        with import_lock(cfg):
            quota.make_room(conn, store, cfg, out.stat().st_size)
            put = store.put_file(out)
            result = _switch(conn, store, cfg, item, put, facts, time.monotonic() - started)
    except EdgenodeError as e:
        _fail(conn, num, e.message)
        log.warning("transcode of %s failed: %s", item["id"], e.message)
        raise
    finally:
        out.unlink(missing_ok=True)
    log.info("transcoded %s: %s → %s in %.1fs", item["id"], item["sha256"][:12], result["sha256"][:12],
             result["seconds"])
    return result


def _encode(cfg, src: Path, out: Path, kind: str, duration: float | None) -> None:
    if not src.is_file():
        raise TranscodeError(f"the original file {src.name} is missing from the store")
    timeout = max(600.0, (duration or 0) * 20)
    cmd = low_priority() + command(cfg, src, out, kind)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
    except FileNotFoundError:
        raise TranscodeError(f"{cfg['media.ffmpeg']} is not installed") from None
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise TranscodeError(f"ffmpeg took longer than {timeout:.0f}s") from None
    if proc.returncode != 0:
        lines = err.decode("utf-8", "replace").strip().splitlines()
        raise TranscodeError(f"ffmpeg failed (exit {proc.returncode}): {(lines or ['no message'])[-1][:300]}")


def _verify(cfg, out: Path, kind: str, duration: float | None) -> media.MediaFacts:
    """One ffprobe: an MP4 whose streams browsers play, lasting as long as the original.

    ffmpeg has already decoded every input frame to write it; the probe checks the
    container is whole and says what it holds (one process: cheap beside the encode).
    """
    if not out.is_file() or out.stat().st_size == 0:
        raise TranscodeError("ffmpeg produced no output")
    cmd = [cfg["media.ffprobe"], "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(out)]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=cfg["media.probe_timeout_seconds"])
        info = json.loads(p.stdout or b"{}") if p.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError):
        info = None
    if not info:
        raise TranscodeError("the result does not verify: ffprobe cannot read it")
    streams = info.get("streams", [])
    vcodec = next((st.get("codec_name", "") for st in streams if st.get("codec_type") == "video"), "")
    acodec = next((st.get("codec_name", "") for st in streams if st.get("codec_type") == "audio"), "")
    video = next((st for st in streams if st.get("codec_type") == "video"), {})
    if kind == "video" and vcodec != "h264" or acodec not in ("", "aac") or (kind == "audio" and acodec != "aac"):
        raise TranscodeError(f"the result is not browser-playable ({vcodec or '-'},{acodec or '-'})")
    if "mp4" not in info.get("format", {}).get("format_name", ""):
        raise TranscodeError("the result is not an MP4 file")
    try:
        got = float(info["format"]["duration"])
    except (KeyError, TypeError, ValueError):
        raise TranscodeError("the result has no duration (incomplete)") from None
    if duration and abs(got - duration) > max(1.0, 0.02 * duration):
        raise TranscodeError(f"the result lasts {got:.1f}s, the original {duration:.1f}s")
    ext = "mp4" if kind == "video" else "m4a"
    return media.MediaFacts(kind=kind, ext=ext, mime=media.MIME[ext], duration=got, width=video.get("width"),
                            height=video.get("height"), codecs=",".join(c for c in (vcodec, acodec) if c),
                            playable=True)


def _switch(conn, store: Store, cfg, item: dict, put, facts: media.MediaFacts, seconds: float) -> dict:
    """Point the catalogue at the new blob in one transaction; drop or keep the original."""
    num, old = item["num"], item["sha256"]
    keep = cfg["transcode.keep_original"]
    with transaction(conn):
        row = sq.resource_sha(conn, num)
        if row is None or row[0] != old:
            # The resource was updated or removed while we worked: this result is for an old file.
            sq.delete_job(conn, num)
            raise TranscodeError("the resource changed during the transcode; it will be queued again")
        q.record_blob(conn, put.sha256, put.size)
        q.switch_file(conn, num, put.sha256, put.size, facts.mime, facts.ext, facts.codecs, facts.duration,
                      facts.width, facts.height, time.time())
        q.set_main_blob(conn, num, put.sha256)
        if keep:
            q.keep_original_blob(conn, num, old)
        drop = not keep and not sq.blob_in_use(conn, old)
        if drop:
            q.delete_blob(conn, old)
        sq.finish_job(conn, num, put.sha256, time.time(), seconds)
        q.refresh_visibility(conn, [num])
    if drop:
        # After the commit: a crash here leaves an unreferenced file that `store gc` removes.
        store.path_for(old).unlink(missing_ok=True)
    return {"resource_id": item["id"], "sha256": put.sha256, "size": put.size, "kept_original": keep,
            "seconds": round(seconds, 2)}
