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


def classify(cfg, info: dict) -> str:
    """video, audio or image from the streams themselves; a decompression bomb is refused here,
    before anything decodes it (ffprobe reads the size from the header)."""
    streams = info.get("streams") or []
    fmt = (info.get("format") or {}).get("format_name", "")
    pictures = [s for s in streams if s.get("codec_type") == "video" and s.get("codec_name") in IMAGE_CODECS]
    for s in pictures:
        if (s.get("width") or 0) * (s.get("height") or 0) > cfg["contrib.max_pixels"]:
            raise uploads.fail("E_CONTRIB_BOMB", f"picture of {s.get('width')}x{s.get('height')} pixels is too large",
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
        info = probe(cfg, src)
        kind = classify(cfg, info)
        claimed = uploads.EXTS.get(src.suffix.lower().lstrip("."))
        if kind != claimed:
            raise uploads.fail("E_CONTRIB_LIES", f"named as {claimed} but holds {kind}",
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


def process_all(cfg, conn) -> dict:
    out = {"processed": [], **uploads.expire(cfg, conn)}
    for tmp in uploads.area(cfg, "ready").glob(".*.tmp.*"):
        tmp.unlink(missing_ok=True)  # a run killed mid-ffmpeg
    for row in q.contributions(conn, ("processing",)):
        out["processed"].append(process_one(cfg, conn, row["id"]))
    return out


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
