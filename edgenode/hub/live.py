"""The county's live broadcasts: the signed schedule, the HLS origin, the viewing figures.

* **Schedule.**  One signed document per channel (``DATA_DIR/live/schedules/<channel>.json``
  and its ``.minisig``), signed by the county key, its sequence number raised at every
  change.  Every heartbeat answer carries them all (``"live_schedules"``); ``to_stick``
  writes them for points that are never online (``<stick>/edgenode-live/``); a bundle's
  ``live.json`` carries them by satellite.  The node checks them with its own rules.
* **Origin.**  :func:`run_origin` turns an input into HLS with ffmpeg: a file at
  real-time pace (``-re``), a camera (``--input-format v4l2``), or an RTMP/SRT push it
  listens for.  ffmpeg writes every segment and the event playlist ``recording.m3u8``
  (the whole broadcast: the replay's source); beside it this process keeps
  ``index.m3u8``, the live window of the newest segments, which is what nodes poll.
  nginx serves the folder (:func:`nginx_conf`); segments are written under a temporary
  name and renamed (``-hls_flags temp_file``), so nginx never serves half a segment.
* **Figures.**  ``live_view`` usage events (terminal, seconds) arrive in the nodes'
  batches like any other; :func:`views` sums them per node and broadcast, and
  :func:`duty` says which points showed at least one broadcast in a month.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from edgenode.core.errors import EdgenodeError
from edgenode.hub import keychain, live_queries as q
from edgenode.protocol import live, minisign

log = logging.getLogger(__name__)
WINDOW = 6
STICK_DIR = "edgenode-live"
DUTY_TITLE = "直播收看（每月至少一次）"


def live_dir(cfg) -> Path:
    return cfg.data_path / "live"


def _schedules(cfg) -> Path:
    d = live_dir(cfg) / "schedules"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def schedule(cfg, channel: str) -> dict:
    """The channel's current schedule: ``{"seq", "broadcasts"}`` (seq 0 when there is none)."""
    path = _schedules(cfg) / f"{channel}.json"
    if not path.is_file():
        return {"seq": 0, "broadcasts": []}
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {"seq": doc["seq"], "broadcasts": doc["broadcasts"]}


def publish(cfg, channel: str, broadcasts: list[dict]) -> dict:
    """Sign and store the channel's schedule as the next sequence number."""
    if channel not in keychain.channels(cfg):
        raise EdgenodeError("E_CHANNEL_FORBIDDEN", f"the county key does not sign for {channel!r} (hub.channels)",
                            zh="县中心密钥不负责这个频道")
    seq = schedule(cfg, channel)["seq"] + 1
    data = live.make_document(channel, seq, broadcasts)
    sig = minisign.sign_bytes(data, keychain.county_key(cfg), trusted_comment=f"live schedule {channel} #{seq}")
    path = _schedules(cfg) / f"{channel}.json"
    _write(path.with_name(path.name + ".minisig"), sig.encode())
    _write(path, data)
    return {"channel": channel, "seq": seq, "broadcasts": len(broadcasts)}


def add(cfg, channel: str, entry: dict) -> dict:
    """Add or replace one broadcast (by id) in the channel's schedule."""
    entries = [b for b in schedule(cfg, channel)["broadcasts"] if b["id"] != entry["id"]] + [entry]
    out = publish(cfg, channel, sorted(entries, key=lambda b: str(b["start"])))
    _remember_title(cfg, f"{channel}.{entry['id']}", entry["title"])
    return out


def _remember_title(cfg, key: str, title: str) -> None:
    """Points count live viewing as time spent on a resource named ``<channel>.<id>``, so the
    statistics' 按资源 tables name it from ``hub_titles`` like any published resource (it read
    标题未知（shequ.x） before)."""
    from edgenode.core.db import transaction
    from edgenode.hub import titles_queries
    from edgenode.hub.database import open_hub
    conn = open_hub(cfg)
    try:
        with transaction(conn):
            titles_queries.set_titles(conn, {key: f"直播：{title}"}, time.time())
    finally:
        conn.close()


