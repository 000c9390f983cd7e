"""The live schedule (直播预告): signed by the county, carried by bundles, heartbeat answers and sticks,
shown on the portal home with a countdown rendered on the server; hostile schedules and playlists
refused with a code and Chinese text, changing nothing."""

from __future__ import annotations

import json
import time

import pytest

from edgenode.core.db import open_main
from edgenode.hub import live as hub_live
from edgenode.node.live import queries as q, schedule
from edgenode.protocol import live, minisign
from tests.conftest import make_config
from tests.helpers_live import trust_county

ORIGIN = "http://hub.test/live/"


@pytest.fixture
def setup(tmp_path):
    node = make_config(tmp_path / "node", live__origins=[ORIGIN])
    hub = make_config(tmp_path / "hub")
    trust_county(node, hub.data_path)
    conn = open_main(node)
    yield node, hub, conn
    conn.close()


def entry(bid="lecture-1", start=None, hours=1.0, url=None, **over):
    start = time.time() + 3600 if start is None else start
    return {"id": bid, "title": "图书馆公开课直播", "description": "县图书馆", "start": start,
            "end": start + hours * 3600, "stream_url": url or f"{ORIGIN}{bid}/index.m3u8", **over}


def signed(hub, channel, entries, *, seq=None, key=None):
    """The county's document, as ``edgenode hub live schedule`` signs it (or with another key)."""
    seq = seq or hub_live.schedule(hub, channel)["seq"] + 1
    data = json.dumps({"format": live.FORMAT, "channel": channel, "seq": seq, "created": 1,
                       "broadcasts": entries}, ensure_ascii=False).encode()
    sk = key or hub_live.keychain.county_key(hub)
    return data, minisign.sign_bytes(data, sk)


def test_a_signed_schedule_is_applied_and_shown_on_the_portal_home_with_a_countdown(setup):
    node, hub, conn = setup
    now = time.time()
    hub_live.add(hub, "shequ", entry("on-now", start=now - 600, hours=1))
    hub_live.add(hub, "shequ", entry("next-one", start=now + 2 * 3600 + 300, hours=1, title="乡村春晚"))
    for item in hub_live.answers(hub):
        r = schedule.apply_document(node, conn, item["schedule"].encode(), item["signature"])
    assert r == {"channel": "shequ", "seq": 2, "broadcasts": 2, "unchanged": False}
    from edgenode.node.app import create_app
    client = create_app(node).test_client()
    html = client.get("/").get_data(as_text=True)
    assert "正在直播" in html and "图书馆公开课直播" in html and "距离结束还有 50 分钟" in html
    assert "直播预告" in html and "乡村春晚" in html and "还有 2 小时 5 分钟" in html
    page = client.get("/live/shequ.next-one").get_data(as_text=True)
    assert "还有 2 小时 5 分钟开始" in page and 'http-equiv="refresh"' in page  # no script needed
    live_page = client.get("/live/shequ.on-now").get_data(as_text=True)
    assert "/live-hls/shequ.on-now/index.m3u8" in live_page and "hls.min.js" in live_page
    assert client.get("/live-static/hls.min.js").status_code == 200


def test_the_same_schedule_again_is_unchanged_and_an_older_one_is_a_rollback(setup):
    node, hub, conn = setup
    hub_live.add(hub, "shequ", entry())
    item = hub_live.answers(hub)[0]
    schedule.apply_document(node, conn, item["schedule"].encode(), item["signature"])
    assert schedule.apply_document(node, conn, item["schedule"].encode(), item["signature"])["unchanged"]
    hub_live.add(hub, "shequ", entry("lecture-2", start=time.time() + 9 * 3600))
    newer = hub_live.answers(hub)[0]
    schedule.apply_document(node, conn, newer["schedule"].encode(), newer["signature"])
    with pytest.raises(Exception) as e:
        schedule.apply_document(node, conn, item["schedule"].encode(), item["signature"])
    assert e.value.code == "E_ROLLBACK" and "旧" in e.value.zh


