"""The TV (电视) mode: schedule rules, the admin page and CLI, county schedules in signed bundles (issue 19)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from edgenode.node.app import create_app
from edgenode.node.imports.pipeline import import_bundle
from edgenode.node.tv import screenings
from edgenode.node.tv.schedule import ScheduleError, check_slot, choose, covers, next_change
from tests.conftest import make_config
from tests.helpers_bundles import make_bundle, new_key, rewrite_manifest, snapshot, trust_key
from tests.helpers_portal import CSRF_RE, login, set_admin

MON_19 = datetime(2026, 12, 7, 19, 0)  # a Monday


def slot(start, end, pid="p", days="1234567", source="local"):
    return {"start": start, "end": end, "playlist_id": pid, "days": days, "source": source}


@pytest.mark.parametrize("s, at, on", [
    (slot("19:00", "21:00"), MON_19, True),
    (slot("19:00", "21:00"), MON_19 - timedelta(seconds=1), False),
    (slot("19:00", "21:00"), MON_19 + timedelta(hours=2), False),          # the end is exclusive
    (slot("22:00", "02:00"), MON_19.replace(hour=23), True),               # past midnight
    (slot("22:00", "02:00"), MON_19.replace(hour=1), True),
    (slot("22:00", "02:00", days="1"), MON_19.replace(hour=1), False),     # 01:00 Monday belongs to Sunday's slot
    (slot("22:00", "02:00", days="7"), MON_19.replace(hour=1), True),
    (slot("19:00", "21:00", days="67"), MON_19, False),                    # weekends only
])
def test_when_a_slot_is_on(s, at, on):
    assert covers(s, at) is on


def test_the_point_comes_before_the_county_and_a_screening_before_the_loop():
    slots = [slot("18:00", "22:00", "county-evening", source="county:pushi"), slot("19:00", "20:00", "local-opera")]
    assert choose(slots, {"local": "mine"}, MON_19) == ("local-opera", "slot", slots[1])
    assert choose(slots, {}, MON_19.replace(hour=18))[0] == "county-evening"
    assert choose(slots, {"county:pushi": "c", "local": "mine"}, MON_19.replace(hour=8)) == ("mine", "loop", None)
    assert choose(slots, {"county:pushi": "c"}, MON_19.replace(hour=8)) == ("c", "loop", None)
    assert choose([], {}, MON_19) == (None, "newest", None)
    assert next_change(slots, MON_19.replace(hour=18, minute=30)).strftime("%H:%M") == "19:00"


@pytest.mark.parametrize("args", [("7:00", "7:00"), ("25:00", "26:00"), ("19:00", "21"), ("19:00", "21:00", "089")])
def test_bad_slots_are_refused(args):
    with pytest.raises(ScheduleError) as e:
        check_slot(*args)
    assert e.value.code == "E_TV_SCHEDULE"


def test_the_admin_page_sets_a_schedule(demo_cfg):
    app = create_app(demo_cfg)
    client = app.test_client()
    assert client.get("/admin/tv/").status_code in (302, 303)  # admin only
    from edgenode.core.db import open_main
    conn = open_main(demo_cfg)
    set_admin(conn)
    login(client)
    page = client.get("/admin/tv/").get_data(as_text=True)
    token = CSRF_RE.search(page).group(1)
    assert client.post("/admin/tv/playlist", data={"id": "opera", "title": "戏曲", "items": "demo-06"}).status_code == 400
    r = client.post("/admin/tv/playlist", data={"id": "opera", "title": "晚间戏曲", "items": "demo-06\ndemo-09",
                                                "csrf_token": token})
    assert r.status_code == 303
    r = client.post("/admin/tv/playlist", data={"id": "bad", "title": "x", "items": "demo-99", "csrf_token": token})
    assert r.status_code == 400 and "没有找到节目" in r.get_data(as_text=True)
    r = client.post("/admin/tv/slot", data={"start": "19:00", "end": "21:00", "playlist": "opera", "days": ["1", "2"],
                                            "csrf_token": token})
    assert r.status_code == 303
    r = client.post("/admin/tv/slot", data={"start": "19:00", "end": "19:00", "playlist": "opera", "csrf_token": token})
    assert r.status_code == 400 and "开始和结束时间不能相同" in r.get_data(as_text=True)
    page = client.get("/admin/tv/").get_data(as_text=True)
    assert "19:00–21:00" in page and "晚间戏曲" in page
    assert [(s["start"], s["days"], s["playlist_id"]) for s in screenings.overview(conn)["slots"]] == [
        ("19:00", "12", "opera")]
    conn.close()


def test_the_cli_sets_a_schedule_and_the_fake_clock_picks_it(demo_cfg, monkeypatch):
    from click.testing import CliRunner
    from edgenode.cli import cli

    def run(*args):
        return CliRunner().invoke(cli, ["--data-dir", str(demo_cfg.data_path), *args], catch_exceptions=False,
                                  env={"EDGENODE_CONFIG": ""})

    assert run("tv", "playlist", "day", "demo-01", "demo-02", "--title", "白天农技").exit_code == 0
    assert run("tv", "playlist", "night", "demo-06", "--title", "晚间戏曲").exit_code == 0
    assert run("tv", "slot-add", "19:00", "21:00", "night").exit_code == 0
    assert run("tv", "loop", "day").exit_code == 0
    bad = run("tv", "slot-add", "19:00", "21:00", "nobody")
    assert bad.exit_code == 1 and "E_TV_SCHEDULE" in bad.output
    now = datetime.now()
    offset = int((now.replace(hour=19, minute=30, second=0) - now).total_seconds())
    out = run("tv", "show", "--json")
    monkeypatch.setenv("EDGENODE_TV_CLOCK_OFFSET_SECONDS", str(offset))
    at_night = run("tv", "show", "--json")
    assert json.loads(at_night.output)["now"]["playlist"] == "night"
    cfg = make_config(demo_cfg.data_path, tv__clock_offset_seconds=offset - 3600)  # 18:30: the loop
    client = create_app(cfg).test_client()
    now = client.get("/tv/api/now").get_json()
    assert now["playlist"] == "day" and now["why"] == "loop" and [i["id"] for i in now["items"]] == ["demo-01", "demo-02"]
    assert now["next_change"] == "19:00" and out.exit_code == 0


def test_the_tv_pages(client):
    tiles = client.get("/tv/").get_data(as_text=True)
    assert "展播" in tiles and 'href="/tv/play/demo-01"' in tiles and "科学养鸡系列讲座" in tiles
    assert 'href="/tv/play/demo-jiyang-01"' in tiles and 'href="/tv/play/demo-04"' not in tiles  # no PDFs on TV
    play = client.get("/tv/play/demo-jiyang-01").get_data(as_text=True)
    assert 'data-next="/tv/play/demo-jiyang-02"' in play and '<track kind="subtitles"' in play and " default>" in play
    assert client.get("/tv/play/demo-04").status_code == 404
    screen = client.get("/tv/screen").get_data(as_text=True)
    assert 'data-playlist="newest"' in screen and "最新节目" in screen


def screenings_doc(**over):
    doc = {"playlists": [{"id": "morning", "title": "早间农技", "items": ["doc000", "doc001"]}],
           "slots": [{"start": "08:00", "end": "10:00", "playlist": "morning", "days": "12345"}], "loop": "morning"}
    doc.update(over)
    return doc


def test_a_county_schedule_comes_in_a_signed_bundle(cfg, conn, store, tmp_path):
    sk = new_key(tmp_path)
    trust_key(conn, sk, "sannong")
    bundle = make_bundle(tmp_path, sk)
    rewrite_manifest(bundle, sk, lambda d: d.update(screenings=screenings_doc()))
    assert import_bundle(cfg, conn, store, bundle, source="t").result == "imported"
    o = screenings.overview(conn)
    assert [p["items"] for p in o["playlists"]] == [["sannong.doc000", "sannong.doc001"]]
    assert o["loops"] == {"county:sannong": "sannong.morning"}
    assert [(s["start"], s["end"], s["source"]) for s in o["slots"]] == [("08:00", "10:00", "county:sannong")]
    # The next bundle of the channel replaces its schedule whole.
    b2 = make_bundle(tmp_path / "2", sk, seq=2)
    rewrite_manifest(b2, sk, lambda d: d.update(screenings={"playlists": [], "slots": []}))
    assert import_bundle(cfg, conn, store, b2, source="t").result == "imported"
    assert screenings.overview(conn) == {"playlists": [], "slots": [], "loops": {}}


@pytest.mark.parametrize("bad", [
    "not an object",
    {"playlists": [{"id": "Bad Id", "title": "x", "items": ["a"]}]},
    {"playlists": [{"id": "p", "title": "x", "items": []}]},
    {"playlists": [{"id": "p", "title": "x", "items": ["a"]}], "slots": [{"start": "8", "end": "9", "playlist": "p"}]},
    {"playlists": [], "slots": [{"start": "08:00", "end": "09:00", "playlist": "nobody"}]},
    {"playlists": [], "loop": "nobody"},
    {"playlists": [], "script": "<script>"},
])
def test_a_bad_county_schedule_refuses_the_bundle(cfg, conn, store, tmp_path, bad):
    sk = new_key(tmp_path)
    trust_key(conn, sk, "sannong")
    bundle = make_bundle(tmp_path, sk)
    rewrite_manifest(bundle, sk, lambda d: d.update(screenings=bad))
    before = snapshot(conn, store)
    r = import_bundle(cfg, conn, store, bundle, source="t")
    assert r.result == "failed" and r.error_code == "E_MANIFEST_INVALID" and "screenings" in r.error
    assert snapshot(conn, store) == before and screenings.overview(conn)["playlists"] == []


def test_a_publisher_folder_carries_the_schedule_into_the_bundle(cfg, conn, store, tmp_path):
    from edgenode.protocol.build import build_bundle
    from tests.helpers_bundles import make_source
    sk = new_key(tmp_path)
    trust_key(conn, sk, "sannong")
    src = make_source(tmp_path / "src")
    (src / "screenings.json").write_text(json.dumps(screenings_doc(), ensure_ascii=False), encoding="utf-8")
    bundle = build_bundle(src, "sannong", 1, tmp_path / "out", secret_key=sk)
    assert json.loads((bundle / "manifest.json").read_text())["screenings"] == screenings_doc()
    assert import_bundle(cfg, conn, store, bundle, source="t").result == "imported"
    assert screenings.overview(conn)["loops"] == {"county:sannong": "sannong.morning"}
    (src / "screenings.json").write_text(json.dumps(screenings_doc(loop="nobody")), encoding="utf-8")
    with pytest.raises(Exception) as e:
        build_bundle(src, "sannong", 2, tmp_path / "out", secret_key=sk)
    assert e.value.code == "E_MANIFEST_INVALID"  # the county cannot publish what nodes refuse
