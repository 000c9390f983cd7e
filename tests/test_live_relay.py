"""A live broadcast end to end, real processes on loopback.

ffmpeg plays a file at real-time pace into ``edgenode hub live run``; the hub's nginx serves the
HLS; a TCP link (counting its bytes, cut for 20 s in the middle) joins it to a node running as
an appliance does (nginx, gunicorn, ``edgenode scheduler`` whose child relays).  Two chromium
pages play through hls.js and ten more viewers pull the room's playlist and segments from the
node's nginx, and the reading room's TV page (``/tv/screen``), which switches to the relay by itself.
Afterwards the scheduler backfills what the cut missed and imports the replay.

The default form's broadcast lasts 42 s; the slow form's three minutes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time

import pytest
import requests

from edgenode.core.db import open_main
from edgenode.node.live import queries as q
from edgenode.protocol.live import parse_playlist
from tests.helpers_live import Link, Origin, live_node, make_source

pytestmark = pytest.mark.browser
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--autoplay-policy=no-user-gesture-required"]
LIVE_ENV = {"EDGENODE_LIVE_CHECK_SECONDS": "1", "EDGENODE_LIVE_GRACE_SECONDS": "5",
            "EDGENODE_LIVE_TIMEOUT_SECONDS": "2", "EDGENODE_STORE_FREE_SPACE_FLOOR_MB": "1",
            "EDGENODE_LIVE_MIN_FREE_MB": "1"}


class Viewer(threading.Thread):
    """A player's requests without a browser: the room's playlist every second, each new segment once."""

    def __init__(self, base: str):
        super().__init__(daemon=True)
        self.base, self.stop, self.bytes, self.segments, self.errors = base, False, 0, set(), 0

    def run(self):
        s = requests.Session()
        while not self.stop:
            try:
                r = s.get(self.base + "index.m3u8", timeout=5)
                for seg in parse_playlist(r.text, self.base).segments if r.ok else ():
                    if seg.uri not in self.segments:
                        got = s.get(seg.uri, timeout=5)
                        self.errors += got.status_code != 200
                        self.bytes += len(got.content)
                        self.segments.add(seg.uri)
            except (requests.RequestException, ValueError):
                self.errors += 1
            time.sleep(1)


def _wait(pred, timeout: float, what: str, step: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def _times(pages) -> list[float]:
    return [p.evaluate("document.getElementById('live-video').currentTime") for p in pages]


def _instrument(page) -> None:
    """Nothing by default; a debugging run replaces this (hls.js logs, requests)."""


def _live_env(link, monkeypatch):
    for k, v in LIVE_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("EDGENODE_LIVE_ORIGINS", json.dumps([link.url + "/live/"]))


def run_scenario(work, monkeypatch, seconds: int, cut_at: float, cut_for: float = 20.0) -> dict:
    from playwright.sync_api import sync_playwright

    src = make_source(work / "src.mp4", seconds)
    origin = Origin(work)
    link = Link(origin.port)
    _live_env(link, monkeypatch)
    cfg, data, prod, key = live_node(work, origin, link, bid="lecture", seconds=seconds)
    obs: dict = {"key": key, "cfg": cfg, "origin": origin}
    viewers = [Viewer(f"{prod.url}/live-hls/{key}/") for _ in range(10)]
    try:
        origin.run("lecture", src)
        t0 = time.monotonic()
        _wait(lambda: (data / "live" / key / "index.m3u8").exists(), 30, "the node's first playlist")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            pages = [browser.new_page() for _ in range(3)]
            for page in pages:
                _instrument(page)
            for page in pages[:2]:
                page.goto(f"{prod.url}/live/{key}")
            pages[2].goto(f"{prod.url}/tv/screen")  # the TV's screening page: the broadcast takes it over
            obs["tv_url"] = pages[2].url
            for v in viewers:
                v.start()
            first = _wait(lambda: all(t > 2 for t in _times(pages)) and _times(pages), 30, "both pages playing")
            time.sleep(2)
            obs["players"] = [pg.evaluate("window.__livePlayer") for pg in pages]
            obs["advanced"] = [b - a for a, b in zip(first, _times(pages))]
            time.sleep(max(0.0, cut_at - (time.monotonic() - t0)))
            link.down()
            obs["status_during_cut"] = _wait(
                lambda: "信号中断" in pages[0].inner_text("#live-status") and pages[0].inner_text("#live-status"),
                cut_for, "the page to say the signal is interrupted")
            time.sleep(max(0.0, cut_for - 5))
            at_return = _times(pages)
            link.up()
            back = time.monotonic()
            _wait(lambda: all(b > a + 1 for a, b in zip(at_return, _times(pages))), 20, "the pages to resume")
            obs["resume_seconds"] = time.monotonic() - back
            out, err = origin.ffmpeg.communicate(timeout=seconds + 60)
            obs["origin_result"] = json.loads(out)
            for v in viewers:
                v.stop = True
            browser.close()
        conn = open_main(cfg)
        try:
            _wait(lambda: q.get(conn, key)["replay_state"], 90, "the replay", step=1)
            obs["broadcast"] = q.get(conn, key)
            obs["segments"] = q.segments(conn, key)
        finally:
            conn.close()
        obs["link_bytes"] = link.bytes_down
        obs["viewer_bytes"] = [v.bytes for v in viewers]
        obs["viewer_errors"] = sum(v.errors for v in viewers)
        return obs
    finally:
        for v in viewers:
            v.stop = True
        prod.stop()
        link.close()
        origin.stop()


def check_pages_play(obs):
    assert obs["players"] == ["hlsjs"] * 3  # chromium: hls.js, vendored and served by the node; the TV too
    assert "/tv/live/" in obs["tv_url"], obs["tv_url"]
    assert all(a > 1 for a in obs["advanced"]), obs["advanced"]


def check_bytes_once(obs):
    stream = sum(r["size"] for r in obs["segments"])
    ratio = obs["link_bytes"] / stream
    assert ratio <= 1.05, f"origin bytes / stream bytes = {ratio:.3f}"
    assert obs["viewer_errors"] == 0 and min(obs["viewer_bytes"]) > stream / 3


def check_cut_and_replay(obs):
    origin, b = obs["origin"], obs["broadcast"]
    assert obs["status_during_cut"].strip() == "信号中断，正在重连"
    assert obs["resume_seconds"] <= 10, obs["resume_seconds"]
    assert b["replay_state"] == "complete" and b["origin_segments"] == obs["origin_result"]["segments"]
    assert sorted(r["how"] for r in obs["segments"]).count("backfill") >= 5  # the cut's segments came afterwards
    ours = [r["sha256"] for r in obs["segments"]]
    assert ours == origin.recording_hashes()
    node_dir = obs["cfg"].data_path / "live" / obs["key"]
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(node_dir.glob("s*.ts"))] == ours
    conn = open_main(obs["cfg"])
    try:
        from edgenode.core.store import open_store
        from edgenode.node.catalog import queries as cq
        res = cq.get(conn, b["replay_resource"])
        blob = open_store(obs["cfg"]).path_for(res["sha256"])
    finally:
        conn.close()
    assert res["title"] == "直播回看：图书馆公开课直播" and res["kind"] == "video"
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                            str(blob)], capture_output=True, text=True, check=True)
    assert abs(float(probe.stdout) - origin.recording_seconds()) <= 1.0


def test_a_42_s_broadcast_to_two_pages_and_ten_viewers_through_a_20_s_cut_then_its_replay(tmp_path, monkeypatch):
    """One broadcast for the three checks (a module fixture would run once per xdist worker)."""
    obs = run_scenario(tmp_path, monkeypatch, seconds=42, cut_at=8)
    check_pages_play(obs)
    check_bytes_once(obs)
    check_cut_and_replay(obs)


@pytest.mark.slow
def test_three_minute_broadcast(tmp_path, monkeypatch):
    obs = run_scenario(tmp_path, monkeypatch, seconds=180, cut_at=80)
    check_pages_play(obs)
    check_bytes_once(obs)
    check_cut_and_replay(obs)