def _hostile(hub, node):
    now = time.time() + 3600
    other = minisign.generate_keypair()
    good_data, good_sig = signed(hub, "shequ", [entry()])
    tampered = good_data.replace("图书馆".encode(), "假冒的".encode())
    return [
        ("bad signature", tampered, good_sig, "E_SIG_INVALID"),
        ("key not trusted", *signed(hub, "shequ", [entry()], key=other), "E_SIG_UNTRUSTED"),
        ("channel the key may not publish", *signed(hub, "sannong", [entry()]), "E_CHANNEL_FORBIDDEN"),
        ("overlapping windows", *signed(hub, "shequ", [entry("a", start=now), entry("b", start=now + 1800)]),
         "E_LIVE_OVERLAP"),
        ("stream outside the origins", *signed(hub, "shequ", [entry(url="http://evil.test/live/x.m3u8")]),
         "E_LIVE_ORIGIN"),
        ("poster outside the origins", *signed(hub, "shequ", [entry(poster="http://evil.test/p.jpg")]),
         "E_LIVE_ORIGIN"),
        ("end before start", *signed(hub, "shequ", [entry(hours=-1)]), "E_LIVE_SCHEDULE"),
        ("window over 12 hours", *signed(hub, "shequ", [entry(hours=13)]), "E_LIVE_SCHEDULE"),
        ("time without offset", *signed(hub, "shequ", [entry() | {"start": "2026-12-07T19:30"}]), "E_LIVE_SCHEDULE"),
        ("unknown field", *signed(hub, "shequ", [entry(autoplay=True)]), "E_LIVE_SCHEDULE"),
        ("stream not http", *signed(hub, "shequ", [entry(url="file:///etc/passwd")]), "E_LIVE_SCHEDULE"),
        ("duplicate key", *(lambda d: (d, minisign.sign_bytes(d, hub_live.keychain.county_key(hub))))(
            good_data.replace(b'"channel":', b'"channel": "sannong", "channel":')), "E_LIVE_SCHEDULE"),
    ]


def test_hostile_schedules_are_refused_with_a_code_and_chinese_and_change_nothing(setup):
    node, hub, conn = setup
    seen = set()
    for name, data, sig, code in _hostile(hub, node):
        with pytest.raises(Exception) as e:
            schedule.apply_document(node, conn, data, sig)
        assert getattr(e.value, "code", None) == code, name
        assert any("\u4e00" <= ch <= "\u9fff" for ch in e.value.zh), name
        assert q.listing(conn, 0) == [] and q.schedule_seq(conn, "shequ") is None, name
        seen.add(code)
    assert len(seen) == 6


def test_a_schedule_overlapping_one_already_kept_is_refused(setup):
    node, hub, conn = setup
    start = time.time() + 3600
    schedule.apply_document(node, conn, *signed(hub, "shequ", [entry("first", start=start)], seq=1))
    with pytest.raises(live.LiveError) as e:
        schedule.apply_document(node, conn, *signed(hub, "shequ", [entry("second", start=start + 600)], seq=2))
    assert e.value.code == "E_LIVE_OVERLAP"
    assert [b["id"] for b in q.listing(conn, 0)] == ["first"]


def test_heartbeat_answers_with_bad_schedules_report_the_code_and_keep_the_heartbeat(setup):
    node, hub, conn = setup
    data, sig = signed(hub, "shequ", [entry()])
    out = schedule.apply_answer(node, conn, {"live_schedules": [
        {"schedule": data.decode().replace("县图书馆", "假"), "signature": sig}, {"nonsense": 1},
        {"schedule": data.decode(), "signature": sig}]})
    assert out == {"live_schedule_errors": ["E_SIG_INVALID", "E_LIVE_SCHEDULE"], "live_schedules_applied": ["shequ#1"]}


