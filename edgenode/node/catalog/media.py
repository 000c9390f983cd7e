"""Media facts from ffprobe/ffmpeg: kind, duration, codecs, browser playability, poster frames.

Framework-free.  Every failure is an :class:`MediaError` with a stable code.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgenode.core.errors import EdgenodeError
from edgenode.protocol.metadata import EXT_KIND

MIME = {
    "mp4": "video/mp4", "m4v": "video/mp4", "webm": "video/webm", "mkv": "video/x-matroska",
    "mov": "video/quicktime", "avi": "video/x-msvideo", "wmv": "video/x-ms-wmv", "asf": "video/x-ms-asf",
    "rmvb": "application/vnd.rn-realmedia-vbr", "rm": "application/vnd.rn-realmedia", "flv": "video/x-flv",
    "mpg": "video/mpeg", "mpeg": "video/mpeg", "ts": "video/mp2t", "vob": "video/mpeg", "3gp": "video/3gpp",
    "mp3": "audio/mpeg", "m4a": "audio/mp4", "aac": "audio/aac", "ogg": "audio/ogg", "oga": "audio/ogg",
    "opus": "audio/ogg", "wav": "audio/wav", "flac": "audio/flac", "wma": "audio/x-ms-wma", "amr": "audio/amr",
    "pdf": "application/pdf", "epub": "application/epub+zip",
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
    "vtt": "text/vtt",  # subtitles, sanitised on import (catalog/subtitles.py)
}
# What today's browsers (chromium, Safari, phone browsers) play natively.
PLAYABLE_CONTAINERS = {"mp4", "m4v", "webm", "mp3", "m4a", "aac", "ogg", "oga", "opus", "wav", "flac"}
PLAYABLE_VIDEO = {"h264", "vp8", "vp9", "av1"}
PLAYABLE_AUDIO = {"aac", "mp3", "opus", "vorbis", "flac", "pcm_s16le", "pcm_u8"}
IMAGE_MAGIC = {b"\xff\xd8\xff": "jpg", b"\x89PNG\r\n\x1a\n": "png", b"GIF87a": "gif", b"GIF89a": "gif"}


class MediaError(EdgenodeError):
    pass


@dataclass
class MediaFacts:
    kind: str
    ext: str
    mime: str
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    codecs: str = ""
    playable: bool = True


def kind_of(path: Path | str) -> tuple[str, str]:
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in EXT_KIND:
        raise MediaError("E_UNSUPPORTED_TYPE",
                         f"{Path(path).name}: unsupported file type '.{ext}'; supported: "
                         + ", ".join(sorted(EXT_KIND)), zh="不支持这种文件格式")
    return EXT_KIND[ext], ext


def probe(path: Path | str, *, ffprobe: str = "ffprobe", ffmpeg: str = "ffmpeg", timeout: int = 60) -> MediaFacts:
    path = Path(path)
    if not path.is_file():
        raise MediaError("E_NO_FILE", f"{path}: no such file", zh="文件不存在")
    kind, ext = kind_of(path)
    facts = MediaFacts(kind=kind, ext=ext, mime=MIME[ext])
    if path.stat().st_size == 0:
        raise MediaError("E_MEDIA_CORRUPT", f"{path.name}: file is empty", zh="文件是空的")
    if kind == "pdf":
        _check_pdf(path)
    elif kind == "epub":
        _check_epub(path)
    elif kind == "image":
        _check_image(path, ext)
    else:
        _probe_av(path, facts, ffprobe, ffmpeg, timeout)
    return facts


def _check_pdf(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(1024)
        f.seek(max(0, path.stat().st_size - 2048))
        tail = f.read()
    if not head.startswith(b"%PDF-") or b"%%EOF" not in tail:
        raise MediaError("E_MEDIA_CORRUPT", f"{path.name}: not a complete PDF file", zh="PDF 文件已损坏或不完整")


def _check_epub(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if "META-INF/container.xml" not in names or z.testzip() is not None:
                raise zipfile.BadZipFile("missing container or bad member")
    except (zipfile.BadZipFile, OSError, EOFError):
        raise MediaError("E_MEDIA_CORRUPT", f"{path.name}: not a valid EPUB file", zh="电子书文件已损坏") from None


def _check_image(path: Path, ext: str) -> None:
    with open(path, "rb") as f:
        head = f.read(16)
    ok = any(head.startswith(m) for m in IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    if not ok:
        raise MediaError("E_MEDIA_CORRUPT", f"{path.name}: not a valid image", zh="图片文件已损坏")


def _run(cmd: list[str], timeout: int) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise MediaError("E_NO_FFMPEG", f"{cmd[0]} is not installed (apt-get install ffmpeg)",
                         zh="系统缺少 ffmpeg，请联系技术人员", status=500) from None
    except subprocess.TimeoutExpired:
        raise MediaError("E_MEDIA_TIMEOUT", f"{cmd[0]} took longer than {timeout}s", zh="媒体文件检查超时") from None


def _probe_av(path: Path, facts: MediaFacts, ffprobe: str, ffmpeg: str, timeout: int) -> None:
    p = _run([ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)], timeout)
    if p.returncode != 0:
        reason = p.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["unreadable"]
        raise MediaError("E_MEDIA_CORRUPT", f"{path.name}: ffprobe cannot read it ({reason[0]})",
                         zh="媒体文件已损坏，无法读取")
    info = json.loads(p.stdout or b"{}")
    streams = info.get("streams", [])
    video = [s for s in streams if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if facts.kind == "video" and not video:
        raise MediaError("E_MEDIA_CORRUPT", f"{path.name}: no video stream", zh="视频文件里没有画面")
    if facts.kind == "audio" and not audio:
        raise MediaError("E_MEDIA_CORRUPT", f"{path.name}: no audio stream", zh="音频文件里没有声音")
    try:
        facts.duration = float(info.get("format", {}).get("duration"))
    except (TypeError, ValueError):
        facts.duration = None
    if video:
        facts.width, facts.height = video[0].get("width"), video[0].get("height")
    vcodec = video[0].get("codec_name", "") if video else ""
    acodec = audio[0].get("codec_name", "") if audio else ""
    facts.codecs = ",".join(c for c in (vcodec, acodec) if c)
    facts.playable = (facts.ext in PLAYABLE_CONTAINERS
                      and (not vcodec or vcodec in PLAYABLE_VIDEO)
                      and (not acodec or acodec in PLAYABLE_AUDIO))
    # A truncated file often still probes; decoding the last second catches it cheaply.
    cmd = [ffmpeg, "-v", "error", "-xerror"]
    if facts.duration and facts.duration > 2:
        cmd += ["-sseof", "-1"]
    # MPEG-PS/TS: a seek lands mid audio frame (mp2 "Header missing"), so check the video's tail only.
    cmd += ["-i", str(path), *(["-map", "0:v:0"] if video and ext_is_mpeg(facts.ext) else []), "-f", "null", "-"]
    p = _run(cmd, timeout)
    if p.returncode != 0:
        raise MediaError("E_MEDIA_CORRUPT", f"{path.name}: cannot be decoded to the end (truncated or damaged)",
                         zh="媒体文件不完整或已损坏")


def ext_is_mpeg(ext: str) -> bool:
    return ext in ("mpg", "mpeg", "vob", "ts")


def make_poster(path: Path | str, facts: MediaFacts, *, ffmpeg: str = "ffmpeg", timeout: int = 60) -> bytes | None:
    """A JPEG frame from about a third into a video, or None when none can be made."""
    if facts.kind != "video":
        return None
    at = min(5.0, (facts.duration or 0) / 3)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "poster.jpg"
        p = _run([ffmpeg, "-v", "error", "-ss", f"{at:.2f}", "-i", str(path), "-frames:v", "1",
                  "-vf", "scale=480:-2", "-q:v", "4", "-y", str(out)], timeout)
        if p.returncode != 0 or not out.is_file():
            return None
        return out.read_bytes()
