"""The relay against a hostile or broken origin (real nginx serving files written here): a stream that
never starts, a segment over the cap, a segment elsewhere, a playlist without end, a full disk.
Each is reported with its code and Chinese text; what was already written stays whole."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from edgenode.core.db import open_main
from edgenode.node.live import queries as q, relay
from tests.conftest import make_config
from tests.helpers_live import Link, Origin, schedule_broadcast, trust_county


@pytest.fixture
def origin(tmp_path):
    o = Origin(tmp_path)
    link = Link(o.port)
    o.link = link
    yield o
    link.close()
    o.stop()


def _setup(tmp_path, origin, key="x", **over):
    cfg = make_config(tmp_path / "node", live__origins=[origin.link.url + "/live/"], live__no_stream_seconds=1,
                      live__timeout_seconds=2.0, **over)
    trust_county(cfg, origin.data_dir)
    now = time.time()
    bkey = schedule_broadcast(cfg, origin.data_dir, bid=key, start=now - 5, end=now + 600,
                              stream_url=f"{origin.link.url}/live/{key}/index.m3u8")
    (origin.data_dir / "live" / key).mkdir(parents=True, exist_ok=True)
    conn = open_main(cfg)
    return cfg, conn, q.get(conn, bkey)


def _playlist(d, segments, *, ended=False, sizes=None, uris=None):
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
    for i in range(segments):
        name = f"seg{i:08d}.ts"
        if sizes is not None:
            (d / name).write_bytes(os.urandom(sizes[i]))
        lines += ["#EXTINF:2.0,", (uris or {}).get(i, name)]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    (d / "index.m3u8").write_text("\n".join(lines) + "\n")


def test_a_stream_that_never_starts_is_reported_in_chinese(tmp_path, origin):
    cfg, conn, b = _setup(tmp_path, origin)
    r = relay.relay(cfg, conn, b, stop_at=time.time() + 2.5)
    row = q.get(conn, b["key"])
    assert r["state"] == "no_stream" and (row["state"], row["error_code"]) == ("no_stream", "E_LIVE_NO_STREAM")
    from edgenode.node.app import create_app
    page = create_app(cfg).test_client().get(f"/live/{b['key']}").get_data(as_text=True)
    assert "直播信号还没有开始" in page


def test_segments_over_the_cap_or_elsewhere_are_skipped(tmp_path, origin):
    cfg, conn, b = _setup(tmp_path, origin, live__max_segment_mb=1, live__catchup_segments=10)
    d = origin.data_dir / "live" / "x"
    _playlist(d, 4, ended=True, sizes=[1000, 3 * 1024 * 1024, 1000, 1000],
              uris={2: "http://evil.test/live/x/seg00000002.ts"})
    r = relay.relay(cfg, conn, b, stop_at=time.time() + 20)
    assert r["state"] == "ended" and sorted(r["errors"]) == ["E_LIVE_ORIGIN", "E_LIVE_SEGMENT_TOO_BIG"]
    assert [s["seq"] for s in q.segments(conn, b["key"])] == [0, 3]
    assert sorted(p.name for p in relay.broadcast_dir(cfg, b["key"]).iterdir()) == [
        "index.m3u8", "s00000000.ts", "s00000003.ts"]


def test_a_playlist_past_the_caps_is_refused_and_one_without_end_stops_with_the_window(tmp_path, origin):
    from edgenode.protocol.live import MAX_PLAYLIST_SEGMENTS
    cfg, conn, b = _setup(tmp_path, origin)
    d = origin.data_dir / "live" / "x"
    _playlist(d, MAX_PLAYLIST_SEGMENTS + 1)
    r = relay.relay(cfg, conn, b, stop_at=time.time() + 3)
    assert r["errors"][0] == "E_LIVE_PLAYLIST" and q.segments(conn, b["key"]) == []
    assert q.get(conn, b["key"])["error_code"] == "E_LIVE_PLAYLIST"
    _playlist(d, 3, sizes=[100, 100, 100])  # never #EXT-X-ENDLIST: the relay ends with its window
    began = time.monotonic()
    r = relay.relay(cfg, conn, b, stop_at=time.time() + 3)
    assert time.monotonic() - began < 8 and r["segments"] == 3
    assert (relay.broadcast_dir(cfg, b["key"]) / "index.m3u8").read_text().rstrip().endswith("#EXT-X-ENDLIST")


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_a_full_disk_stops_the_relay_and_keeps_what_was_written(tmp_path, origin):
    cfg, conn, b = _setup(tmp_path, origin, live__min_free_mb=0, live__catchup_segments=10)
    live_dir = cfg.data_path / "live"
    live_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", f"i20live{os.getpid()}", str(live_dir)], check=True)
    try:
        d = origin.data_dir / "live" / "x"
        _playlist(d, 6, ended=True, sizes=[600 * 1024] * 6)
        r = relay.relay(cfg, conn, b, stop_at=time.time() + 20)
        row = q.get(conn, b["key"])
        assert (r["state"], r.get("code"), row["state"], row["error_code"]) == ("stopped", "E_DISK_FULL", "stopped",
                                                                            "E_DISK_FULL")
        assert row["error_zh"] == "存储空间已满，直播转发已停止"
        kept = q.segments(conn, b["key"])
        assert 1 <= len(kept) < 6
        out = relay.broadcast_dir(cfg, b["key"])
        for s in kept:
            assert (out / f"s{s['seq']:08d}.ts").read_bytes() == (d / f"seg{s['seq']:08d}.ts").read_bytes()
        assert not list(out.glob(".tmp-*"))
    finally:
        subprocess.run(["umount", "-l", str(live_dir)], check=False)
