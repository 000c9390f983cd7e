"""Helpers for the contributions tests (issue 21): real media with location tags, a tus client."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

GPS = "+39.9042+116.4074/"


def make_video(path: Path, *, seconds: float = 3, size: str = "320x240", vcodec: str = "libx264",
               acodec: str = "aac", gps: bool = True, extra: list[str] | None = None, noise: bool = False) -> Path:
    """A real video with location and phone tags; ``noise``: incompressible frames (large files fast)."""
    meta = ["-metadata", f"location={GPS}", "-metadata", "make=Huawei", "-metadata", "model=P40"] if gps else []
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate=25",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", vcodec,
                    *(["-vf", "noise=alls=100:allf=t+u", "-preset", "ultrafast"] if noise else []),
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


# -- a node with contributions ready to go up, and a proxy that cuts uploads ----------------------

import random  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402


def add_contribution(cfg, conn, src: Path, *, approve: bool = True, **meta) -> str:
    """Upload (the tus core, no HTTP), process and (by default) approve one file; returns its id."""
    from edgenode.node.contrib import moderation, process, uploads

    size = src.stat().st_size
    cid = uploads.create(cfg, conn, size, meta_for(src, **meta))
    with open(src, "rb") as f:
        assert uploads.append(cfg, conn, cid, 0, f, size) == size
    process.process_one(cfg, conn, cid)
    if approve:
        moderation.approve(cfg, conn, cid)
    return cid


class UploadCuttingProxy:
    """TCP proxy to ``target_port`` that cuts the first ``cuts`` connections after a random number of
    bytes sent *towards the server* (1..max_bytes); counts every byte it forwards that way."""

    def __init__(self, target_port: int, cuts: int, max_bytes: int, seed: int = 0, min_bytes: int = 1):
        self.target_port, self.cuts_left, self.max_bytes, self.min_bytes = target_port, cuts, max_bytes, min_bytes
        self.rnd = random.Random(seed)
        self.bytes_up = 0
        self.cuts_done = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(16)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                limit = self.rnd.randrange(self.min_bytes, self.max_bytes) if self.cuts_left > 0 else None
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pipe, args=(client, upstream, True, limit), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False, None), daemon=True).start()

    def _pipe(self, src, dst, up: bool, limit):
        sent = 0
        try:
            while True:
                data = src.recv(262144)
                if not data:
                    break
                cut = limit is not None and sent + len(data) >= limit
                if cut:
                    with self.lock:
                        if self.cuts_left <= 0:
                            cut, limit = False, None
                        else:
                            self.cuts_left -= 1
                            self.cuts_done += 1
                    if cut:
                        data = data[:max(0, limit - sent)]
                dst.sendall(data)
                sent += len(data)
                if up:
                    with self.lock:
                        self.bytes_up += len(data)
                if cut:
                    break
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self):
        self.closed = True
        self.sock.close()
