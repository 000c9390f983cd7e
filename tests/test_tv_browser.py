"""The TV (电视) mode in a real browser (Debian's chromium via Playwright), against gunicorn behind nginx,
driven by the keyboard only (issue 19).

The clock is faked through config: ``EDGENODE_TV_CLOCK_OFFSET_SECONDS`` (the ``tv.clock_offset_seconds``
setting) puts the TV's time of day at 18:59:35 when the server starts, and a screening of another
playlist starts at 19:00; the page asks every second (``tv.poll_seconds``).  Screenshots: test-output/tv/.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgenode.cli import cli
from tests.helpers_portal import Production, copy_data

pytestmark = pytest.mark.browser
OUT = Path(__file__).resolve().parent.parent / "test-output" / "tv"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def prod(demo_master, tmp_path_factory):
    work = tmp_path_factory.mktemp("tv-browser")
    data = copy_data(demo_master, work / "data")

    def run(*args):
        r = CliRunner().invoke(cli, ["--data-dir", str(data), *args], env={"EDGENODE_CONFIG": ""},
                               catch_exceptions=False)
        assert r.exit_code == 0, r.output

    run("tv", "playlist", "day", "demo-01", "demo-02", "--title", "白天农技")
    run("tv", "playlist", "night", "demo-06", "--title", "晚间戏曲")
    run("tv", "slot-add", "19:00", "21:00", "night")
    run("tv", "loop", "day")
    now = datetime.now()
    offset = round((now.replace(hour=18, minute=59, second=35, microsecond=0) - now).total_seconds())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGENODE_TV_CLOCK_OFFSET_SECONDS", str(offset))  # gunicorn's environment: the fake clock
        mp.setenv("EDGENODE_TV_POLL_SECONDS", "1")
        p = Production(work / "prod", data)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def page(prod):
    playwright = pytest.importorskip("playwright.sync_api")
    OUT.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        yield b.new_context(viewport={"width": 1280, "height": 720}).new_page()
        b.close()


def test_a_schedule_switches_playlists_at_the_configured_time(prod, page):
    """Runs first in the module: the fake clock reaches 19:00 about 25 s after the server started."""
    page.goto(prod.url + "/tv/screen")
    assert page.evaluate("fetch('/tv/api/now').then(r => r.json()).then(j => j.now)") < "9999"
    before = page.evaluate("document.body.dataset.playlist")
    fake = page.evaluate("fetch('/tv/api/now').then(r => r.json()).then(j => j.now.slice(11))")
    assert before == "day" and "18:59:35" <= fake < "19:00:00", (before, fake)
    page.wait_for_function("document.getElementById('screen').currentTime > 0.5", timeout=15000)
    assert page.evaluate("document.body.dataset.item") in ("demo-01", "demo-02")
    page.screenshot(path=str(OUT / "screen-day.png"))
    page.wait_for_function("document.body.dataset.playlist === 'night'", timeout=45000)
    now = page.evaluate("fetch('/tv/api/now').then(r => r.json())")
    assert now["now"][11:] >= "19:00:00" and now["why"] == "slot" and now["slot"]["start"] == "19:00"
    assert page.evaluate("document.body.dataset.item") == "demo-06"
    page.wait_for_function("document.getElementById('screen').currentTime > 0.5", timeout=15000)
    assert "晚间戏曲" in page.locator("#caption").inner_text()
    page.screenshot(path=str(OUT / "screen-night.png"))


def test_keyboard_only_plays_a_resource_full_screen_and_returns_to_the_tiles(prod, page):
    page.goto(prod.url + "/tv/screen")
    page.keyboard.press("Escape")
    page.wait_for_url(re.compile(r".*/tv/$"))
    assert page.evaluate("document.activeElement.classList.contains('screening')")
    page.screenshot(path=str(OUT / "tiles.png"))
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")  # back to the first row's second tile
    chosen = page.evaluate("document.activeElement.dataset.id")
    assert chosen and page.evaluate("document.activeElement.getBoundingClientRect().left") > 100
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf".*/tv/play/{re.escape(chosen)}$"))
    page.wait_for_function("document.getElementById('player').currentTime > 1", timeout=20000)
    box = page.evaluate("(() => { const r = document.getElementById('player').getBoundingClientRect();"
                        " return [r.left, r.top, r.width, r.height]; })()")
    assert box == [0, 0, 1280, 720]  # the whole screen
    page.screenshot(path=str(OUT / "playing.png"))
    page.keyboard.press("Enter")  # pause
    assert page.evaluate("document.getElementById('player').paused")
    page.keyboard.press("Backspace")
    page.wait_for_url(re.compile(r".*/tv/$"))
    assert page.locator(".tile").count() > 5


def test_the_tv_shows_subtitles_too(prod, page):
    page.goto(prod.url + "/tv/play/demo-jiyang-01")
    page.wait_for_function("(() => { const t = document.getElementById('player').textTracks[0];"
                           " return t && t.mode === 'showing' && t.cues && t.cues.length > 0; })()", timeout=15000)
    page.wait_for_function("document.getElementById('player').textTracks[0].activeCues.length > 0", timeout=15000)
    page.screenshot(path=str(OUT / "subtitles.png"))