def test_schedules_travel_on_a_stick_and_apply_with_its_import(setup, tmp_path):
    from edgenode.core.store import open_store
    from edgenode.node.imports.pipeline import import_tree
    node, hub, conn = setup
    hub_live.add(hub, "shequ", entry())
    assert hub_live.to_stick(hub, tmp_path / "stick") == 1
    live_dir = tmp_path / "stick" / "edgenode-bundles" / "edgenode-live"
    (live_dir / "pushi.json").write_text("{}")  # no signature beside it
    r = schedule.apply_stick(node, conn, tmp_path / "stick")
    assert [a["broadcasts"] for a in r["applied"]] == [1]
    assert r["refused"] == [{"file": "pushi.json", "code": "E_SIG_MISSING"}]
    # A stick that carries only a newer schedule: importing it (as the USB source does) applies it.
    hub_live.add(hub, "shequ", entry("lecture-2", start=time.time() + 9 * 3600))
    hub_live.to_stick(hub, tmp_path / "stick")
    with pytest.raises(Exception) as e:
        import_tree(node, conn, open_store(node), tmp_path / "stick", source="usb")
    assert e.value.code == "E_NO_BUNDLES"
    assert q.schedule_seq(conn, "shequ")[0] == 2 and len(q.listing(conn, 0)) == 2


def test_a_bundle_carries_the_schedule_and_a_hostile_one_refuses_the_whole_import(setup, tmp_path):
    from edgenode.core.store import open_store
    from edgenode.node.imports.pipeline import import_bundle
    from edgenode.protocol.build import build_bundle
    from tests.fixtures import ffmpeg

    node, hub, conn = setup
    sk = hub_live.keychain.county_key(hub)
    src = tmp_path / "src"
    src.mkdir()
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", str(src / "a.mp3"))
    start = time.time() + 3600
    (src / "live.json").write_text(json.dumps([entry("a", start=start)]))
    ok = build_bundle(src, "shequ", 1, tmp_path / "out", secret_key=sk)
    assert import_bundle(node, conn, open_store(node), ok, source="test").result == "imported"
    assert [b["key"] for b in q.listing(conn, 0)] == ["shequ.a"]
    doc = json.loads((ok / "manifest.json").read_text())
    doc["seq"], doc["live"] = 2, [entry("b", start=start + 60), entry("c", start=start + 120)]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "files").symlink_to(ok / "files")
    (bad / "manifest.json").write_text(json.dumps(doc, ensure_ascii=False))
    minisign.sign_file(bad / "manifest.json", sk)
    r = import_bundle(node, conn, open_store(node), bad, source="test")
    assert (r.result, r.error_code) == ("failed", "E_LIVE_OVERLAP")
    assert [b["key"] for b in q.listing(conn, 0)] == ["shequ.a"]


@pytest.mark.parametrize("text, fragment", [
    ("", "#EXTM3U"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow.m3u8\n", "not supported"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n", "not supported"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:2\nseg.ts\n", "without #EXTINF"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:600\n", "TARGETDURATION"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + "#EXTINF:2,\ns.ts\n" * (live.MAX_PLAYLIST_SEGMENTS + 1), "cut off"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + "#" * live.MAX_PLAYLIST_BYTES, "larger than"),
    ("#EXTM3U\n#EXT-X-TARGETDURATION:nan\n", "out of range"),
])
def test_hostile_playlists_are_refused_with_a_code(text, fragment):
    with pytest.raises(live.LiveError) as e:
        live.parse_playlist(text, "http://hub.test/live/x/index.m3u8")
    assert e.value.code == "E_LIVE_PLAYLIST" and fragment in e.value.message and e.value.zh


def test_the_rooms_playlist_numbers_its_own_segments_and_marks_the_jump_after_a_gap():
    from edgenode.node.live.relay import local_playlist
    rows = [{"seq": s, "duration": 2.0} for s in (0, 1, 2, 3, 9, 10, 11, 12, 13)]
    text = local_playlist(rows, ended=False, window=6)
    pl = live.parse_playlist(text, "http://node/x/index.m3u8")
    assert pl.media_sequence == 3 and [s.uri.rsplit("/", 1)[1] for s in pl.segments][:2] == ["s00000003.ts",
                                                                                              "s00000009.ts"]
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:0" in text and text.count("#EXT-X-DISCONTINUITY\n") == 1
    later = local_playlist(rows + [{"seq": 14, "duration": 2.0}, {"seq": 15, "duration": 2.0}], ended=True)
    assert "#EXT-X-ENDLIST" in later and "#EXT-X-DISCONTINUITY-SEQUENCE:0" in later
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1" in local_playlist(rows + [{"seq": 14, "duration": 2}] * 0 + [
        {"seq": s, "duration": 2.0} for s in range(14, 20)], ended=False, window=6)


