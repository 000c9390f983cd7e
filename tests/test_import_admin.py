"""The admin imports page: login required, live progress from the jobs table, history, Chinese summary."""

from __future__ import annotations

import threading
import time

import pytest

from edgenode.node.imports.history import summary_zh
from edgenode.node.imports.pipeline import import_bundle
from edgenode.core.store import open_store
from tests.helpers_bundles import make_bundle, new_key, trust_key
from tests.helpers_portal import login, set_admin


@pytest.fixture
def client(cfg, conn):
    """An app on an empty node (no demo library needed here)."""
    from edgenode.node.app import create_app
    app = create_app(cfg)
    app.config["TESTING"] = True
    return app.test_client()


def test_summary_text():
    assert summary_zh("imported", 12, 1_200_000_000) == "导入完成：12 个资源，1.2 GB"
    assert summary_zh("imported", 3, 350_000_000) == "导入完成：3 个资源，350.0 MB"
    assert summary_zh("failed", 0, 0, "签名校验失败").startswith("导入失败：签名校验失败")


def test_page_needs_login(client):
    r = client.get("/admin/imports/")
    assert r.status_code == 302 and "/admin/login" in r.headers["Location"]
    r = client.get("/admin/imports/progress.json")
    assert r.status_code in (302, 401)


def test_page_shows_live_progress_then_history(client, cfg, conn, tmp_path):
    set_admin(conn)
    assert login(client).status_code == 302
    sk = new_key(tmp_path)
    trust_key(conn, sk, "sannong")
    store = open_store(cfg)
    bundle = make_bundle(tmp_path, sk, seq=1, n=4, size=300_000)

    # Poll the page's JSON while an import is paused half-way, as the admin page's script does.
    paused, resume, seen = threading.Event(), threading.Event(), {}

    def progress(p):
        if p.phase == "staged" and p.files_done == 2:
            time.sleep(0.6)  # job rows are written at most twice a second: the next event writes one
        elif p.phase == "copy" and p.files_done == 2 and not paused.is_set():
            paused.set()
            resume.wait(10)

    from edgenode.core.db import open_main
    worker_conn = open_main(cfg)
    t = threading.Thread(target=lambda: seen.setdefault("result", import_bundle(
        cfg, worker_conn, store, bundle, source="usb:sdb1", progress=progress)))
    t.start()
    try:
        assert paused.wait(20)
        live = client.get("/admin/imports/progress.json").get_json()
        running = [j for j in live["jobs"] if j["state"] == "running"]
        assert live["running"] and running, live
        assert running[0]["files_total"] == 4 and 0 < running[0]["bytes_done"] <= running[0]["bytes_total"]
        assert "usb:sdb1" in running[0]["title"]
    finally:
        resume.set()
        t.join(20)
        worker_conn.close()
    assert seen["result"].result == "imported"

    done = client.get("/admin/imports/progress.json").get_json()
    assert done["running"] is False and done["jobs"][0]["summary_zh"].startswith("导入完成：4 个资源，1.2 MB")
    html = client.get("/admin/imports/").get_data(as_text=True)
    assert "导入完成：4 个资源，1.2 MB" in html
    assert "usb:sdb1" in html and sk.key_id_hex in html
    assert 'href="/admin/imports/"' in html  # in the admin navigation
