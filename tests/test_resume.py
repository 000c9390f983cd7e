"""Resume and next (继续观看) per terminal cookie, kept on the node and purged with usage retention (issue 19)."""

from __future__ import annotations

import json
import time

import pytest

from edgenode.node.app import create_app
from edgenode.node.imports.pipeline import import_bundle
from edgenode.node.sync.runner import prune_usage
from edgenode.node.usage import resume
from tests.helpers_bundles import new_key, trust_key
from tests.helpers_series import series_bundle

DAY = 86400


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    sk = new_key(tmp)
    return sk, series_bundle(tmp, sk, n=2, video_seconds=25)


@pytest.fixture
def app(cfg, conn, store, bundle):
    sk, b = bundle
    trust_key(conn, sk, "pushi")
    assert import_bundle(cfg, conn, store, b, source="t").result == "imported"
    a = create_app(cfg)
    a.config["TESTING"] = True
    return a


def beacon(client, kind, rid, position, seconds=0):
    r = client.post("/api/v1/usage/beacon", content_type="application/json",
                    data=json.dumps({"events": [{"kind": kind, "resource": rid, "seconds": seconds,
                                                 "position": position}]}))
    assert r.status_code == 200


def test_the_page_starts_where_this_terminal_stopped(app):
    a, b = app.test_client(), app.test_client()
    a.get("/")
    beacon(a, "play_start", "pushi.opera-01", 0)
    beacon(a, "progress", "pushi.opera-01", 20.3, 15)
    page = a.get("/r/pushi.opera-01").get_data(as_text=True)
    assert '.mp4#t=20.3"' in page and 'data-start="20.3"' in page
    other = b.get("/r/pushi.opera-01").get_data(as_text=True)  # another terminal starts at the beginning
    assert "#t=" not in other and 'data-start="0"' in other
    home = a.get("/").get_data(as_text=True)
    cont = home.split('id="continue"')[1].split("</section>")[0]
    assert "继续观看" in home and "豫剧经典系列 第1集" in cont and "看到 0:20" in cont
    assert 'id="continue"' not in b.get("/").get_data(as_text=True)
    series = a.get("/series/pushi.opera").get_data(as_text=True)
    assert "继续观看 第1集" in series


def test_a_finished_episode_starts_again_and_leaves_continue_watching(app):
    a = app.test_client()
    a.get("/")
    beacon(a, "progress", "pushi.opera-01", 12)
    beacon(a, "play_end", "pushi.opera-01", 24.9)  # the end
    assert "#t=" not in a.get("/r/pushi.opera-01").get_data(as_text=True)
    assert 'id="continue"' not in a.get("/").get_data(as_text=True)
    beacon(a, "progress", "pushi.opera-02", 3)  # barely started: not worth resuming
    assert 'id="continue"' not in a.get("/").get_data(as_text=True)


def test_the_next_episode_is_offered_with_autoplay(app):
    page = app.test_client().get("/r/pushi.opera-01").get_data(as_text=True)
    assert 'id="next-episode"' in page and "下一集：第2集" in page
    assert 'data-autoplay="/r/pushi.opera-02?autoplay=1"' in page and 'id="up-next"' in page
    assert " autoplay" in app.test_client().get("/r/pushi.opera-02?autoplay=1").get_data(as_text=True)
    last = app.test_client().get("/r/pushi.opera-02").get_data(as_text=True)
    assert 'id="next-episode"' not in last and "上一集" in last


def test_resume_points_stay_on_the_node_and_go_with_usage_retention(app, cfg, conn):
    a = app.test_client()
    a.get("/")
    beacon(a, "progress", "pushi.opera-01", 20)
    tid = a.get_cookie("tid").value
    assert resume.start_at(conn, tid, {"id": "pushi.opera-01", "kind": "video", "duration": 25}) == 20
    # Nothing sealed for the hub, yet the points go by age alone: they never leave the node.
    out = prune_usage(cfg, conn, keep_days=1)
    assert out.get("resume_pruned") == 0
    conn.execute("UPDATE resume_points SET at = ?", (time.time() - 2 * DAY,))
    out = prune_usage(cfg, conn, keep_days=1)
    assert out["resume_pruned"] == 1 and out["pruned"] == 0
    assert conn.execute("SELECT count(*) FROM resume_points").fetchone()[0] == 0
    assert "#t=" not in a.get("/r/pushi.opera-01").get_data(as_text=True)
