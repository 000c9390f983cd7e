"""Helpers for the contributions tests (issue 21): real media with location tags, a tus client."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

GPS = "+39.9042+116.4074/"


def make_video(path: Path, *, seconds: float = 3, size: str = "320x240", vcodec: str = "libx264",
               acodec: str = "aac", gps: bool = True, extra: list[str] | None = None) -> Path:
    meta = ["-metadata", f"location={GPS}", "-metadata", "make=Huawei", "-metadata", "model=P40"] if gps else []
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate=25",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", vcodec,
                    *(["-pix_fmt", "yuv420p"] if vcodec == "libx264" else []), "-c:a", acodec, *meta, *(extra or []),
                    str(path)], check=True)
    return path


def make_picture(path: Path, *, gps: bool = True, size: str = "640x480") -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size}", "-frames:v", "1",
                    str(path)], check=True)
    if gps:
        subprocess.run(["exiftool", "-q", "-overwrite_original", "-GPSLatitude=39.9", "-GPSLatitudeRef=N",
                        "-GPSLongitude=116.4", "-GPSLongitudeRef=E", "-Make=Huawei", "-Model=P40", str(path)],
                       check=True)
    return path


def make_audio(path: Path, seconds: float = 2) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}",
                    "-metadata", "artist=张三 13812345678", str(path)], check=True)
    return path


def exif_location(path: Path) -> dict:
    """What exiftool finds of location and device in a file."""
    out = subprocess.run(["exiftool", "-j", "-G", str(path)], capture_output=True, check=True, text=True).stdout
    tags = json.loads(out)[0]
    return {k: v for k, v in tags.items() if any(w in k.lower() for w in ("gps", "location", "make", "model",
                                                                          "6709"))}


def ffprobe_tags(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                          str(path)], capture_output=True, check=True).stdout
    info = json.loads(out)
    tags = dict(info["format"].get("tags", {}))
    for s in info["streams"]:
        tags.update({f"s{s['index']}:{k}": v for k, v in s.get("tags", {}).items()})
    return {"tags": tags, "codecs": [s["codec_name"] for s in info["streams"]], "streams": info["streams"]}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def metadata_header(**meta) -> str:
    return ",".join(f"{k} {base64.b64encode(str(v).encode()).decode()}" for k, v in meta.items())


def meta_for(path: Path, **over) -> dict:
    return {"filename": Path(path).name, "title": "村晚广场舞", "credit": "李大娘舞蹈队", "consent": "1", **over}


TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}
