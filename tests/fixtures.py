"""Seed media for tests, made with the real ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, capture_output=True, timeout=120)


def make_mp4(out: Path, seconds: int = 4, size: str = "160x120", faststart: bool = True) -> Path:
    args = ["-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate=25",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]
    if faststart:
        args += ["-movflags", "+faststart"]
    ffmpeg(*args, str(out))
    return out


def make_media(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    media = {
        "mp4": make_mp4(root / "clip.mp4"),
        "mp4_tail_moov": make_mp4(root / "tailmoov.mp4", faststart=False),
    }
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=3", "-c:a", "libmp3lame", str(root / "tone.mp3"))
    media["mp3"] = root / "tone.mp3"
    ffmpeg("-f", "lavfi", "-i", "testsrc=duration=3:size=160x120:rate=25", "-f", "lavfi",
           "-i", "sine=frequency=500:duration=3", "-c:v", "wmv2", "-c:a", "wmav2", "-shortest", str(root / "old.wmv"))
    media["wmv"] = root / "old.wmv"
    # Damaged files: random bytes, and real files cut short.
    (root / "noise.mp4").write_bytes(bytes(range(256)) * 64)
    media["noise"] = root / "noise.mp4"
    data = media["mp4_tail_moov"].read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    media["truncated"] = root / "truncated.mp4"
    data = media["mp4"].read_bytes()
    (root / "truncated_fast.mp4").write_bytes(data[: len(data) // 2])
    media["truncated_fast"] = root / "truncated_fast.mp4"
    (root / "notes.docx").write_bytes(b"PK\x03\x04 not really")
    media["docx"] = root / "notes.docx"
    pdf = root / "doc.pdf"
    from edgenode.node.imports.demo import write_pdf
    write_pdf(pdf, "测试文档", "这是一个测试用的文档。")
    media["pdf"] = pdf
    (root / "broken.pdf").write_bytes(pdf.read_bytes()[:200])
    media["broken_pdf"] = root / "broken.pdf"
    return media
