"""A real browser (Debian's chromium via Playwright) against the production set-up.

home → search 水稻 → open the video → playback passes 2 s → seek to the middle
(nginx answers 206 for the new offset) → playback continues → the admin
dashboard's play count went up by one; a 360×640 phone has no horizontal
scroll.  Screenshots: test-output/browser/.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from edgenode.core.config import load_config
from edgenode.core.db import open_main
from edgenode.node.imports.add import add_file
from edgenode.core.store import open_store
from tests.fixtures import ffmpeg
from tests.helpers_portal import PASSWORD, Production, copy_data, set_admin

pytestmark = pytest.mark.browser
OUT = Path(__file__).resolve().parent.parent / "test-output" / "browser"
LONG_TITLE = "水稻病虫害防治讲座"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def prod(demo_master, tmp_path_factory):
    work = tmp_path_factory.mktemp("browser")
    data = copy_data(demo_master, work / "data")
    cfg = load_config(env={}, overrides={"data_dir": str(data)})
    conn = open_main(cfg)
    set_admin(conn)
    # A longer, heavier video than the demo's, so the browser cannot have the
    # middle buffered already and must ask for it with a new range.
    clip = work / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=duration=60:size=480x270:rate=25", "-f", "lavfi",
           "-i", "sine=frequency=440:duration=60", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-b:v", "3M", "-minrate", "3M", "-maxrate", "3M", "-bufsize", "1M", "-x264-params", "nal-hrd=cbr",
           "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(clip))
    add_file(conn, open_store(cfg), cfg, clip, {"title": LONG_TITLE, "column": "sannong", "tags": ["农技"],
                                                "description": "稻飞虱、纹枯病等常见病虫害的识别与防治。"},
             resource_id="long-01")
    conn.close()
    p = Production(work / "prod", data)
    p.data = data
    yield p
    p.stop()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        yield b
        b.close()


def plays_today(page, base) -> int:
    page.goto(base + "/admin/")
    return int(page.locator("td.plays-today").inner_text())


def test_search_play_seek_and_count(prod, browser):
    OUT.mkdir(parents=True, exist_ok=True)
    base = prod.url
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    page.goto(base + "/admin/login")
    page.fill("input[name=password]", PASSWORD)
    page.click("section.login button[type=submit]")
    page.wait_for_url(base + "/admin/")
    before = plays_today(page, base)

    page.goto(base + "/")
    assert page.locator("#newest .card").count() >= 4
    page.screenshot(path=str(OUT / "home.png"), full_page=True)
    page.fill("header input[name=q]", "水稻")
    page.press("header input[name=q]", "Enter")
    page.wait_for_url(re.compile(r".*/search\?q="))
    assert "水稻种植技术要点" in page.content() and LONG_TITLE in page.content()
    page.screenshot(path=str(OUT / "search.png"), full_page=True)
    page.click(f"text={LONG_TITLE}")
    page.wait_for_selector("video#player")

    media = []
    page.on("response", lambda r: media.append((r.request.headers.get("range"), r.status,
                                                r.headers.get("content-range")))
            if "/media/" in r.url and r.url.endswith(".mp4") else None)
    page.evaluate("v = document.getElementById('player'); v.muted = true; v.play()")
    page.wait_for_function("document.getElementById('player').currentTime > 2", timeout=20000)
    page.screenshot(path=str(OUT / "playing.png"))

    duration = page.evaluate("document.getElementById('player').duration")
    assert duration > 50
    middle = duration / 2
    seen = len(media)
    page.evaluate(f"document.getElementById('player').currentTime = {middle}")
    page.wait_for_function(f"document.getElementById('player').currentTime > {middle + 2}", timeout=20000)
    after_seek = media[seen:]
    size = int(next(c for _r, s, c in media if c).split("/")[1])
    starts = [int(c.split(" ")[1].split("-")[0]) for _r, s, c in after_seek if s == 206 and c]
    assert any(s > size * 0.3 for s in starts), media  # a 206 for the middle of the file
    page.screenshot(path=str(OUT / "seeked.png"))
    page.evaluate("document.getElementById('player').pause()")
    time.sleep(0.5)  # let the pause beacon land

    after = plays_today(page, base)
    page.screenshot(path=str(OUT / "dashboard.png"), full_page=True)
    assert after == before + 1
    assert page.locator("td.hours-today").inner_text() == "0.0"  # seconds of watching round to 0.0 h
    conn = open_main(load_config(env={}, overrides={"data_dir": str(prod.data)}))
    watched = conn.execute("SELECT sum(seconds) FROM usage_events WHERE resource_id = 'long-01'").fetchone()[0]
    conn.close()
    assert 3 <= watched <= 30  # progress/pause beacons carried the real playing time, not the seek jump
    ctx.close()


@pytest.mark.parametrize("path", ["/", "/search?q=水稻", "/r/demo-01", "/r/demo-04", "/column/sannong",
                                  "/r/demo-08/read", "/admin/login", "/nope"])
def test_phone_has_no_horizontal_scroll(prod, browser, path):
    ctx = browser.new_context(viewport={"width": 360, "height": 640}, device_scale_factor=2, is_mobile=True,
                              has_touch=True)
    page = ctx.new_page()
    page.goto(prod.url + path)
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    name = re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_") or "home"
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"phone_{name}.png"), full_page=True)
    assert width[0] <= width[1], (path, width)
    # Tap targets: every visible link and button in the header is at least 44 px tall.
    small = page.evaluate("""Array.from(document.querySelectorAll('header a, header button, .pager a, .button'))
        .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 44).map(e => e.textContent)""")
    assert small == [], small
    ctx.close()


def test_playback_survives_failing_beacons(prod, browser):
    """A beacon that fails is dropped silently: no script error, playback goes on."""
    ctx = browser.new_context()
    page = ctx.new_page()
    errors, aborted = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/api/v1/usage/beacon", lambda route: (aborted.append(1), route.abort()))
    page.goto(prod.url + "/r/demo-01")
    page.evaluate("v = document.getElementById('player'); v.muted = true; v.play()")
    page.wait_for_function("document.getElementById('player').currentTime > 1.5", timeout=20000)
    page.evaluate("document.getElementById('player').pause()")
    page.wait_for_timeout(300)
    assert aborted, "the player sent no beacon"
    assert errors == []
    assert page.evaluate("document.getElementById('player').error") is None
    ctx.close()
