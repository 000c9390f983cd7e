"""Live relay benchmark (issue 20): latency behind the origin, node CPU per added viewer, 50 viewers
through nginx without a stall, and the link's bytes against the stream's.

One broadcast of ``--seconds`` (default 60) at real-time pace: ffmpeg into ``edgenode hub live
run``, the hub's nginx, a counting TCP link, and a node as an appliance runs it (nginx, gunicorn,
``edgenode scheduler`` whose child relays).  Viewers are player loops (the room's playlist every
second, each new segment once, playback in real time from three segments behind the edge): none
for the first quarter (the relay alone: the CPU baseline), ten for the second, fifty for the rest.

* latency: when each segment is on the node (its row) minus when ffmpeg finished it at the origin
  (the file's mtime), p50 and p95, also in segments;
* CPU: the node's processes (nginx, gunicorn, scheduler and its relay child) in CPU seconds per
  second, per phase; per added viewer = (phase - baseline) / viewers;
* stalls: a viewer stalls when the next segment is not downloaded by the time playback reaches it;
* bytes: what the link carried from the origin (HTTP included) ÷ the stream's segment bytes.

    .venv/bin/python bench/bench_live.py [--seconds 60] [--viewers 50]

Results: bench/out/live.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import requests  # noqa: E402

from edgenode.core.db import open_main  # noqa: E402
from edgenode.node.live import queries as q  # noqa: E402
from edgenode.protocol.live import parse_playlist  # noqa: E402
from tests.helpers_live import Link, Origin, live_node, make_source  # noqa: E402


class Player(threading.Thread):
    """A player's requests and clock: starts three segments behind the edge, plays in real time."""

    def __init__(self, base: str):
        super().__init__(daemon=True)
        self.base, self.stop, self.stalls, self.segments, self.errors = base, False, 0, 0, 0

    def run(self):
        s, last, clock = requests.Session(), None, None
        while not self.stop:
            try:
                pl = parse_playlist(s.get(self.base + "index.m3u8", timeout=5).text, self.base)
            except (requests.RequestException, ValueError):
                self.errors += 1
                time.sleep(1)
                continue
            if last is None:
                if len(pl.segments) < 3:
                    time.sleep(1)
                    continue
                last = pl.segments[-3].seq - 1  # the room's numbering: media sequence + position
            for seg in [x for x in pl.segments if x.seq > last]:
                r = s.get(seg.uri, timeout=5)
                self.errors += r.status_code != 200
                now = time.monotonic()
                if clock is not None and now > clock:
                    self.stalls += 1
                    clock = now  # playback waited until the segment arrived
                clock = (clock or now) + seg.duration
                self.segments += 1
                last = seg.seq
            if pl.ended:
                return
            time.sleep(1)


def node_processes(prod) -> list[psutil.Process]:
    procs = []
    for p in (prod.nginx, prod.gunicorn, prod.scheduler):
        parent = psutil.Process(p.pid)
        procs += [parent, *parent.children(recursive=True)]
    return procs


