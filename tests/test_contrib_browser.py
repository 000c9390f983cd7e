"""Issue 21 acceptance with a real browser (Debian's chromium via Playwright) and real servers.

1. chromium uploads a large video through the portal (nginx → gunicorn, tus-js-client) while a
   TCP proxy cuts the connection three times mid-upload; the upload resumes and the stored file's
   hash equals the source's (25 MB by default, 200 MB in the slow form).
2. The whole journey: upload in chromium → processing (location gone: ffprobe and exiftool) →
   the point's admin approves in chromium → the uplink job in an open sync window carries it to
   the hub → county staff adopt and publish in chromium → a second node imports the signed
   bundle → chromium plays it there.
Screenshots: test-output/contrib/.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgenode.core.db import open_main
from edgenode.node.contrib import process
from edgenode.node.contrib import queries as q
from tests.conftest import make_config
from tests.helpers_contrib import UploadCuttingProxy, exif_location, ffprobe_tags, make_video, sha256
from tests.helpers_portal import PASSWORD, Production, set_admin
from tests.helpers_sync import ROOT, Hub, _env

pytestmark = pytest.mark.browser
OUT = Path(__file__).resolve().parent.parent / "test-output" / "contrib"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--autoplay-policy=no-user-gesture-required"]
MB = 1024 * 1024


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    work = tmp_path_factory.mktemp("contrib-browser")
    cfg = make_config(work / "data")
    conn = open_main(cfg, check=True)
    set_admin(conn)
    conn.close()
    p = Production(work / "prod", work / "data")
    p.cfg, p.work = cfg, work
    yield p
    p.stop()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        yield b
        b.close()


def upload_in_browser(browser, base: str, src: Path, title: str, *, timeout_s: float = 120) -> list[int]:
    """Upload through the page; returns the Upload-Offset of every PATCH the page sent."""
    ctx = browser.new_context()
    page = ctx.new_page()
    offsets: list[int] = []
    page.on("request", lambda r: offsets.append(int(r.headers.get("upload-offset", "-1")))
            if r.method == "PATCH" else None)
    page.goto(base + "/contrib/")
    page.fill("input[name=title]", title)
    page.fill("input[name=credit]", "李大娘舞蹈队")
    page.check("input[name=consent]")
    page.set_input_files("input[name=file]", str(src))
    page.click("#contrib-form button[type=submit]")
    page.wait_for_selector("#progress[data-done='1']", timeout=timeout_s * 1000)
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / "uploaded.png"), full_page=True)
    ctx.close()
    return offsets


def _row_by_title(cfg, title: str):
    conn = open_main(cfg)
    try:
        return next(dict(r) for r in q.contributions(conn) if r["title"] == title)
    finally:
        conn.close()


def _cut_upload(prod, browser, seconds: int, title: str) -> None:
    src = make_video(prod.work / f"{title}.mp4", seconds=seconds, size="640x360", noise=True)
    size = src.stat().st_size
    proxy = UploadCuttingProxy(prod.port, cuts=3, min_bytes=size // 10, max_bytes=size // 4, seed=seconds)
    try:
        offsets = upload_in_browser(browser, f"http://127.0.0.1:{proxy.port}", src, title, timeout_s=60 + seconds * 4)
    finally:
        proxy.close()
    assert proxy.cuts_done == 3
    # Resumed from the middle, not from 0: nginx streamed the cut PATCH's bytes on as they came (with
    # request buffering on, a cut PATCH would leave nothing and every resume would start at 0).
    assert offsets[0] == 0 and any(0 < o < size for o in offsets), offsets
    row = _row_by_title(prod.cfg, title)
    stored = prod.cfg.data_path / "contrib" / "incoming" / f"{row['id']}.mp4"
    assert stored.stat().st_size == size and sha256(stored) == sha256(src)
    assert not list((prod.cfg.data_path / "contrib" / "uploads").iterdir())  # nothing half-done left


def test_chromium_upload_resumes_through_three_cuts(prod, browser):
    _cut_upload(prod, browser, 8, "断网三次的村晚")  # about 26 MB of incompressible video


@pytest.mark.slow
def test_chromium_uploads_200_mb_through_three_cuts(prod, browser):
    _cut_upload(prod, browser, 62, "两百兆的村晚")


def test_the_whole_journey_to_a_second_node(prod, browser, tmp_path):
    # 1. Upload in chromium (location and phone tags in the file) and process at idle priority.
    src = make_video(tmp_path / "gala.mp4", seconds=4)
    assert exif_location(src)
    upload_in_browser(browser, prod.url, src, "我们村的春节联欢会")
    process.run_job(prod.cfg)
    row = _row_by_title(prod.cfg, "我们村的春节联欢会")
    ready = process.ready_file(prod.cfg, row)
    assert row["state"] == "pending" and not exif_location(ready)
    assert not any("location" in k for k in ffprobe_tags(ready)["tags"])
    # 2. The point's administrator approves in chromium.
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(prod.url + "/admin/login")
    page.fill("input[name=password]", PASSWORD)
    page.click("section.login button[type=submit]")
    page.goto(prod.url + "/admin/contrib/")
    page.click(f"#c-{row['id']} button[name=approve]")
    page.wait_for_selector(f"#c-{row['id']}[data-state=approved]")
    # 3. Up to the hub through an open sync window (the uplink job and its hook).
    hub = Hub(tmp_path / "hub").start()
    try:
        _journey_at_the_county(prod, browser, page, hub, row, tmp_path)
    finally:
        ctx.close()
        hub.stop()


def _journey_at_the_county(prod, browser, page, hub, row, tmp_path):
    from edgenode.node.sync.enroll import enroll
    from edgenode.node.sync.runner import run_job
    conn = open_main(prod.cfg)
    enroll(prod.cfg, conn, hub.url, hub.new_code())
    conn.close()
    cfg = prod.cfg.replace(sync__windows=[{"start": "00:00", "end": "23:59", "bwlimit": 8192}])
    result = run_job(cfg, "uplink")
    assert result["state"] == "done" and result["result"]["contrib_sent"] == 1, result
    page.goto(prod.url + "/admin/contrib/")
    assert "已上传" in page.inner_text(f"#c-{row['id']} td.state")
    # 4. County staff play, adopt and publish in chromium.
    _staff(hub)
    hp = browser.new_context().new_page()
    hp.goto(hub.url + "/login")
    hp.fill("input[name=username]", "county")
    hp.fill("input[name=password]", "correct horse 1")
    hp.click("button[type=submit]")
    hp.goto(hub.url + "/contrib/")
    hp.evaluate(f"v = document.querySelector('#w-{row['id']} video'); v.muted = true; v.play()")
    hp.wait_for_function(f"document.querySelector('#w-{row['id']} video').currentTime > 1", timeout=20000)
    hp.click(f"#w-{row['id']} button[name=adopt]")
    hp.click("#publish")
    hp.wait_for_selector("text=已发布 1 个作品")
    hp.screenshot(path=str(OUT / "hub-published.png"), full_page=True)
    # The point hears the county's decision at its next uplink.
    run_job(cfg, "uplink")
    page.goto(prod.url + "/admin/contrib/")
    assert "县中心已采用" in page.inner_text(f"#c-{row['id']} td.state")
    # 5. A second node imports the signed bundle and plays the work in chromium.
    second = make_config(tmp_path / "node2")
    c2 = open_main(second, check=True)
    from edgenode.node.sync.enroll import enroll
    enroll(second, c2, hub.url, hub.new_code())  # the county key arrives with enrolment
    c2.close()
    bundle = next((hub.data_dir / "rsync" / "channels" / "shequ").iterdir())
    r = subprocess.run([sys.executable, "-m", "edgenode", "--data-dir", str(second.data_path), "import", str(bundle)],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
    node2 = Production(tmp_path / "prod2", second.data_path)
    try:
        p2 = browser.new_context().new_page()
        p2.goto(node2.url + "/search?q=春节联欢会")
        p2.click("text=我们村的春节联欢会")
        p2.wait_for_selector("video#player")
        assert "李大娘舞蹈队" in p2.content()
        p2.evaluate("v = document.getElementById('player'); v.muted = true; v.play()")
        p2.wait_for_function("document.getElementById('player').currentTime > 1.5", timeout=20000)
        p2.screenshot(path=str(OUT / "second-node-playing.png"))
    finally:
        node2.stop()


def _staff(hub) -> None:
    from edgenode.hub import staff
    conn = hub.db()
    try:
        staff.set_password(conn, "county", "correct horse 1")
    finally:
        conn.close()