def cancel(cfg, channel: str, bid: str) -> dict:
    entries = schedule(cfg, channel)["broadcasts"]
    if not any(b["id"] == bid for b in entries):
        raise EdgenodeError("E_NOT_FOUND", f"no broadcast {bid!r} in {channel}", zh="没有这个直播")
    return publish(cfg, channel, [b | {"cancelled": True} if b["id"] == bid else b for b in entries])


_answers_cache: dict = {}


def answers(cfg) -> list[dict]:
    """What a heartbeat answer carries: every channel's signed schedule.  Read again only when the folder
    changed (every publish renames a file into it): heartbeats come by the thousand."""
    d = _schedules(cfg)
    stamp = d.stat().st_mtime_ns
    hit = _answers_cache.get(d)
    if hit and hit[0] == stamp:
        return hit[1]
    out = []
    for path in sorted(d.glob("*.json")):
        sig = path.with_name(path.name + ".minisig")
        if sig.is_file():
            out.append({"schedule": path.read_text(encoding="utf-8"), "signature": sig.read_text(encoding="utf-8")})
    _answers_cache[d] = (stamp, out)
    return out


def to_stick(cfg, root: Path) -> int:
    """``<root>/edgenode-bundles/edgenode-live/<channel>.json`` + ``.minisig`` for points never online
    (``edgenode hub usb-tree`` writes them too, beside the bundles and the key lists)."""
    root = Path(root)
    dest = (root if root.name == "edgenode-bundles" else root / "edgenode-bundles") / STICK_DIR
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in sorted(_schedules(cfg).glob("*.json")):
        for p in (path, path.with_name(path.name + ".minisig")):
            shutil.copyfile(p, dest / p.name)
        n += 1
    return n


# -- the origin --------------------------------------------------------------
def ffmpeg_command(ffmpeg: str, source: str, out: Path, *, realtime: bool, input_format: str | None = None,
                   listen: bool = False, copy: bool = False, hls_seconds: int = 2) -> list[str]:
    """ffmpeg from one input to HLS: every segment kept, ``recording.m3u8`` listing them all."""
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
    if realtime:
        cmd.append("-re")
    if input_format:
        cmd += ["-f", input_format]
    if listen:
        cmd += ["-listen", "1"]
    cmd += ["-i", source]
    if copy:
        cmd += ["-c", "copy"]
    else:  # a keyframe at every segment boundary, so segments are the same length and stand alone
        cmd += ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
                "-force_key_frames", f"expr:gte(t,n_forced*{hls_seconds})", "-sc_threshold", "0",
                "-c:a", "aac", "-b:a", "96k", "-ac", "2"]
    return cmd + ["-f", "hls", "-hls_time", str(hls_seconds), "-hls_list_size", "0", "-hls_playlist_type", "event",
                  "-hls_flags", "independent_segments+temp_file", "-start_number", "0",
                  "-hls_segment_filename", str(out / "seg%08d.ts"), str(out / "recording.m3u8")]


def window_playlist(recording: str, base: str, window: int = WINDOW) -> str:
    """The live window of a recording playlist: its newest ``window`` segments."""
    pl = live.parse_playlist(recording, base)
    shown = pl.segments if pl.ended and len(pl.segments) <= window else pl.segments[-window:]
    first = shown[0].seq if shown else pl.media_sequence
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{int(pl.target)}",
             f"#EXT-X-MEDIA-SEQUENCE:{first}"]
    for s in shown:
        lines += [f"#EXTINF:{s.duration:.6f},", s.uri.rsplit("/", 1)[-1]]
    if pl.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _mirror(out: Path, last: float) -> float:
    rec = out / "recording.m3u8"
    try:
        mtime = rec.stat().st_mtime_ns
        if mtime == last:
            return last
        text = rec.read_text(encoding="utf-8")
        _write(out / "index.m3u8", window_playlist(text, "http://origin/").encode())
        return mtime
    except (FileNotFoundError, live.LiveError):  # not written yet, or caught mid-write by ffmpeg: next round
        return last


