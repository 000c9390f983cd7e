"""Series, subtitles, resume and next episode in a real browser (Debian's chromium via Playwright), against
gunicorn behind nginx, with a 16-episode series imported from a signed bundle (issue 19).

How "watching 20 s of 第3集" is done, honestly: the video is muted, seeked to 16.5 s and then really
plays until ``currentTime`` passes 20 s (about 4 s of real playback, timeupdate-driven); the pause
sends the player's beacon with that position.  The reload is real, and chromium starts the video
where the page says (``#t=`` and ``data-start``).  Screenshots: test-output/series/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgenode.core.config import load_config
from edgenode.core.db import open_main
from edgenode.core.store import open_store
from edgenode.node.imports.pipeline import import_bundle
from tests.helpers_bundles import new_key, trust_key
from tests.helpers_portal import Production, copy_data
from tests.helpers_series import VTT, series_bundle

pytestmark = pytest.mark.browser
OUT = Path(__file__).resolve().parent.parent / "test-output" / "series"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--autoplay-policy=no-user-gesture-required"]
PLAYER = "document.getElementById('player')"


@pytest.fixture(scope="module")
def prod(demo_master, tmp_path_factory):
    work = tmp_path_factory.mktemp("series-browser")
    data = copy_data(demo_master, work / "data")
    cfg = load_config(env={}, overrides={"data_dir": str(data)})
    conn = open_main(cfg)
    sk = new_key(work)
    trust_key(conn, sk, "pushi")
    bundle = series_bundle(work, sk, n=16, video_seconds=25, subtitles=VTT)
    result = import_bundle(cfg, conn, open_store(cfg), bundle, source="test")
    assert result.result == "imported" and result.added == 16, result.error
    conn.close()
    p = Production(work / "prod", data)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    OUT.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1024, "height": 768})
    page = ctx.new_page()
    yield page
    ctx.close()


def test_a_webvtt_track_from_a_signed_bundle_shows_its_cues(prod, page):
    page.goto(prod.url + "/r/pushi.opera-01")
    page.wait_for_function(f"{PLAYER}.textTracks.length > 0 && {PLAYER}.textTracks[0].cues "
                           f"&& {PLAYER}.textTracks[0].cues.length > 0", timeout=15000)
    track = page.evaluate(f"""(() => {{ const t = {PLAYER}.textTracks[0];
        return [t.mode, t.language, t.cues.length, t.cues[0].text]; }})()""")
    assert track == ["showing", "zh", 2, "第一句字幕"]
    page.evaluate(f"v = {PLAYER}; v.muted = true; v.currentTime = 1; v.play()")
    page.wait_for_function(f"{PLAYER}.textTracks[0].activeCues.length > 0", timeout=15000)
    page.screenshot(path=str(OUT / "subtitle.png"))


def test_the_series_shows_once_and_lists_its_episodes_in_order(prod, page):
    page.goto(prod.url + "/")
    newest = page.locator("#newest .card")
    titles = newest.locator(".title").all_inner_texts()
    # The series once, and none of its episodes beside it (the demo's own cartoon episodes may be there).
    assert titles.count("豫剧经典系列") == 1 and not any(t.startswith("豫剧经典系列 第") for t in titles), titles
    card = page.locator("#newest .card.series", has_text="豫剧经典系列")
    assert card.count() == 1 and "新增 16 集" in card.inner_text()
    page.screenshot(path=str(OUT / "home.png"), full_page=True)
    card.click()
    page.wait_for_url(re.compile(r".*/series/pushi\.opera$"))
    eps = page.locator(".episodes .ep").all_inner_texts()
    assert eps == [f"第{i}集" for i in range(1, 17)]
    assert "总时长 6 分 40 秒" in page.locator(".series-page > .meta").inner_text()  # 16 × 25 s
    page.screenshot(path=str(OUT / "series.png"), full_page=True)


def test_watching_20_seconds_then_reloading_resumes_and_the_end_offers_the_next(prod, page):
    page.goto(prod.url + "/r/pushi.opera-03")
    page.wait_for_function(f"{PLAYER}.readyState >= 1", timeout=15000)
    page.evaluate(f"v = {PLAYER}; v.muted = true; v.currentTime = 16.5; v.play()")
    page.wait_for_function(f"{PLAYER}.currentTime > 20.2", timeout=20000)
    with page.expect_response(lambda r: "/api/v1/usage/beacon" in r.url and r.status == 200):
        page.evaluate(f"{PLAYER}.pause()")
    page.reload()
    page.wait_for_function(f"{PLAYER}.readyState >= 1", timeout=15000)
    start = page.evaluate(f"{PLAYER}.currentTime")
    assert start >= 18, start
    page.screenshot(path=str(OUT / "resumed.png"))
    page.goto(prod.url + "/")
    cont = page.locator("#continue")
    assert "豫剧经典系列 第3集" in cont.inner_text()
    page.screenshot(path=str(OUT / "continue.png"))

    page.goto(prod.url + "/r/pushi.opera-03")
    page.wait_for_function(f"{PLAYER}.readyState >= 1", timeout=15000)
    assert page.locator("#up-next").is_hidden()
    page.evaluate(f"v = {PLAYER}; v.muted = true; v.currentTime = v.duration - 1.5; v.play()")
    page.wait_for_selector("#up-next", state="visible", timeout=15000)
    assert "第4集" in page.locator("#up-next").inner_text()
    assert page.locator("#next-episode").get_attribute("href") == "/r/pushi.opera-04"
    page.screenshot(path=str(OUT / "up-next.png"))
    # Where JavaScript runs, the next episode plays by itself after the countdown.
    page.wait_for_url(re.compile(r".*/r/pushi\.opera-04\?autoplay=1$"), timeout=15000)
    page.wait_for_function(f"{PLAYER}.currentTime > 0.5 && !{PLAYER}.paused", timeout=15000)
    page.screenshot(path=str(OUT / "next-playing.png"))
