"""Series and subtitle bundles for the series, subtitle, resume and TV tests (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

from edgenode.protocol.build import build_bundle
from tests.fixtures import ffmpeg
from tests.helpers_bundles import make_pdf

VTT = ("WEBVTT\n\n00:00:00.500 --> 00:00:04.000\n第一句字幕\n\n"
       "00:00:04.500 --> 00:00:09.000\n第二句字幕\n").encode("utf-8")
SRT = ("1\r\n00:00:00,500 --> 00:00:04,000\r\n<b>你好</b>，乡亲们\r\n\r\n"
       "2\r\n00:00:04,500 --> 00:00:09,000\r\n今天讲<script>alert(1)</script>玉米\r\n").encode("utf-8")


def make_video(out: Path, seconds: int, freq: int = 440) -> Path:
    """A small real H.264/AAC file.  One encode per length; each copy ends with its own MP4 ``free`` box
    (``freq`` in it), so every episode has its own bytes and hash at no further ffmpeg cost."""
    base = out.parent / f".base-{seconds}s.mp4"
    if not base.exists():
        ffmpeg("-f", "lavfi", "-i", f"testsrc=duration={seconds}:size=160x120:rate=10", "-f", "lavfi",
               "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
               "-pix_fmt", "yuv420p", "-g", "10", "-c:a", "aac", "-b:a", "32k", "-shortest", "-movflags", "+faststart",
               str(base))
    out.write_bytes(base.read_bytes() + (16).to_bytes(4, "big") + b"free" + freq.to_bytes(8, "big"))
    return out


def series_source(root: Path, n: int = 16, *, video_seconds: int = 0, series_id: str = "opera",
                  title: str = "豫剧经典系列", subtitles: bytes | None = None, reverse: bool = True) -> Path:
    """A publisher's folder: ``n`` episodes (PDFs, or videos of ``video_seconds``), listed last episode first
    (the order a careless publisher uses), with series.json and, optionally, a subtitle for each video."""
    root.mkdir(parents=True, exist_ok=True)
    resources = []
    for i in range(1, n + 1):
        if video_seconds:
            make_video(root / f"ep{i:02d}.mp4", video_seconds, 300 + 20 * i)
            path = f"ep{i:02d}.mp4"
        else:
            path = make_pdf(root / f"ep{i:02d}.pdf", 2048, seed=i).name
        entry = {"id": f"{series_id}-{i:02d}", "path": path, "title": f"{title} 第{i}集", "column": "pushi",
                 "tags": ["戏曲"], "description": f"第{i}集", "series": series_id, "episode": i}
        if subtitles is not None and video_seconds:
            (root / f"ep{i:02d}.zh.vtt").write_bytes(subtitles)
            entry["subtitles"] = [{"path": f"ep{i:02d}.zh.vtt", "language": "zh", "label": "中文"}]
        resources.append(entry)
    if reverse:
        resources.reverse()
    (root / "resources.json").write_text(json.dumps(resources, ensure_ascii=False), encoding="utf-8")
    (root / "series.json").write_text(json.dumps([{"id": series_id, "title": title, "column": "pushi",
                                                   "tags": ["戏曲"], "description": "经典唱段全集"}],
                                                 ensure_ascii=False), encoding="utf-8")
    return root


def series_bundle(tmp: Path, sk, channel: str = "pushi", seq: int = 1, **kw) -> Path:
    src = series_source(tmp / f"src-{channel}-{seq}", **kw)
    return build_bundle(src, channel, seq, tmp / "out", secret_key=sk)
