"""The replay (直播回看): it waits for a link window, backfills from the origin's recording, and when
segments stay missing past ``live.backfill_days`` it is imported marked incomplete, never silently short."""

from __future__ import annotations

import subprocess
import sys
import time

from edgenode.core.db import open_main, open_volatile
from edgenode.node.catalog import queries as cq
from edgenode.node.live import queries as q, relay, replay
from tests.conftest import make_config
from tests.helpers_live import ROOT, Link, Origin, make_source, schedule_broadcast, trust_county


def test_replay_waits_for_a_window_then_is_complete_or_clearly_incomplete(tmp_path):
    origin = Origin(tmp_path)
    link = Link(origin.port)
    try:
        src = make_source(tmp_path / "src.mp4", 12)
        subprocess.run([sys.executable, "-m", "edgenode", "--data-dir", str(origin.data_dir), "hub", "live", "run",
                        "talk", "--input", str(src), "--no-realtime"], cwd=ROOT, check=True, timeout=120)
        origin.key = "talk"
        now = time.time()
        cfg = make_config(tmp_path / "node", live__origins=[link.url + "/live/"], store__free_space_floor_mb=1,
                          sync__windows=[{"start": "03:00", "end": "03:01", "jobs": ["pull"]}])
        trust_county(cfg, origin.data_dir)
        key = schedule_broadcast(cfg, origin.data_dir, bid="talk", start=now - 60, end=now - 30, title="农技讲座",
                                 stream_url=link.url + "/live/talk/index.m3u8")
        conn, vconn = open_main(cfg), open_volatile(cfg)
        q.set_state(conn, key, "ended")
        # Outside every window for pull: nothing moves.
        out = replay.run_due(cfg, conn, vconn)
        assert out["replays"][0]["state"] == "waiting" and q.segments(conn, key) == []
        # The origin lost two segments of its recording: the replay waits while it may still get them...
        lost = [origin.dir() / "seg00000002.ts", origin.dir() / "seg00000003.ts"]
        kept = [p.read_bytes() for p in lost]
        for p in lost:
            p.unlink()
        r = replay.replay(cfg, conn, q.get(conn, key))
        assert (r["state"], r["missing"]) == ("waiting", 2) and len(q.segments(conn, key)) == 4
        # ...and after live.backfill_days is imported as it is, saying so.
        r = replay.replay(cfg, conn, q.get(conn, key), give_up=True)
        b = q.get(conn, key)
        assert (r["state"], b["replay_state"], b["missing_seconds"]) == ("incomplete", "incomplete", 4.0)
        res = cq.get(conn, b["replay_resource"], include_hidden=True)
        assert res["title"] == "直播回看：农技讲座（不完整）" and "缺少约 4 秒" in res["description"]
        # The county found the two segments again: the next replay is complete and replaces the title.
        for p, data in zip(lost, kept):
            p.write_bytes(data)
        r = replay.replay(cfg, conn, q.get(conn, key))
        assert r["state"] == "complete"
        res = cq.get(conn, q.get(conn, key)["replay_resource"], include_hidden=True)
        assert res["title"] == "直播回看：农技讲座" and abs(res["duration"] - origin.recording_seconds()) <= 1.0
        assert [s["sha256"] for s in q.segments(conn, key)] == origin.recording_hashes()
        assert not list(relay.broadcast_dir(cfg, key).glob(".replay-*"))  # the remux's work folder is gone
        conn.close()
        vconn.close()
    finally:
        link.close()
        origin.stop()


def test_the_county_publishes_the_recording_as_a_signed_bundle_for_points_never_online(tmp_path):
    import json
    from edgenode.core.store import open_store
    from edgenode.node.imports.pipeline import import_bundle

    origin = Origin(tmp_path)
    try:
        src = make_source(tmp_path / "src.mp4", 8)
        hub = [sys.executable, "-m", "edgenode", "--data-dir", str(origin.data_dir), "hub"]
        subprocess.run([*hub, "live", "run", "gala", "--input", str(src), "--no-realtime"], cwd=ROOT, check=True,
                       timeout=120, capture_output=True)
        origin.key = "gala"
        out = subprocess.run([*hub, "live", "publish-recording", "nope", "--channel", "shequ", "--title", "x"],
                             cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 1 and "E_LIVE_NOT_ENDED" in out.stderr
        out = subprocess.run([*hub, "live", "publish-recording", "gala", "--channel", "shequ", "--title", "乡村春晚",
                              "--json"], cwd=ROOT, capture_output=True, text=True, check=True)
        bundle = json.loads(out.stdout)["bundle"]
        cfg = make_config(tmp_path / "offline-node", store__free_space_floor_mb=1)
        trust_county(cfg, origin.data_dir)
        conn = open_main(cfg)
        r = import_bundle(cfg, conn, open_store(cfg), bundle, source="usb")
        assert r.result == "imported", r.error
        res = cq.get(conn, "shequ.replay-gala", include_hidden=True)
        assert res["title"] == "直播回看：乡村春晚" and abs(res["duration"] - origin.recording_seconds()) <= 1.0
        conn.close()
    finally:
        origin.stop()
