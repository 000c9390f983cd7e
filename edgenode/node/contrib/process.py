"""Processing a finished upload on the node, at idle priority, in the job runner's child process.

ffprobe says what the file really is (never its name); what is not video, audio
or a picture, or lies about its type, or is a decompression bomb, is refused and
deleted.  ffmpeg then writes a browser-playable copy with every container,
stream and chapter tag dropped (``-map_metadata -1``: GPS / ISO6709 location,
phone make and model, creation time) and only the first video and audio stream
kept (a phone's GPS or timecode data track is left behind); pictures are
re-encoded to JPEG, which leaves EXIF behind.  The copy is written beside the
ready file and renamed in, then the row moves to ``pending`` (待审核) in one
transaction: a killed run leaves only a temporary file, which the next run
replaces.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

from edgenode.core import jobs
from edgenode.core.db import open_main, open_volatile, transaction
from edgenode.core.errors import EdgenodeError
from edgenode.core.store import file_sha256, fsync_dir
from edgenode.node.contrib import queries as q
from edgenode.node.contrib import uploads
from edgenode.node.storage.transcode import low_priority

log = logging.getLogger(__name__)
IMAGE_CODECS = {"mjpeg", "png", "webp", "gif", "bmp", "tiff"}
OUT_EXT = {"video": "mp4", "audio": "m4a", "image": "jpg"}
# The demuxers each extension may be read by.  ffprobe guesses boldly (a text file probes as raw
# AMR-WB audio), so the container must be the one the name claims, not just "something".
_MOV = {"mov", "mp4", "m4a", "3gp"}
FORMATS = {"mp4": _MOV, "m4v": _MOV, "mov": _MOV, "3gp": _MOV, "m4a": _MOV, "mkv": {"matroska"},
           "webm": {"webm", "matroska"}, "avi": {"avi"}, "flv": {"flv"}, "wmv": {"asf"}, "asf": {"asf"},
           "wma": {"asf"}, "mpg": {"mpeg"}, "mpeg": {"mpeg"}, "vob": {"mpeg"}, "ts": {"mpegts"}, "rm": {"rm"},
           "rmvb": {"rm"}, "mp3": {"mp3"}, "aac": {"aac"}, "ogg": {"ogg"}, "oga": {"ogg"}, "opus": {"ogg"},
           "wav": {"wav"}, "flac": {"flac"}, "amr": {"amr"}, "jpg": {"jpeg_pipe", "image2"},
           "jpeg": {"jpeg_pipe", "image2"}, "png": {"png_pipe", "image2"}, "gif": {"gif"},
           "webp": {"webp_pipe", "image2"}}


def not_media(reason: str) -> EdgenodeError:
    return uploads.fail("E_CONTRIB_NOT_MEDIA", f"not a video, audio recording or picture ({reason})",
                        "这个文件不是视频、录音或图片，无法使用。", 415)


def _die_with_parent() -> None:
    try:  # ffmpeg must not outlive a killed job
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


def _run(cfg, cmd: list[str], *, timeout: int | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(low_priority() + cmd, capture_output=True, timeout=timeout, preexec_fn=_die_with_parent)
    except subprocess.TimeoutExpired:
        raise uploads.fail("E_MEDIA_TIMEOUT", f"{cmd[0]} took too long", "文件处理超时。", 500) from None


def probe(cfg, path: Path) -> dict:
    p = _run(cfg, [cfg["media.ffprobe"], "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                   str(path)], timeout=cfg["media.probe_timeout_seconds"])
    if p.returncode != 0:
        raise not_media("ffprobe cannot read it")
    return json.loads(p.stdout or b"{}")


def picture_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG, GIF, WebP or JPEG header, read before anything decodes the
    picture (ffprobe reports 0×0 for sizes its decoder will not take)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
        if head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X":
            return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
        if head[:2] == b"\xff\xd8":
            return _jpeg_size(f)
    return None


def _jpeg_size(f) -> tuple[int, int] | None:
    f.seek(2)
    for _ in range(1000):  # markers up to the first frame header
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        length = int.from_bytes(f.read(2), "big")
        if 0xC0 <= marker[1] <= 0xCF and marker[1] not in (0xC4, 0xC8, 0xCC):
            sof = f.read(5)
            return int.from_bytes(sof[3:5], "big"), int.from_bytes(sof[1:3], "big")
        f.seek(length - 2, os.SEEK_CUR)
    return None


def _check_picture(cfg, path: Path) -> None:
    size = picture_size(path)
    if size and size[0] * size[1] > cfg["contrib.max_pixels"]:
        raise uploads.fail("E_CONTRIB_BOMB", f"picture of {size[0]}x{size[1]} pixels is too large",
                           "图片尺寸太大（可能是恶意文件），无法使用。", 415)


def classify(cfg, info: dict) -> str:
    """video, audio or image from the streams themselves; a decompression bomb is refused here,
    before anything decodes it (ffprobe reads the size from the header)."""
    streams = info.get("streams") or []
    fmt = (info.get("format") or {}).get("format_name", "")
    pictures = [s for s in streams if s.get("codec_type") == "video" and s.get("codec_name") in IMAGE_CODECS]
    for s in pictures:
        w, h = s.get("width") or 0, s.get("height") or 0
        if not w or not h or w * h > cfg["contrib.max_pixels"]:
            raise uploads.fail("E_CONTRIB_BOMB", f"picture of {w}x{h} pixels is too large (or unreadable)",
                               "图片尺寸太大（可能是恶意文件），无法使用。", 415)
    if pictures and (fmt.endswith("_pipe") or fmt in ("image2", "gif")) and len(streams) == 1:
        return "image"
    video = [s for s in streams if s.get("codec_type") == "video" and s not in pictures
             and not (s.get("disposition") or {}).get("attached_pic")]
    if video:
        w, h = video[0].get("width") or 0, video[0].get("height") or 0
        if w * h > cfg["contrib.max_pixels"]:
            raise uploads.fail("E_CONTRIB_BOMB", f"video frame of {w}x{h} pixels is too large",
                               "视频画面尺寸太大（可能是恶意文件），无法使用。", 415)
        return "video"
    if any(s.get("codec_type") == "audio" for s in streams):
        return "audio"
    raise not_media("no audio, video or picture stream")


def _codecs(info: dict) -> tuple[str, str]:
    streams = info.get("streams") or []
    v = next((s["codec_name"] for s in streams if s.get("codec_type") == "video"
              and not (s.get("disposition") or {}).get("attached_pic")), "")
    a = next((s["codec_name"] for s in streams if s.get("codec_type") == "audio"), "")
    return v, a


def ffmpeg_command(cfg, src: Path, out: Path, kind: str, info: dict) -> list[str]:
    """The command that writes the clean copy (what the benchmark and the docs describe)."""
    cmd = [cfg["media.ffmpeg"], "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(src),
           "-map_metadata", "-1", "-map_chapters", "-1"]
    vcodec, acodec = _codecs(info)
    if kind == "image":
        return cmd + ["-map", "0:v:0", "-frames:v", "1", "-vf", "scale='min(2560,iw)':-2", "-q:v", "3",
                      "-f", "image2", "-c:v", "mjpeg", str(out)]
    if kind == "audio":
        audio = ["-c:a", "copy"] if acodec == "aac" else ["-c:a", "aac", "-b:a", "128k"]
        return cmd + ["-map", "0:a:0", "-vn", *audio, "-movflags", "+faststart", "-f", "mp4", str(out)]
    video = (["-c:v", "copy"] if vcodec == "h264" else
             ["-c:v", "libx264", "-preset", cfg["transcode.preset"], "-crf", str(cfg["transcode.crf"]),
              "-pix_fmt", "yuv420p", "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2"])
    audio = ["-c:a", "copy"] if acodec in ("aac", "") else ["-c:a", "aac", "-b:a", "128k"]
    return cmd + ["-map", "0:v:0", "-map", "0:a:0?", *video, *audio, "-movflags", "+faststart",
                  "-f", "mp4", str(out)]


def _poster(cfg, src: Path, out: Path, info: dict) -> None:
    try:
        at = min(5.0, float(info["format"]["duration"]) / 3)
    except (KeyError, TypeError, ValueError):
        at = 0.0
    p = _run(cfg, [cfg["media.ffmpeg"], "-nostdin", "-v", "error", "-ss", f"{at:.2f}", "-i", str(src),
                   "-map_metadata", "-1", "-frames:v", "1", "-vf", "scale=480:-2", "-q:v", "4", "-y", str(out)])
    if p.returncode != 0:
        out.unlink(missing_ok=True)


def process_one(cfg, conn, cid: str) -> dict:
    """Probe, refuse or clean one contribution in state ``processing``."""
    row = q.contribution(conn, cid)
    src = next(iter(uploads.area(cfg, "incoming").glob(f"{cid}.*")), None)
    if row is None or src is None:
        return {"id": cid, "state": "missing"}
    try:
        _check_picture(cfg, src)
        info = probe(cfg, src)
        kind = classify(cfg, info)
        ext = src.suffix.lower().lstrip(".")
        claimed = uploads.EXTS.get(ext)
        fmt = set((info.get("format") or {}).get("format_name", "").split(","))
        if kind != claimed or not fmt & FORMATS.get(ext, set()):
            raise uploads.fail("E_CONTRIB_LIES", f"named .{ext} ({claimed}) but holds {kind} in {','.join(fmt)}",
                               "文件内容和文件类型不符，请检查后重新上传。", 415)
        ready = _clean(cfg, cid, src, kind, info)
    except EdgenodeError as e:
        with transaction(conn):
            q.update(conn, cid, time.time(), state="failed", code=e.code, reason=e.zh, expect=("processing",))
        src.unlink(missing_ok=True)
        log.warning("contribution %s refused: %s", cid, e)
        return {"id": cid, "state": "failed", "code": e.code}
    facts = probe(cfg, ready)
    try:
        duration = float(facts["format"]["duration"]) if kind != "image" else None
    except (KeyError, TypeError, ValueError):
        duration = None
    with transaction(conn):
        q.update(conn, cid, time.time(), state="pending", kind=kind, ext=ready.suffix.lstrip("."),
                 size=ready.stat().st_size, sha256=file_sha256(ready), duration=duration, expect=("processing",))
    src.unlink(missing_ok=True)
    return {"id": cid, "state": "pending", "kind": kind}


def _clean(cfg, cid: str, src: Path, kind: str, info: dict) -> Path:
    ready_dir = uploads.area(cfg, "ready")
    out = ready_dir / f".{cid}.tmp.{OUT_EXT[kind]}"
    p = _run(cfg, ffmpeg_command(cfg, src, out, kind, info))
    if p.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        out.unlink(missing_ok=True)
        reason = p.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise not_media(f"ffmpeg: {reason[0][:120]}")
    if kind == "video":
        _poster(cfg, out, ready_dir / f"{cid}.poster.jpg", info)
    with open(out, "rb") as f:
        os.fsync(f.fileno())
    final = ready_dir / f"{cid}.{OUT_EXT[kind]}"
    os.replace(out, final)
    fsync_dir(ready_dir)
    return final


def ready_file(cfg, row) -> Path:
    return uploads.area(cfg, "ready") / f"{row['id']}.{row['ext']}"


def sweep_ready(cfg, conn) -> int:
    """Files left in ready/ by a crash after their row moved on (uploaded, rejected …), or a run
    killed mid-ffmpeg.  Only pending and approved works keep files here."""
    removed = 0
    for p in uploads.area(cfg, "ready").iterdir():
        cid = p.name.split(".", 1)[0]
        row = q.contribution(conn, cid) if uploads.UID.match(cid) else None
        if p.name.startswith(".") or row is None or row["state"] not in ("pending", "approved"):
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def process_all(cfg, conn) -> dict:
    """One run at a time (the scheduler's and ``edgenode contrib process``): a second one returns."""
    fd = os.open(uploads.area(cfg, "ready").parent / "process.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return {"processed": [], "expired": 0, "freed_bytes": 0, "swept": 0, "busy": True}
        out = {"processed": [], **uploads.expire(cfg, conn), "swept": sweep_ready(cfg, conn)}
        for row in q.contributions(conn, ("processing",)):
            out["processed"].append(process_one(cfg, conn, row["id"]))
        return out
    finally:
        os.close(fd)


def run_job(cfg, kind: str = "contrib_process", **_options) -> dict:
    """The scheduled job (and ``edgenode contrib process``): expire, then process what arrived."""
    conn, vconn = open_main(cfg), open_volatile(cfg)
    job_id = jobs.start(vconn, kind, "处理上传的作品")
    try:
        result = process_all(cfg, conn)
    except Exception as e:
        jobs.finish(vconn, job_id, "failed", f"{type(e).__name__}: {e}")
        raise
    finally:
        conn.close()
    n = len(result["processed"])
    jobs.finish(vconn, job_id, "done", f"processed {n}, expired {result['expired']}", result)
    vconn.close()
    return {"state": "done", "message": f"processed {n}", "result": result}
