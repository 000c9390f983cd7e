"""The imports page as a volunteer reads it (issue 15).

Running, finished and failed imports in separate places; the phase (校验、复制、入库) and time
left while one runs; the outcome banner shown once; every refusal with a next step in plain
Chinese; a stick signed by an unknown key shows its fingerprint and 联系县中心, and no button
that would trust it.  Without script the page refreshes itself while an import runs.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from edgenode.core.db import open_main
from edgenode.core.store import open_store
from edgenode.node.imports.history import NEXT_STEPS_ZH
from edgenode.node.imports.pipeline import import_bundle
from tests.helpers_bundles import make_bundle, new_key, trust_key
from tests.helpers_portal import PASSWORD, Production, login, set_admin

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def client(cfg, conn):
    from edgenode.node.app import create_app
    app = create_app(cfg)
    app.config["TESTING"] = True
    set_admin(conn)
    c = app.test_client()
    assert login(c).status_code == 302
    return c


def _section(html: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}".*?</section>', html, re.S)
    assert m, sid
    return m.group(0)


def test_an_unknown_key_is_a_failure_with_its_fingerprint_and_the_county_to_call(client, cfg, conn, tmp_path):
    stranger = new_key(tmp_path, "stranger")
    bundle = make_bundle(tmp_path, stranger, seq=1, n=2)
    result = import_bundle(cfg, conn, open_store(cfg), bundle, source="usb:sdb1")
    assert result.error_code == "E_SIG_UNTRUSTED"

    html = client.get("/admin/imports/").get_data(as_text=True)
    failed = _section(html, "failed")
    assert stranger.key_id_hex in failed and "联系县中心" in failed
    assert "不是本机认识的发布者" in failed
    assert "E_SIG_UNTRUSTED" not in _section(html, "progress") and "usb:sdb1" not in _section(html, "progress")
    assert "usb:sdb1" not in _section(html, "finished")
    # No way to trust it from here: no form, no button, anywhere on the page.
    content = html.split("<h1>内容导入</h1>", 1)[1]  # after the site's search bar and navigation
    assert "<form" not in content and "<button" not in content


def test_the_banner_is_shown_once(client, cfg, conn, tmp_path):
    sk = new_key(tmp_path)
    trust_key(conn, sk, "sannong")
    store = open_store(cfg)
    assert import_bundle(cfg, conn, store, make_bundle(tmp_path / "a", sk, seq=1, n=1), source="cli").ok
    first = client.get("/admin/imports/").get_data(as_text=True)
    assert 'id="latest"' in first and "导入完成：1 个资源" in first
    second = client.get("/admin/imports/").get_data(as_text=True)
    assert 'id="latest"' not in second
    assert "导入完成：1 个资源" in _section(second, "finished")  # still in its place
    # A newer outcome brings the banner back, with the failure's next step.
    make_bundle(tmp_path / "b", new_key(tmp_path, "other"), seq=2, n=1)
    bad = import_bundle(cfg, conn, store, tmp_path / "b" / "out" / "sannong-00000002", source="cli")
    assert bad.error_code == "E_SIG_UNTRUSTED"
    third = client.get("/admin/imports/").get_data(as_text=True)
    banner = re.search(r'<p id="latest".*?</p>', third, re.S).group(0)
    assert "导入失败" in banner and NEXT_STEPS_ZH["E_SIG_UNTRUSTED"] in banner


@pytest.mark.parametrize("code", sorted(NEXT_STEPS_ZH))
def test_every_next_step_is_plain_chinese_with_no_command(code):
    text = NEXT_STEPS_ZH[code]
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in text) > 10
    assert not re.search(r"edgenode|sudo|\$ |E_[A-Z]", text), text


def test_a_running_import_shows_its_phase_and_time_left_and_hides_old_outcomes(client, cfg, conn, tmp_path):
    store = open_store(cfg)
    # An older failure: it must not sit on top while the new import runs.
    import_bundle(cfg, conn, store, make_bundle(tmp_path / "old", new_key(tmp_path, "x"), seq=1, n=1), source="cli")
    sk = new_key(tmp_path)
    trust_key(conn, sk, "sannong")
    bundle = make_bundle(tmp_path / "new", sk, seq=1, n=4, size=300_000)
    paused, resume = threading.Event(), threading.Event()

    def progress(p):
        if p.phase == "staged" and p.files_done == 2:
            time.sleep(2.1)  # long enough for a rate, and the job row is written
        elif p.phase == "copy" and p.files_done == 2 and not paused.is_set():
            paused.set()
            resume.wait(20)

    worker = open_main(cfg)
    t = threading.Thread(target=lambda: import_bundle(cfg, worker, store, bundle, source="usb:sdc1",
                                                      progress=progress))
    t.start()
    try:
        assert paused.wait(30)
        html = client.get("/admin/imports/").get_data(as_text=True)
        live = client.get("/admin/imports/live").get_data(as_text=True)
    finally:
        resume.set()
        t.join(30)
        worker.close()
    running = _section(html, "progress")
    assert "usb:sdc1" in running and "正在复制" in running and "还需" in running
    assert 'id="latest"' not in html, "an old outcome on top while an import runs"
    assert '<meta http-equiv="refresh"' in html  # inside <noscript>: only without script
    assert "<noscript>" in html
    assert 'data-running="1"' in live and "正在复制" in live
    done = client.get("/admin/imports/").get_data(as_text=True)
    assert "usb:sdc1" not in _section(done, "progress")
    assert "导入完成：4 个资源" in _section(done, "finished")
    assert '<meta http-equiv="refresh"' not in done


# -- in a real browser, against gunicorn and nginx ----------------------------------------------

@pytest.mark.browser
def test_in_chromium_an_unknown_key_stick_shows_the_guidance(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    from tests.conftest import make_config

    data = tmp_path / "data"
    cfg = make_config(data)
    conn = open_main(cfg)
    set_admin(conn)
    stranger = new_key(tmp_path, "stranger")
    import_bundle(cfg, conn, open_store(cfg), make_bundle(tmp_path, stranger, seq=1, n=1), source="usb:sdb1")
    conn.close()
    prod = Production(tmp_path / "prod", data)
    out = Path(__file__).resolve().parent.parent / "test-output" / "browser"
    out.mkdir(parents=True, exist_ok=True)
    try:
        with playwright.sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = b.new_page(viewport={"width": 1024, "height": 768})
            page.goto(prod.url + "/admin/login?next=/admin/imports/")
            page.fill("input[name=password]", PASSWORD)
            page.click("section.login button[type=submit]")
            page.wait_for_url(prod.url + "/admin/imports/")
            failed = page.locator("#failed")
            assert "联系县中心" in failed.inner_text()
            assert page.locator("#failed code.fingerprint").inner_text() == stranger.key_id_hex
            assert page.locator("button", has_text="信任").count() == 0
            assert page.get_by_role("status").inner_text().startswith("导入失败")
            page.screenshot(path=str(out / "imports-unknown-key.png"), full_page=True)
            page.reload()
            assert page.get_by_role("status").count() == 0  # read is read
            b.close()
    finally:
        prod.stop()