def run_origin(cfg, key: str, source: str, *, realtime: bool = True, input_format: str | None = None,
               listen: bool = False, copy: bool = False, hls_seconds: int = 2, stop=None) -> dict:
    """Run ffmpeg until the input ends (or ``stop()`` says so); returns the recording's figures."""
    if not live.ID_RE.match(key.replace(".", "-")):
        raise EdgenodeError("E_LIVE_KEY", f"{key!r}: lower-case letters, digits, '.', '-', '_'", zh="直播编号格式不正确")
    out = live_dir(cfg) / key
    out.mkdir(parents=True, exist_ok=True)
    cmd = ffmpeg_command(cfg.media.ffmpeg, source, out, realtime=realtime, input_format=input_format,
                         listen=listen, copy=copy, hls_seconds=hls_seconds)
    log.info("live origin %s: %s", key, " ".join(cmd))
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = 0.0
    try:
        while proc.poll() is None:
            last = _mirror(out, last)
            if stop is not None and stop():
                proc.send_signal(signal.SIGINT)  # ffmpeg closes the playlist with #EXT-X-ENDLIST
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
        err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        proc.wait()
    _mirror(out, -1)
    rec = out / "recording.m3u8"
    if not rec.is_file():
        raise EdgenodeError("E_LIVE_ORIGIN_FAILED", f"ffmpeg made no playlist: {err[-300:]}", zh="直播源转换失败")
    pl = live.parse_playlist(rec.read_text(encoding="utf-8"), "http://origin/")
    return {"key": key, "dir": str(out), "segments": len(pl.segments), "ended": pl.ended,
            "seconds": round(sum(s.duration for s in pl.segments), 3), "ffmpeg_exit": proc.returncode}


def nginx_conf(live_root: Path, *, listen: str, workdir: Path, user: str | None = None) -> str:
    """A complete nginx.conf serving ``live_root`` at ``/live/`` (the stack's or a test's); the ``server``
    block is what a hub's site file includes."""
    for d in ("client", "proxy", "logs"):
        (workdir / d).mkdir(parents=True, exist_ok=True)
    return f"""daemon off;
{f"user {user};" if user else ""}
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {workdir}/logs/access.log;
    client_body_temp_path {workdir}/client;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/client;
    uwsgi_temp_path {workdir}/client;
    scgi_temp_path {workdir}/client;
    server {{
        listen {listen};
{server_block(live_root)}
    }}
}}
"""


def server_block(live_root: Path) -> str:
    """The ``location``s serving live HLS: playlists never cached, segments for an hour, no dot files
    (ffmpeg's and our temporary names)."""
    return f"""        sendfile on;
        server_tokens off;
        location ~ "^/live/.*/\\." {{ return 404; }}
        location ~ "^/live/([a-z0-9._-]+)/([a-z0-9_-]+\\.m3u8)$" {{
            alias {live_root}/$1/$2;
            default_type application/vnd.apple.mpegurl;
            add_header Cache-Control "no-cache";
            etag on;
        }}
        location ~ "^/live/([a-z0-9._-]+)/([a-z0-9_-]+\\.ts)$" {{
            alias {live_root}/$1/$2;
            default_type video/mp2t;
            add_header Cache-Control "public, max-age=3600";
        }}"""


# -- figures -----------------------------------------------------------------
def views(conn: sqlite3.Connection, month: str | None = None) -> list[dict]:
    """Live views per node and broadcast: ``{"node_id", "name", "township", "broadcast", "views",
    "seconds"}`` (``views``: the beacons' reports; ``seconds``: watching time)."""
    return [dict(r) for r in q.live_views(conn, month)]


def duty(conn: sqlite3.Connection, month: str) -> list[dict]:
    """Every enrolled point in ``month``: did it show at least one broadcast (图书馆公开课直播, once a month)?"""
    shown = {}
    for r in q.live_views(conn, month):
        shown.setdefault(r["node_id"], set()).add(r["broadcast"])
    return [{"node_id": n["node_id"], "name": n["name"], "township": n["township"],
             "broadcasts": len(shown.get(n["node_id"], ())), "met": bool(shown.get(n["node_id"]))}
            for n in q.nodes(conn)]


def titles(cfg) -> dict[str, str]:
    """``<channel>.<id>`` → title, from the county's schedules."""
    out = {}
    for path in sorted(_schedules(cfg).glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        out.update({f"{doc['channel']}.{b['id']}": b["title"] for b in doc["broadcasts"]})
    return out


def months_text(months: list[int]) -> str:
    """Months of a year in few characters, runs as ranges: ``[1, 2, 3, 5, 7, 8]`` → ``1-3、5、7-8月``; ``无`` for none."""
    runs: list[list[int]] = []
    for m in sorted(months):
        if runs and m == runs[-1][-1] + 1:
            runs[-1].append(m)
        else:
            runs.append([m])
    return "、".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs) + "月" if runs else "无"


