"""The relay: during a broadcast's window, each segment comes over the link once, whatever the viewers.

The scheduler's child process (``jobs.child``, started every ``live.check_seconds``)
polls the origin's playlist and fetches every new segment once into
``DATA_DIR/live/<key>/``; nginx serves that folder to the room (``/live-hls/``),
so ten or fifty viewers cost the link nothing more.  Each file is written as
``.tmp-<name>``, fsynced, renamed and its directory fsynced: a SIGKILL or a power
cut at any moment leaves no partial segment and no torn playlist visible, and
the relay the scheduler starts next continues from the segments on disk.

When the link drops the room keeps the segments it has; the page says
信号中断，正在重连 (state ``interrupted``).  When the link returns the relay
jumps to the newest segments (``live.catchup_segments``): a live audience wants
now, not the past; what was skipped is backfilled for the replay (``replay.py``).

Caps: a segment above ``live.max_segment_mb`` is refused (``E_LIVE_SEGMENT_TOO_BIG``,
left to the replay's report); a playlist above the protocol's caps is refused
(``E_LIVE_PLAYLIST``); the relay never outlives the window plus
``live.grace_seconds``; below ``live.min_free_mb`` of free disk it stops
(``E_DISK_FULL``) and keeps what it wrote.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import math
import os
import shutil
import time
from pathlib import Path

from edgenode.core.store import fsync_dir
from edgenode.node.live import queries as q
from edgenode.protocol import live

log = logging.getLogger(__name__)
TMP = ".tmp-"
PLAYLIST = "index.m3u8"
WINDOW_SEGMENTS = 6
STATE_ZH = {"interrupted": "信号中断，正在重连", "no_stream": "直播信号还没有开始",
            "stopped": "存储空间已满，直播转发已停止", "refused": "直播地址不在允许的来源之内"}


class LinkDown(Exception):
    """The origin did not answer (timeout, refused, 5xx): keep serving, try again."""


def broadcast_dir(cfg, key: str) -> Path:
    return cfg.data_path / "live" / key


def write_atomic(directory: Path, name: str, data: bytes) -> None:
    """``.tmp-name`` written and fsynced, renamed over ``name``, the directory fsynced."""
    tmp = directory / (TMP + name)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data) if len(data) < (1 << 20) else _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, directory / name)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def clean_tmp(directory: Path) -> int:
    """What a killed relay left half-written: never visible (nginx refuses dot files), removed here."""
    n = 0
    for p in directory.glob(TMP + "*"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def segment_name(seq: int) -> str:
    return f"s{seq:08d}.ts"


def _too_big(url: str, size, cap: int) -> live.LiveError:
    if url.endswith(".m3u8"):
        return live.playlist_error(f"{url}: {size} bytes, more than {cap}: cut off")
    return live.LiveError("E_LIVE_SEGMENT_TOO_BIG", f"{url}: {size} bytes, more than {cap}",
                          "直播片段超过大小上限，已跳过")


def fetch(session, url: str, cap: int, *, timeout: float, etag: str | None = None, bwlimit: int = 0):
    """GET ``url`` into memory, at most ``cap`` bytes; ``(status, body, etag)``.  ``LinkDown`` when the link
    fails; ``bwlimit`` KiB/s paces the read (the backfill's share of a window)."""
    import requests
    headers = {"If-None-Match": etag} if etag else {}
    try:
        with session.get(url, headers=headers, timeout=timeout, stream=True) as r:
            if r.status_code >= 500:
                raise LinkDown(f"HTTP {r.status_code}")
            if r.status_code != 200:
                return r.status_code, b"", None
            if int(r.headers.get("Content-Length") or 0) > cap:  # refused before reading any of it
                raise _too_big(url, r.headers["Content-Length"], cap)
            chunks, size, began = [], 0, time.monotonic()
            for chunk in r.iter_content(64 * 1024):
                size += len(chunk)
                if size > cap:
                    raise _too_big(url, f"over {size}", cap)
                chunks.append(chunk)
                if bwlimit:
                    ahead = size / (bwlimit * 1024) - (time.monotonic() - began)
                    if ahead > 0:
                        time.sleep(ahead)
            return 200, b"".join(chunks), r.headers.get("ETag")
    except requests.RequestException as e:
        raise LinkDown(f"{type(e).__name__}: {e}") from None


def store_segment(cfg, conn, key: str, directory: Path, seg: live.Segment, data: bytes, how: str) -> None:
    """One segment to disk (atomically) and then its row: a kill between the two leaves a complete file that
    the next run records again."""
    floor = cfg["live.min_free_mb"] * 1024 * 1024
    if shutil.disk_usage(directory).free - len(data) < floor:
        raise OSError(errno.ENOSPC, "free space below live.min_free_mb", str(directory))
    write_atomic(directory, segment_name(seg.seq), data)
    q.add_segment(conn, key, seg.seq, seg.duration, len(data), hashlib.sha256(data).hexdigest(), how)


def local_playlist(rows: list[dict], *, ended: bool, window: int = WINDOW_SEGMENTS) -> str:
    """The room's playlist: the newest ``window`` relayed segments, numbered by their order on this node
    (so a skipped stretch does not break the media sequence) with a discontinuity where the origin's
    numbers jump."""
    shown = rows[-window:] if not ended else rows
    first = len(rows) - len(shown)
    gaps_before = sum(1 for a, b in zip(rows[:first], rows[1:first + 1]) if b["seq"] != a["seq"] + 1)
    target = max([math.ceil(r["duration"]) for r in rows] or [2])
    out = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}", f"#EXT-X-MEDIA-SEQUENCE:{first}",
           f"#EXT-X-DISCONTINUITY-SEQUENCE:{gaps_before}"]
    if ended:
        out.append("#EXT-X-PLAYLIST-TYPE:VOD")
    prev = rows[first - 1]["seq"] if first else None
    for r in shown:
        if prev is not None and r["seq"] != prev + 1:
            out.append("#EXT-X-DISCONTINUITY")
        out += [f"#EXTINF:{r['duration']:.3f},", segment_name(r["seq"])]
        prev = r["seq"]
    if ended:
        out.append("#EXT-X-ENDLIST")
    return "\n".join(out) + "\n"


