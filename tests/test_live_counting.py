"""Counting live views: the county's schedule reaches the node in a real heartbeat answer; the page's
beacons become ``live_view`` usage events; the uplink carries them to the real hub, whose figures
per node and broadcast and whose once-a-month duty equal the events generated."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

from edgenode.core.db import open_main
from edgenode.core.identity import load_or_create
from edgenode.node.live import queries as q
from edgenode.node.sync.runner import run_job
from tests.helpers_sync import Hub, enrolled_node

BEACONS = {  # terminal -> [(broadcast, seconds)]
    "a": [("lecture", 30), ("lecture", 30), ("lecture", 12)],
    "b": [("lecture", 25), ("gala", 30), ("gala", 7.5)],
}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone(timedelta(hours=8))).isoformat(timespec="seconds")


def test_live_views_reach_the_hub_report_per_node_and_broadcast(tmp_path):
    hub = Hub(tmp_path / "hub").start()
    try:
        cfg = enrolled_node(tmp_path, hub, live__origins=[hub.url + "/live/"])
        start = time.time() - 600
        for i, bid in enumerate(("lecture", "gala")):
            s = start + i * 7200
            hub.cli("live", "schedule", "--channel", "shequ", "--id", bid, "--title", f"直播{i}", "--start", iso(s),
                    "--end", iso(s + 3600), "--stream-url", f"{hub.url}/live/{bid}/index.m3u8")
        r = run_job(cfg, "heartbeat", ignore_windows=True)
        assert r["result"]["live_schedules_applied"] == ["shequ#2"], r
        conn = open_main(cfg)
        assert [b["key"] for b in q.listing(conn, 0)] == ["shequ.lecture", "shequ.gala"]

        from edgenode.node.app import create_app
        app = create_app(cfg)
        for terminal, beacons in BEACONS.items():
            client = app.test_client()
            client.set_cookie("tid", f"terminal-{terminal}-0123456789")
            for bid, seconds in beacons:
                ok = client.post("/api/v1/live/beacon", json={"key": f"shequ.{bid}", "seconds": seconds})
                assert ok.status_code == 200, ok.get_data(as_text=True)
            for bad in ({"key": "shequ.nope", "seconds": 5}, {"key": "shequ.gala", "seconds": -1}, [1]):
                assert client.post("/api/v1/live/beacon", json=bad).status_code == 400
            assert client.post("/api/v1/live/beacon", data="key=shequ.gala&seconds=5",
                               content_type="application/x-www-form-urlencoded").status_code == 400
        assert run_job(cfg, "uplink", ignore_windows=True)["state"] == "done"
        conn.close()

        node_id = load_or_create(cfg).node_id
        rows = json.loads(hub.cli("live", "views", "--json"))
        got = {(r["node_id"], r["broadcast"]): (r["views"], r["seconds"]) for r in rows}
        want: dict = {}
        for beacons in BEACONS.values():
            for bid, seconds in beacons:
                n, s = want.get((node_id, f"shequ.{bid}"), (0, 0.0))
                want[(node_id, f"shequ.{bid}")] = (n + 1, s + seconds)
        assert got == want
        month = (datetime.now(timezone.utc) + timedelta(hours=8)).strftime("%Y-%m")
        duty = json.loads(hub.cli("live", "duty", "--month", month, "--json"))
        assert [(d["node_id"], d["broadcasts"], d["met"]) for d in duty] == [(node_id, 2, True)]
        assert json.loads(hub.cli("live", "duty", "--month", "2001-01", "--json"))[0]["met"] is False
        duty_section, views_section = json.loads(hub.cli("live", "report", "--month", month, "--json"))
        assert duty_section["rows"][0][2:] == [2, round(sum(s for _, s in want.values()) / 3600, 2), "是"]
        titles = {"shequ.lecture": "直播0", "shequ.gala": "直播1"}
        assert sorted(r[2:] for r in views_section["rows"]) == sorted(
            [titles[b], n, round(s / 60, 1)] for (_, b), (n, s) in want.items())
    finally:
        hub.stop()
