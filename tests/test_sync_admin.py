"""The admin sync page: status, "sync now" in its own process, usage export to a (tmpfs) USB stick."""

from __future__ import annotations

import subprocess
import time

import pytest

from edgenode.core import jobs
from edgenode.core.db import open_main, open_volatile
from edgenode.core.identity import load_or_create
from tests.helpers_portal import csrf_token, login, set_admin
from tests.helpers_sync import add_events


@pytest.fixture
def stick(tmp_path):
    mount = tmp_path / "media" / "stick"
    mount.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a tmpfs (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)])


@pytest.fixture
def admin(demo_cfg, stick):
    from edgenode.node.app import create_app
    cfg = demo_cfg.replace(usb__media_roots=[str(stick.parent)])
    conn = open_main(cfg)
    set_admin(conn)
    add_events(conn, 250)
    conn.close()
    app = create_app(cfg)
    app.config["TESTING"] = True
    client = app.test_client()
    login(client)
    return cfg, client


def test_page_shows_status_in_chinese(admin):
    cfg, client = admin
    html = client.get("/admin/sync/").get_data(as_text=True)
    assert "与县中心同步" in html and "未注册" in html and "250 条记录待打包" in html


def test_export_to_stick(admin, stick):
    cfg, client = admin
    token = csrf_token(client, "/admin/sync/")
    r = client.post("/admin/sync/export", data={"target": str(stick), "csrf_token": token}, follow_redirects=True)
    assert "已写入U盘：1 个统计数据包（250 条记录）" in r.get_data(as_text=True)
    d = stick / "edgenode-logs" / load_or_create(cfg).node_id
    assert len(list(d.glob("*.batch"))) == 1 and (d / "heartbeat.json.sig").exists()


@pytest.mark.parametrize("data, expect", [
    ({"target": "/etc"}, "没有找到可写入的U盘"),      # not a stick the page offered
    ({"target": ""}, "没有找到可写入的U盘"),
])
def test_export_refuses_other_paths(admin, data, expect):
    cfg, client = admin
    token = csrf_token(client, "/admin/sync/")
    r = client.post("/admin/sync/export", data={**data, "csrf_token": token}, follow_redirects=True)
    assert expect in r.get_data(as_text=True)


def test_forms_need_csrf(admin, stick):
    cfg, client = admin
    assert client.post("/admin/sync/export", data={"target": str(stick)}).status_code == 400
    assert client.post("/admin/sync/now").status_code == 400
    assert not (stick / "edgenode-logs").exists()


def test_sync_now_runs_in_its_own_process(admin):
    cfg, client = admin
    token = csrf_token(client, "/admin/sync/")
    r = client.post("/admin/sync/now", data={"csrf_token": token}, follow_redirects=True)
    assert "已开始同步" in r.get_data(as_text=True)
    rows, deadline = [], time.monotonic() + 30
    while not rows and time.monotonic() < deadline:
        time.sleep(0.3)
        v = open_volatile(cfg)
        rows = jobs.recent(v, "pull")
        v.close()
    assert rows and rows[0]["state"] == "skipped"  # not enrolled, no rsync URL: skipped cleanly
