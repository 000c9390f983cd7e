"""The replay (直播回看): backfill what the relay missed, remux to one MP4, import it like any bundle.

After a broadcast's window the scheduler's child (``jobs.child``) comes here.
Inside a link window for ``pull`` (``sync.windows``, with its bandwidth limit)
it reads the origin's recording (``recording.m3u8`` beside the stream URL, the
stream's own playlist when there is none), fetches each segment the node lacks
once, and writes a VOD playlist of every segment.  ffmpeg remuxes it with
``-c copy`` (no re-encode) into one MP4.

The MP4 enters the catalogue through the one import pipeline: a bundle of the
``live.replay_channel`` channel, signed by this node's own replay key (made on
first use, trusted for that channel only).  The title says 直播回看; when
segments are still missing after ``live.backfill_days``, the title and the
description say how much is missing (不完整), never silently short.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

from edgenode.core import jobs, windows
from edgenode.node.live import queries as q
from edgenode.node.live.relay import (LinkDown, broadcast_dir, fetch, local_playlist, segment_name, store_segment,
                                      write_atomic)
from edgenode.protocol import live, minisign

log = logging.getLogger(__name__)
RECORDING = "recording.m3u8"
REPLAY_PLAYLIST = "replay.m3u8"
REMUX_TIMEOUT = 1800  # seconds; a 12-hour event remuxes in minutes (-c copy)
FINISHED = ("ended", "stopped", "no_stream", "refused")


def recording_url(stream_url: str) -> str:
    return stream_url.rsplit("/", 1)[0] + "/" + RECORDING


def run_due(cfg, conn, vconn, now: float | None = None) -> dict:
    """Every ended broadcast without a replay: backfill within the window, then remux and import."""
    now = time.time() if now is None else now
    give_up = now - cfg["live.backfill_days"] * 86400
    due = [b for b in q.awaiting_replay(conn, now, give_up)
           if b["state"] in FINISHED or b["end"] + cfg["live.grace_seconds"] <= now]
    if not due:
        return {"state": "idle"}
    allow = windows.allowance(windows.parse_windows(cfg["sync.windows"]), "pull", datetime.fromtimestamp(now))
    out = []
    for b in due:
        if not allow.allowed and not b["give_up"]:
            out.append({"key": b["key"], "state": "waiting", "message": allow.reason})
            continue
        job = jobs.start(vconn, "live_replay", f"replay {b['key']}")
        r = replay(cfg, conn, b, bwlimit=allow.bwlimit, give_up=b["give_up"])
        jobs.finish(vconn, job, "done" if r["state"] != "waiting" else "skipped", r.get("message", r["state"]), r)
        out.append(r)
    return {"state": "done", "replays": out}


def backfill(cfg, conn, b: dict, *, bwlimit: int = 0, session=None) -> dict:
    """Fetch the recording's segments this node lacks; ``{"complete", "expected", "missing", "fetched"}``.
    ``LinkDown`` when the origin does not answer."""
    import requests
    from edgenode.node.live.schedule import origins

    session = session or requests.Session()
    allowed = origins(cfg, conn)
    pl = None
    for url in (recording_url(b["stream_url"]), b["stream_url"]):
        live.check_origin(url, allowed)
        status, body, _ = fetch(session, url, live.MAX_PLAYLIST_BYTES, timeout=cfg["live.timeout_seconds"])
        if status == 200:
            pl = live.parse_playlist(body.decode("utf-8", "replace"), url)
            break
    if pl is None:
        return {"complete": False, "expected": None, "missing": None, "fetched": 0, "recording": False}
    have = {r["seq"] for r in q.segments(conn, b["key"])}
    directory = broadcast_dir(cfg, b["key"])
    directory.mkdir(parents=True, exist_ok=True)
    fetched = 0
    for seg in pl.segments:
        if seg.seq in have:
            continue
        try:
            live.check_origin(seg.uri, allowed)
            status, data, _ = fetch(session, seg.uri, cfg["live.max_segment_mb"] * 1024 * 1024,
                                    timeout=cfg["live.timeout_seconds"], bwlimit=bwlimit)
        except live.LiveError as e:
            log.warning("%s: replay %s segment %d: %s", e.code, b["key"], seg.seq, e.message)
            continue
        if status == 200:
            store_segment(cfg, conn, b["key"], directory, seg, data, "backfill")
            fetched += 1
    if pl.ended:
        q.set_origin_segments(conn, b["key"], len(pl.segments))
    have = {r["seq"] for r in q.segments(conn, b["key"])}
    missing = [s for s in pl.segments if s.seq not in have]
    return {"complete": pl.ended and not missing, "expected": len(pl.segments), "fetched": fetched,
            "missing": len(missing), "missing_seconds": sum(s.duration for s in missing), "recording": pl.ended}


def replay(cfg, conn, b: dict, *, bwlimit: int = 0, give_up: bool = False) -> dict:
    try:
        got = backfill(cfg, conn, b, bwlimit=bwlimit)
    except LinkDown as e:
        if not give_up:
            return {"key": b["key"], "state": "waiting", "message": f"W_LIVE_LINK: {e}"}
        got = {"complete": False, "missing_seconds": None, "recording": False}
    except live.LiveError as e:
        if not give_up:
            return {"key": b["key"], "state": "waiting", "message": e.cli_message()}
        got = {"complete": False, "missing_seconds": None, "recording": False}
    if not got["complete"] and not give_up:
        return {"key": b["key"], "state": "waiting", "message": "the origin's recording is not complete yet", **got}
    rows = q.segments(conn, b["key"])
    if not rows:
        q.set_replay(conn, b["key"], "none", None, 0)
        return {"key": b["key"], "state": "none", "message": "nothing was relayed or recorded"}
    missing = 0.0 if got["complete"] else (got.get("missing_seconds") or 0.0)
    state = "complete" if got["complete"] else "incomplete"
    mp4 = remux(cfg, b, rows)
    try:
        resource = import_replay(cfg, conn, b, mp4, state, missing)
    finally:
        shutil.rmtree(mp4.parent, ignore_errors=True)
    q.set_replay(conn, b["key"], state, resource, missing)
    log.info("live %s: replay %s (%s)", b["key"], resource, state)
    return {"key": b["key"], "state": state, "resource": resource, "segments": len(rows),
            "message": f"{state}: {resource}"}


def remux(cfg, b: dict, rows: list[dict]) -> Path:
    """Every segment on disk, in order, into one MP4 without re-encoding (``-c copy``)."""
    directory = broadcast_dir(cfg, b["key"])
    write_atomic(directory, REPLAY_PLAYLIST, local_playlist(rows, ended=True).encode())
    work = Path(tempfile.mkdtemp(prefix=".replay-", dir=directory))
    out = work / f"{b['id']}.mp4"
    cmd = [cfg.media.ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(directory / REPLAY_PLAYLIST),
           "-map", "0", "-c", "copy", "-bsf:a", "aac_adtstoasc", "-movflags", "+faststart", str(out)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=REMUX_TIMEOUT)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        shutil.rmtree(work, ignore_errors=True)
        detail = getattr(e, "stderr", b"") or b""
        raise live.LiveError("E_LIVE_REMUX", f"ffmpeg could not remux {b['key']}: {detail[-300:]!r}",
                             "直播回看生成失败") from None
    return out


def replay_key(cfg) -> minisign.SecretKey:
    """This node's replay signing key (0600), made on first use."""
    d = cfg.data_path / "live"
    d.mkdir(parents=True, exist_ok=True)
    path = d / "replay.key"
    if not path.exists():
        minisign.write_secret_key(minisign.generate_keypair(), path)
    return minisign.load_secret_key(path)