def publish_playlist(conn, key: str, directory: Path, *, ended: bool) -> None:
    rows = [r for r in q.segments(conn, key) if r["how"] == "live"]
    if rows or ended:
        write_atomic(directory, PLAYLIST, local_playlist(rows, ended=ended).encode())


def _adopt_orphans(conn, key: str, directory: Path, pl: live.Playlist) -> None:
    # A kill between a segment's rename and its row: the file is whole (renamed only after fsync); record it.
    known = {r["seq"] for r in q.segments(conn, key)}
    for seg in pl.segments:
        path = directory / segment_name(seg.seq)
        if seg.seq not in known and path.is_file():
            data = path.read_bytes()
            q.add_segment(conn, key, seg.seq, seg.duration, len(data), hashlib.sha256(data).hexdigest(), "live")


def _choose(pl: live.Playlist, last_seq: int | None, catchup: int) -> list[live.Segment]:
    new = [s for s in pl.segments if last_seq is None or s.seq > last_seq]
    return new[-catchup:] if len(new) > catchup else new


def relay(cfg, conn, b: dict, *, stop_at: float | None = None, session=None) -> dict:
    """Relay one broadcast until its playlist ends or its window (plus grace) closes."""
    import requests
    from edgenode.node.live.schedule import origins

    key, directory = b["key"], broadcast_dir(cfg, b["key"])
    directory.mkdir(parents=True, exist_ok=True)
    clean_tmp(directory)
    allowed = origins(cfg, conn)
    try:
        live.check_origin(b["stream_url"], allowed)
    except live.LiveError as e:
        q.set_state(conn, key, "refused", e.code, e.zh)
        return {"state": "refused", "code": e.code}
    session = session or requests.Session()
    stop_at = stop_at if stop_at is not None else b["end"] + cfg["live.grace_seconds"]
    stats = {"segments": 0, "origin_bytes": 0, "skipped": 0, "errors": []}
    etag, state, first_seen, adopted, last_error, poll = None, None, None, False, (None, None), 1.0
    rows = q.segments(conn, key)
    last_seq = rows[-1]["seq"] if rows else None
    ended = False
    while time.time() < stop_at and not ended:
        try:
            status, body, new_etag = fetch(session, b["stream_url"], live.MAX_PLAYLIST_BYTES, etag=etag,
                                           timeout=cfg["live.timeout_seconds"])
            stats["origin_bytes"] += len(body)
            if status == 304:  # nothing new: ask again in half a segment
                _pause(poll)
                continue
            if status != 200:
                raise LinkDown(f"HTTP {status}") if first_seen else _NoStream(status)
            pl = live.parse_playlist(body.decode("utf-8", "replace"), b["stream_url"])
            etag = new_etag
            if not pl.segments:
                raise _NoStream(200)
            first_seen = first_seen or time.time()
            if not adopted:
                _adopt_orphans(conn, key, directory, pl)
                rows = q.segments(conn, key)
                last_seq, adopted = (rows[-1]["seq"] if rows else None), True
            for seg in _choose(pl, last_seq, cfg["live.catchup_segments"]):
                last_seq = _take(cfg, conn, session, b, directory, seg, stats, allowed)
            ended = pl.ended
            publish_playlist(conn, key, directory, ended=ended)
            state = _enter(conn, key, state, "live")
            poll = min(pl.target, 10) / 2
            _pause(poll)
        except (LinkDown, _NoStream) as e:
            state = _link_trouble(cfg, conn, b, state, e, first_seen)
            _pause(2.0)
        except live.LiveError as e:  # a broken playlist: report it, keep trying (the origin may mend it)
            stats["errors"].append(e.code)
            last_error = (e.code, e.zh)
            state = _enter(conn, key, state, "interrupted", e.code, e.zh)
            _pause(2.0)
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            q.set_state(conn, key, "stopped", "E_DISK_FULL", STATE_ZH["stopped"])
            log.warning("E_DISK_FULL: live %s: relay stopped, %d segments kept", key, len(q.segments(conn, key)))
            try:  # close the room's playlist; if even that does not fit, the previous one stays whole
                publish_playlist(conn, key, directory, ended=True)
            except OSError:
                pass
            return {"state": "stopped", "code": "E_DISK_FULL", **stats}
    publish_playlist(conn, key, directory, ended=True)
    if state != "no_stream":  # ended; still saying why, when the last thing seen was a refused playlist
        q.set_state(conn, key, "ended", *(last_error if state == "interrupted" else (None, None)))
    return {"state": "ended" if state != "no_stream" else "no_stream", **stats}


