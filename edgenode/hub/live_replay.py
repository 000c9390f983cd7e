"""For points never online: the county's finished recording as an ordinary signed bundle (直播回看)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from edgenode.core.errors import EdgenodeError
from edgenode.hub import publish
from edgenode.hub.live import live_dir
from edgenode.protocol import live


def publish_recording(conn: sqlite3.Connection, cfg, key: str, channel: str, *, title: str,
                      column: str = "shequ") -> dict:
    """For points never online: the whole recording remuxed (``-c copy``) into one MP4 and published as an
    ordinary signed bundle of ``channel`` (satellite, stick, pull), titled 直播回看."""
    rec = live_dir(cfg) / key / "recording.m3u8"
    if not rec.is_file() or not live.parse_playlist(rec.read_text(encoding="utf-8"), "http://origin/").ended:
        raise EdgenodeError("E_LIVE_NOT_ENDED", f"{key}: no finished recording", zh="这场直播还没有完整的录像")
    with tempfile.TemporaryDirectory(prefix=".replay-", dir=live_dir(cfg)) as tmp:
        mp4 = Path(tmp) / f"{key.replace('.', '-')}.mp4"
        subprocess.run([cfg.media.ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(rec), "-map", "0", "-c", "copy",
                        "-bsf:a", "aac_adtstoasc", "-movflags", "+faststart", str(mp4)], check=True, timeout=3600,
                       capture_output=True)
        (Path(tmp) / "resources.json").write_text(json.dumps([{
            "path": mp4.name, "id": f"replay-{mp4.stem}", "title": f"直播回看：{title}", "column": column,
            "tags": ["直播回看"], "kind": "video"}], ensure_ascii=False), encoding="utf-8")
        return publish.publish(conn, cfg, tmp, channel, default_column=column)