def cpu_seconds(prod) -> float:
    total = 0.0
    for p in node_processes(prod):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run(seconds: int, viewers: int, work: Path) -> dict:
    src = make_source(work / "src.mp4", seconds)
    origin = Origin(work)
    link = Link(origin.port)
    env = {"EDGENODE_LIVE_CHECK_SECONDS": "1", "EDGENODE_LIVE_GRACE_SECONDS": "5",
           "EDGENODE_LIVE_ORIGINS": json.dumps([link.url + "/live/"]), "EDGENODE_STORE_FREE_SPACE_FLOOR_MB": "1",
           "EDGENODE_LIVE_MIN_FREE_MB": "1"}
    os.environ.update(env)
    cfg, data, prod, key = live_node(work, origin, link, bid="bench", seconds=seconds)
    base = f"{prod.url}/live-hls/{key}/"
    phases, players = [], []
    try:
        origin.run("bench", src)
        t0 = time.monotonic()
        wait(lambda: (data / "live" / key / "index.m3u8").exists(), 60, "the node's first playlist")
        quarter = seconds / 4
        for n in (0, 10, viewers):
            while len(players) < n:
                players.append(Player(base))
                players[-1].start()
            c0, w0 = cpu_seconds(prod), time.monotonic()
            time.sleep(quarter if n != viewers else max(quarter, seconds - (time.monotonic() - t0) - 3))
            phases.append({"viewers": n, "cpu_per_second": (cpu_seconds(prod) - c0) / (time.monotonic() - w0)})
        origin.ffmpeg.communicate(timeout=seconds + 60)
        for p in players:
            p.join(timeout=20)
        conn = open_main(cfg)
        try:
            wait(lambda: q.get(conn, key)["state"] == "ended", 60, "the relay to end")
            rows = q.segments(conn, key)
            fetched = {r["seq"]: r for r in rows}
        finally:
            conn.close()
        made = {int(p.stem[3:]): p.stat().st_mtime for p in origin.dir().glob("seg*.ts")}
        lat = [fetched[s]["fetched_at"] - made[s] for s in fetched if s in made]
        stream = sum(r["size"] for r in rows)
        base_cpu = phases[0]["cpu_per_second"]
        big = players[10:]
        return {
            "seconds": seconds, "segments": len(rows), "segment_seconds": rows[0]["duration"],
            "latency_p50_s": round(pct(lat, 50), 3), "latency_p95_s": round(pct(lat, 95), 3),
            "latency_p50_segments": round(pct(lat, 50) / rows[0]["duration"], 2),
            "latency_p95_segments": round(pct(lat, 95) / rows[0]["duration"], 2),
            "cpu_phases": phases,
            "cpu_per_added_viewer_10": round((phases[1]["cpu_per_second"] - base_cpu) / 10, 5),
            "cpu_per_added_viewer_50": round((phases[2]["cpu_per_second"] - base_cpu) / viewers, 5),
            "viewers": viewers, "stalls": sum(p.stalls for p in players),
            "stalls_in_last_phase": sum(p.stalls for p in big), "viewer_errors": sum(p.errors for p in players),
            "viewer_segments_mean": round(statistics.mean(p.segments for p in players), 1),
            "origin_bytes": link.bytes_down, "stream_bytes": stream,
            "origin_over_stream": round(link.bytes_down / stream, 4),
            "viewer_bytes_over_origin": round(sum(p.segments for p in players) * stream / len(rows) / link.bytes_down,
                                              1),
        }
    finally:
        for p in players:
            p.stop = True
        prod.stop()
        link.close()
        origin.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--viewers", type=int, default=50)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the node and origin (finally), leak nothing
    # Under bench/out, not /tmp: other runs on a shared machine may sweep /tmp/bench-*.
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="live-", dir=ROOT / "bench" / "out") as tmp:
        r = run(args.seconds, args.viewers, Path(tmp))
    print(f"latency behind the origin: p50 {r['latency_p50_s']} s ({r['latency_p50_segments']} segments), "
          f"p95 {r['latency_p95_s']} s ({r['latency_p95_segments']} segments of {r['segment_seconds']} s)")
    print("node CPU (s/s): " + ", ".join(f"{p['viewers']} viewers {p['cpu_per_second']:.3f}" for p in r["cpu_phases"]))
    print(f"node CPU per added viewer: {r['cpu_per_added_viewer_10']:.5f} s/s (10), "
          f"{r['cpu_per_added_viewer_50']:.5f} s/s ({r['viewers']}); baseline = the relay alone")
    print(f"{r['viewers']} viewers through nginx: {r['stalls']} stalls ({r['stalls_in_last_phase']} while all "
          f"{r['viewers']} watched), {r['viewer_errors']} errors")
    print(f"origin bytes / stream bytes: {r['origin_over_stream']} ({r['origin_bytes']} / {r['stream_bytes']}); "
          f"viewers received {r['viewer_bytes_over_origin']}x what the link carried")
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "live.json").write_text(json.dumps(r, indent=2))
    return 0 if r["stalls"] == 0 and r["origin_over_stream"] <= 1.05 else 1


if __name__ == "__main__":
    sys.exit(main())