class _NoStream(Exception):
    pass


def _take(cfg, conn, session, b, directory, seg, stats, allowed) -> int:
    try:
        live.check_origin(seg.uri, allowed)
        status, data, _ = fetch(session, seg.uri, cfg["live.max_segment_mb"] * 1024 * 1024,
                                timeout=cfg["live.timeout_seconds"])
    except live.LiveError as e:  # too big, or pointing elsewhere: skipped, the replay reports the hole
        log.warning("%s: live %s segment %d skipped: %s", e.code, b["key"], seg.seq, e.message)
        stats["skipped"] += 1
        stats["errors"].append(e.code)
        return seg.seq
    if status != 200:
        raise LinkDown(f"segment {seg.seq}: HTTP {status}")
    stats["origin_bytes"] += len(data)
    store_segment(cfg, conn, b["key"], directory, seg, data, "live")
    stats["segments"] += 1
    return seg.seq


def _enter(conn, key: str, current: str | None, state: str, code: str | None = None, zh: str | None = None) -> str:
    if current != state:
        q.set_state(conn, key, state, code, zh)
    return state


def _link_trouble(cfg, conn, b: dict, state, e, first_seen) -> str:
    if isinstance(e, _NoStream) and first_seen is None:
        if time.time() >= b["start"] + cfg["live.no_stream_seconds"]:
            if state != "no_stream":
                log.warning("E_LIVE_NO_STREAM: live %s: no stream %d s after the start", b["key"],
                            cfg["live.no_stream_seconds"])
            return _enter(conn, b["key"], state, "no_stream", "E_LIVE_NO_STREAM", STATE_ZH["no_stream"])
        return state
    if state != "interrupted":
        log.warning("W_LIVE_LINK: live %s: %s", b["key"], e)
    return _enter(conn, b["key"], state, "interrupted", "W_LIVE_LINK", STATE_ZH["interrupted"])


def _pause(seconds: float) -> None:
    time.sleep(seconds)