def test_the_scheduler_starts_a_child_only_when_a_relay_or_a_replay_is_due(setup, monkeypatch):
    from edgenode.node.live import jobs
    node, hub, conn = setup
    monkeypatch.setattr(jobs, "_last_replay", [0.0])
    now = time.time()
    assert jobs.due(node, now) is None  # an idle node: one query, no child
    schedule.apply_document(node, conn, *signed(hub, "shequ", [entry("soon", start=now + 30)], seq=1))
    assert jobs.due(node, now) == "relay"  # within live.lead_seconds of the start
    assert jobs.due(node, now + 4000) == "replay" and jobs.due(node, now + 4010) is None  # then every 5 min
    closed = node.replace(sync__windows=[{"start": "03:00", "end": "03:01", "jobs": ["pull"]}])
    assert jobs.due(closed, now + 4000 + jobs.REPLAY_EVERY + 1) is None  # outside the pull's windows


def test_the_live_commands(setup, tmp_path):
    from click.testing import CliRunner
    from edgenode.cli import cli
    node, hub, conn = setup
    hub_live.add(hub, "shequ", entry())
    hub_live.to_stick(hub, tmp_path / "stick")

    def run(*args):
        return CliRunner().invoke(cli, ["--data-dir", str(node.data_path), *args],
                                  env={"EDGENODE_CONFIG": "", "EDGENODE_LIVE_ORIGINS": json.dumps([ORIGIN])})

    r = run("live", "schedule-import", str(tmp_path / "stick" / "edgenode-bundles" / "edgenode-live" / "shequ.json"))
    assert r.exit_code == 0 and "shequ #1: 1 broadcasts" in r.output, r.output
    assert run("live", "schedule-import", str(tmp_path / "stick" / "edgenode-bundles" / "edgenode-live" / "shequ.json")).output.endswith(
        "(unchanged)\n")
    assert [b["key"] for b in json.loads(run("live", "list", "--json").output)] == ["shequ.lecture-1"]
    r = run("live", "replay", "shequ.nothing")
    assert r.exit_code == 1 and "E_NOT_FOUND" in r.output


def test_the_tv_switches_to_a_broadcast_on_now_and_back_when_none_is(setup):
    """The reading room's TV: its screening page gives way to the relay while a broadcast is on."""
    node, hub, conn = setup
    from edgenode.node.app import create_app
    client = create_app(node).test_client()
    assert client.get("/tv/screen").status_code == 200  # nothing on: the screening plays
    assert client.get("/tv/api/now").get_json()["live"] is None
    assert client.get("/tv/live/shequ.on-now").headers["Location"].endswith("/tv/screen")
    now = time.time()
    hub_live.add(hub, "shequ", entry("on-now", start=now - 60, hours=1))
    for item in hub_live.answers(hub):
        schedule.apply_document(node, conn, item["schedule"].encode(), item["signature"])
    r = client.get("/tv/screen")
    assert r.status_code == 302 and r.headers["Location"].endswith("/tv/live/shequ.on-now")  # no script needed
    live_now = client.get("/tv/api/now").get_json()["live"]
    assert live_now == {"key": "shequ.on-now", "title": "图书馆公开课直播", "url": "/tv/live/shequ.on-now"}
    page = client.get("/tv/live/shequ.on-now").get_data(as_text=True)
    assert 'id="live-video"' in page and "/live-hls/shequ.on-now/index.m3u8" in page and "图书馆公开课直播" in page
    tiles = client.get("/tv/").get_data(as_text=True)
    assert tiles.index('id="live-tile"') < tiles.index('class="tile screening"')  # the broadcast comes first
