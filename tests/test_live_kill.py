"""SIGKILL of the relay at random moments: no partial segment and no torn playlist is ever visible
through the node's nginx, and the relay the scheduler starts next continues to the end."""

from __future__ import annotations

import hashlib
import json
import random
import time

import psutil
import pytest
import requests

from edgenode.core.db import open_main
from edgenode.node.live import queries as q
from edgenode.protocol.live import parse_playlist
from tests.helpers_live import Link, Origin, live_node, make_source
from tests.test_live_relay import LIVE_ENV, _wait


def _relay_child(scheduler_pid: int, origin_port: int):
    """The scheduler's job child that talks to the origin (other jobs' children, the heartbeat's, the spool
    scan's, come and go too: they must not be the ones killed)."""
    for p in psutil.Process(scheduler_pid).children(recursive=True):
        try:
            if "edgenode.core.jobproc" in " ".join(p.cmdline()) and any(
                    c.raddr and c.raddr.port == origin_port for c in p.net_connections(kind="tcp")):
                return p
        except psutil.NoSuchProcess:
            continue
    return None


def _visible_state(base: str, origin_dir, node_dir) -> int:
    """Everything a viewer could see is whole: the playlist parses, each segment it names is served and
    equals the origin's; every segment file on disk equals the origin's.  Returns segments listed."""
    r = requests.get(base + "index.m3u8", timeout=5)
    if r.status_code == 404:
        return 0
    pl = parse_playlist(r.text, base)
    for seg in pl.segments:
        seq = int(seg.uri.rsplit("/s", 1)[1][:8])
        body = requests.get(seg.uri, timeout=5).content
        assert body == (origin_dir / f"seg{seq:08d}.ts").read_bytes(), seg.uri
    for f in node_dir.glob("s*.ts"):
        assert f.read_bytes() == (origin_dir / f"seg{int(f.stem[1:]):08d}.ts").read_bytes(), f.name
    for f in node_dir.glob(".tmp-*"):
        assert requests.get(base + f.name, timeout=5).status_code == 404  # half-written: never served
    return len(pl.segments)


def run_kills(work, monkeypatch, *, seconds: int, kills: int, seed: int) -> dict:
    src = make_source(work / "src.mp4", seconds)
    origin = Origin(work)
    link = Link(origin.port)
    for k, v in LIVE_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("EDGENODE_LIVE_ORIGINS", json.dumps([link.url + "/live/"]))
    cfg, data, prod, key = live_node(work, origin, link, bid="gala", seconds=seconds)
    base, node_dir = f"{prod.url}/live-hls/{key}/", data / "live" / key
    rnd = random.Random(seed)
    restarts = []
    try:
        origin.run("gala", src)
        t0 = time.monotonic()
        moments = sorted(rnd.uniform(4, seconds - 2) for _ in range(kills))
        for m in moments:
            time.sleep(max(0.0, m - (time.monotonic() - t0)))
            child = _wait(lambda: _relay_child(prod.scheduler.pid, link.port), 15, "a relay to kill", step=0.05)
            time.sleep(rnd.uniform(0, 0.5))  # anywhere: mid-segment, mid-playlist, mid-row
            child.kill()
            killed = time.monotonic()
            _visible_state(base, origin.dir(), node_dir)
            _wait(lambda: (c := _relay_child(prod.scheduler.pid, link.port)) and c.pid != child.pid, 15,
                  "the scheduler to start the relay again", step=0.1)
            restarts.append(time.monotonic() - killed)
        origin.ffmpeg.communicate(timeout=seconds + 60)
        conn = open_main(cfg)
        try:
            _wait(lambda: q.get(conn, key)["state"] == "ended", 30, "the relay to finish")
            rows = q.segments(conn, key)
        finally:
            conn.close()
        listed = _visible_state(base, origin.dir(), node_dir)
        final = requests.get(base + "index.m3u8", timeout=5).text
        return {"restarts": restarts, "rows": rows, "listed": listed, "final": final,
                "origin": origin.recording_hashes(),
                "files": {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in node_dir.glob("s*.ts")}}
    finally:
        prod.stop()
        link.close()
        origin.stop()


def check(obs, kills: int):
    assert len(obs["restarts"]) == kills and max(obs["restarts"]) < 15
    assert obs["final"].rstrip().endswith("#EXT-X-ENDLIST")
    # The relay continued to the end: the last segments are there, live, and equal the origin's.
    ours = {r["seq"]: r["sha256"] for r in obs["rows"]}
    assert max(ours) == len(obs["origin"]) - 1
    assert all(obs["origin"][seq] == sha for seq, sha in ours.items())
    assert all(f"s{seq:08d}.ts" in obs["files"] for seq in ours)


def test_sigkill_of_the_relay_at_five_moments(tmp_path, monkeypatch):
    check(run_kills(tmp_path, monkeypatch, seconds=20, kills=5, seed=20), 5)


@pytest.mark.slow
def test_sigkill_of_the_relay_at_twenty_moments(tmp_path, monkeypatch):
    check(run_kills(tmp_path, monkeypatch, seconds=80, kills=20, seed=2020), 20)