def report_sections(conn: sqlite3.Connection, period: str, titles: dict | None = None, *,
                    months_due: int = 12) -> list[dict]:
    """The hub report's live sections, in the reports' shape ``{"key", "title", "headers", "labels", "formats",
    "rows"}`` (``labels``: how many leading columns name the row; ``formats``: the .xlsx number format of each
    other column, ``@`` for text).  A month (``YYYY-MM``): the once-a-month duty per point (``live_duty``), and
    the views per point and broadcast (``live_views``).  A year (``YYYY``): per point the months among the first
    ``months_due`` in which it showed a broadcast (``live_duty``), and per broadcast the points that showed it
    and its views (``live_broadcasts``: a year per point and broadcast would be tens of thousands of rows)."""
    rows = q.live_rows(conn, period) if q.any_live(conn, period) else []
    points = [(p["node_id"], p["name"] or p["node_id"], p["township"] or "-") for p in q.nodes(conn)]
    name = (titles or {}).get
    seconds: dict[str, float] = {}
    months: dict[str, set[int]] = {}
    shown: dict[str, set[str]] = {}
    for r in rows:
        n = r["node_id"]
        seconds[n] = seconds.get(n, 0.0) + r["seconds"]
        months.setdefault(n, set()).add(int(r["month"][5:7]))
        shown.setdefault(n, set()).add(r["broadcast"])
    hours = {n: round(s / 3600, 2) for n, s in seconds.items()}
    if len(period) == 7:
        duty_rows = [[label, township, len(shown.get(n, ())), hours.get(n, 0.0), "是" if n in shown else "否"]
                     for n, label, township in points]
        per_point: dict[tuple, list] = {}
        for r in rows:
            row = per_point.setdefault((r["node_id"], r["broadcast"]), [
                r["name"] or r["node_id"], r["township"] or "-", name(r["broadcast"], r["broadcast"]), 0, 0.0])
            row[3] += r["views"]
            row[4] += r["seconds"]
        return [{"key": "live_duty", "title": DUTY_TITLE, "labels": 2, "rows": duty_rows,
                 "headers": ["服务点", "乡镇", "收看直播场次", "收看时长（小时）", "达标"], "formats": ["#,##0", "#,##0.00", "@"]},
                {"key": "live_views", "title": "直播收看（按服务点和直播）", "labels": 3,
                 "headers": ["服务点", "乡镇", "直播", "收看记录数", "收看时长（分钟）"], "formats": ["#,##0", "#,##0.0"],
                 "rows": [[*row[:4], round(row[4] / 60, 1)] for row in per_point.values()]}]
    due = range(1, months_due + 1)
    duty_rows = [[label, township, len(months.get(n, set()) & set(due)), months_due, len(shown.get(n, ())),
                  hours.get(n, 0.0), months_text([m for m in due if m not in months.get(n, ())])]
                 for n, label, township in points]
    per_broadcast: dict[str, list] = {}
    for r in sorted(rows, key=lambda r: (r["month"], r["broadcast"])):  # in the order they were broadcast
        row = per_broadcast.setdefault(r["broadcast"], [name(r["broadcast"], r["broadcast"]), set(), 0, 0.0])
        row[1].add(r["node_id"])
        row[2] += r["views"]
        row[3] += r["seconds"]
    return [{"key": "live_duty", "title": DUTY_TITLE, "labels": 2, "rows": duty_rows,
             "headers": ["服务点", "乡镇", "达标月数", "应达标月数", "收看直播场次", "收看时长（小时）", "未达标月份"],
             "formats": ["#,##0", "#,##0", "#,##0", "#,##0.00", "@"]},
            {"key": "live_broadcasts", "title": "直播收看（按直播）", "labels": 1,
             "headers": ["直播", "收看服务点数", "收看记录数", "收看时长（小时）"], "formats": ["#,##0", "#,##0", "#,##0.00"],
             "rows": [[t, len(ns), v, round(secs / 3600, 2)] for t, ns, v, secs in per_broadcast.values()]}]
