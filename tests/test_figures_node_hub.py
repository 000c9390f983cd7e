"""Issue 18: visits, plays, watch hours and terminals mean the same on the node and at the hub.

Real processes: the node's portal under gunicorn takes real HTTP requests from three browsers
(which keep their cookie) and from scripted clients (which never send it back); the node's
uplink job sends the events to a real hub (``edgenode hub serve``); the node's own figures
(the admin dashboard's) and the hub's statistics must agree, with the scripted clients counted
as visits and plays but never as terminals (protocol/figures.py).
"""

from __future__ import annotations

import time

import pytest
import requests

from edgenode.core.db import open_main
from edgenode.core.identity import load_or_create
from edgenode.hub import stats
from edgenode.node.sync.enroll import enroll
from edgenode.node.sync.runner import run_job
from edgenode.node.usage import stats as node_stats
from tests.helpers_portal import start_gunicorn, stop, write_config
from tests.helpers_sync import Hub, free_port, wait_port

BROWSERS = 3


@pytest.fixture
def hub(tmp_path):
    h = Hub(tmp_path / "hub").start()
    yield h
    h.stop()


@pytest.fixture
def node(tmp_path, demo_cfg):
    port = free_port()
    proc = start_gunicorn(write_config(tmp_path / "node.toml", demo_cfg.data_path), f"127.0.0.1:{port}",
                          workers=2, threads=2)
    try:
        wait_port(port, timeout=90, proc=proc)
        # Not a page, so no view is counted; a loaded machine may take a while to answer the first one.
        assert requests.get(f"http://127.0.0.1:{port}/static/portal.css", timeout=60).status_code == 200
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def _browse(base: str, get, post, resources: list[dict]) -> dict:
    """One visitor's session; returns the events it should have made."""
    made = {"view": 0, "play_start": 0, "seconds": 0.0}
    for path in ["/", f"/column/{resources[0]['column_key']}", *(f"/r/{r['id']}" for r in resources)]:
        assert get(base + path, timeout=60).status_code == 200, path
        made["view"] += 1
    for r in resources:
        if r["kind"] not in ("video", "audio"):
            continue
        events = [{"kind": "play_start", "resource": r["id"]}, {"kind": "progress", "resource": r["id"], "seconds": 20},
                  {"kind": "play_end", "resource": r["id"], "seconds": 7.5}]
        resp = post(base + "/api/v1/usage/beacon", json={"events": events}, timeout=60)
        assert resp.status_code == 200, resp.text
        made["play_start"] += 1
        made["seconds"] += 27.5
    return made


def test_the_same_events_give_the_same_figures_on_node_and_hub(hub, node, demo_cfg):
    conn = open_main(demo_cfg)
    enroll(demo_cfg, conn, hub.url, hub.new_code())
    resources = [dict(r) for r in conn.execute(
        "SELECT id, kind, column_key, title FROM resources WHERE visible = 1 ORDER BY kind = 'video' DESC, id LIMIT 4")]
    assert any(r["kind"] == "video" for r in resources)
    expected = {"view": 0, "play_start": 0, "seconds": 0.0}
    for _ in range(BROWSERS):  # a browser: the cookie it gets on its first page comes back
        with requests.Session() as s:
            made = _browse(node, s.get, s.post, resources)
            assert s.cookies.get("tid")
        expected = {k: expected[k] + made[k] for k in expected}
    for _ in range(4):  # a script: no cookie jar, every request looks new
        made = _browse(node, requests.get, requests.post, resources)
        expected = {k: expected[k] + made[k] for k in expected}

    deadline = time.monotonic() + 20
    want = expected["view"] + expected["play_start"] * 3
    while conn.execute("SELECT count(*) FROM usage_events").fetchone()[0] < want:  # page views commit after the answer
        assert time.monotonic() < deadline, "the node did not record every request"
        time.sleep(0.1)

    at_node = node_stats.totals_since(conn, 0)
    dashboard = node_stats.summary(conn)["month"]  # what the node's admin dashboard shows this month
    assert at_node == dashboard
    assert at_node == {"views": expected["view"], "plays": expected["play_start"], "terminals": BROWSERS,
                       "watch_hours": round(expected["seconds"] / 3600, 2)}

    r = run_job(demo_cfg, "uplink", ignore_windows=True)
    assert r["state"] == "done", r
    node_id = load_or_create(demo_cfg).node_id
    hconn = hub.db()
    try:
        (at_hub,) = stats.table(hconn, "node", {"node_id": node_id})
        month = time.strftime("%Y-%m", time.gmtime(time.time() + 8 * 3600))
        (this_month,) = stats.table(hconn, "node", {"node_id": node_id, "month": month})
        titles = dict(hconn.execute("SELECT resource_id, title FROM hub_titles"))
    finally:
        hconn.close()
    for row in (at_hub, this_month):
        assert {"views": row["visits"], "plays": row["plays"], "terminals": row["unique_terminals"],
                "watch_hours": row["watch_hours"]} == at_node
    assert {r["id"]: r["title"] for r in resources}.items() <= titles.items()  # titles rode up with the batch
    conn.close()