def import_replay(cfg, conn, b: dict, mp4: Path, state: str, missing: float) -> str:
    """Build and sign a one-file bundle and hand it to the import pipeline; returns the resource id."""
    from edgenode.core.store import open_store
    from edgenode.node.imports import pipeline, trust
    from edgenode.protocol.build import build_bundle

    channel, sk = cfg["live.replay_channel"], replay_key(cfg)
    if channel not in trust.channels_of(conn, sk.public.key_id_hex):
        trust.add_key(conn, sk.public, [channel], comment="this node's live replays", added_by="live")
    title = f"直播回看：{b['title']}" + ("（不完整）" if state == "incomplete" else "")
    note = "" if state == "complete" else f"\n\n本回看不完整：缺少约 {round(missing)} 秒。"
    rid = b["key"].replace(".", "-")[:80]
    entry = {"path": mp4.name, "id": rid, "title": title, "description": (b["description"] + note).strip(),
             "column": cfg["live.replay_column"], "tags": ["直播回看"], "kind": "video"}
    state_row = trust.channel_state(conn, channel)
    seq = (state_row["seq"] if state_row else 0) + 1
    bundle = build_bundle(mp4.parent, channel, seq, mp4.parent / "out", secret_key=sk, resources=[entry])
    result = pipeline.import_bundle(cfg, conn, open_store(cfg), bundle, source="live")
    if result.result not in ("imported", "unchanged"):
        raise live.LiveError(result.error_code or "E_LIVE_IMPORT", f"replay import: {result.error}", "直播回看导入失败")
    return f"{channel}.{rid}"


def segment_path(cfg, key: str, seq: int) -> Path:
    return broadcast_dir(cfg, key) / segment_name(seq)
