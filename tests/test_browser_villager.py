"""Issue 19 in a real browser (Debian's chromium via Playwright) against gunicorn behind nginx.

A child reaches a cartoon from home in two clicks on picture cards; 大字 with
JavaScript off gives ≥ 28 px text on every villager page with no sideways
scroll at 360 px; the player's controls are on screen at 1024×768 and 360×640;
the phone header is compact.  Screenshots: test-output/browser/villager_*.png.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers_portal import Production, copy_data

pytestmark = pytest.mark.browser
OUT = Path(__file__).resolve().parent.parent / "test-output" / "browser"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PHONE = {"viewport": {"width": 360, "height": 640}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
VILLAGER_PAGES = ["/", "/s/shaoer", "/s/shaoer?sub=动画", "/s/nongye", "/column/sannong", "/tag/少儿",
                  "/search?q=水稻", "/search?q=xyzzy", "/r/demo-01", "/r/demo-04", "/r/demo-07", "/r/demo-08",
                  "/r/demo-08/read", "/activities/", "/nope"]
# Every element that shows text of its own, with its computed size (iframes are their own documents).
TEXT_SIZES = """Array.from(document.body.querySelectorAll('*')).filter(e =>
    e.offsetParent !== null && Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim()) &&
    !e.closest('.skip')).map(e => [e.tagName + '.' + e.className, e.textContent.trim().slice(0, 20),
    parseFloat(getComputedStyle(e).fontSize)])"""


def shot(page, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"villager_{re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')}.png"),
                    full_page=True)


@pytest.fixture(scope="module")
def prod(demo_master, tmp_path_factory):
    work = tmp_path_factory.mktemp("villager")
    p = Production(work / "prod", copy_data(demo_master, work / "data"))
    yield p
    p.stop()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        yield b
        b.close()


def click_picture(page, selector: str) -> None:
    """Click a card a child chooses by its picture: its image takes at least 40% of it."""
    card = page.locator(selector).first
    box = card.bounding_box()
    img = card.locator("img").first.bounding_box()
    assert img["width"] * img["height"] >= 0.4 * box["width"] * box["height"], selector
    card.click()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_child_reaches_a_cartoon_in_two_picture_clicks(prod, browser, size):
    ctx = browser.new_context(**(PHONE if size == "phone" else {"viewport": {"width": 1024, "height": 768}}))
    page = ctx.new_page()
    page.goto(prod.url + "/")
    tile = page.locator("a.tile[data-section=shaoer]")
    assert tile.bounding_box()["y"] < 640  # on the first screen, not at the bottom of a long page
    click_picture(page, "a.tile[data-section=shaoer]")               # click 1: the children's picture
    page.wait_for_url(re.compile(r"/s/shaoer$"))
    shot(page, f"corner_{size}")
    click_picture(page, "a.picture.kind-video")                      # click 2: a cartoon's picture
    page.wait_for_url(re.compile(r"/r/demo-1[67]$"))
    assert "动画片" in page.locator("h1").inner_text()
    assert page.locator("video#player").count() == 1
    ctx.close()


def test_large_type_without_javascript_on_every_villager_page(prod, browser):
    ctx = browser.new_context(java_script_enabled=False, **PHONE)
    page = ctx.new_page()
    page.goto(prod.url + "/")
    page.locator("nav.display a", has_text="大字").click()  # a plain link sets the cookie
    page.wait_for_url(prod.url + "/")
    assert "big" in (page.locator("html").get_attribute("class") or "")
    for path in VILLAGER_PAGES:
        page.goto(prod.url + path)
        sizes = page.evaluate(TEXT_SIZES)
        body = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        small = [s for s in sizes if s[2] < 28]
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        shot(page, "big_" + path)
        assert body >= 28 and sizes and not small, (path, body, small[:5])
        assert width[0] <= width[1], (path, width)
    page.goto(prod.url + "/r/demo-08/read")  # the book's own text, in its sandboxed frame
    frame = page.frame_locator("iframe.chapter")
    sizes = frame.locator("body").evaluate(TEXT_SIZES.replace("document.body", "document.body"))
    assert sizes and all(s[2] >= 28 for s in sizes), sizes
    page.goto(prod.url + "/")
    page.locator("nav.display a", has_text="高对比").click()
    assert page.locator("html").get_attribute("class") == "big hc"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(0, 0, 0)"
    shot(page, "contrast_home")
    ctx.close()


@pytest.mark.parametrize("viewport", [(1024, 768), (360, 640)])
def test_the_player_and_its_controls_fit_the_window(prod, browser, viewport):
    w, h = viewport
    ctx = browser.new_context(**(PHONE if w == 360 else {"viewport": {"width": w, "height": h}}))
    page = ctx.new_page()
    page.goto(prod.url + "/r/demo-01")
    page.wait_for_function("document.querySelector('video').readyState >= 1")
    box = page.locator("video#player").bounding_box()
    shot(page, f"player_{w}x{h}")
    assert box["y"] >= 0 and box["y"] + box["height"] <= h, box
    assert box["x"] >= 0 and box["x"] + box["width"] <= w, box
    assert box["height"] >= 150
    ctx.close()


def test_the_pdf_is_named_by_its_title_through_nginx(prod):
    import requests
    from urllib.parse import quote
    r = requests.get(prod.url + "/r/demo-04/file/" + quote("果树冬季修剪手册.pdf"), timeout=10)
    assert r.status_code == 200 and r.content[:5] == b"%PDF-"
    assert "filename*=UTF-8''" + quote("果树冬季修剪手册.pdf", safe="") in r.headers["Content-Disposition"]


def test_the_phone_header_is_compact(prod, browser):
    ctx = browser.new_context(**PHONE)
    page = ctx.new_page()
    page.goto(prod.url + "/")
    height = page.locator("header.top").bounding_box()["height"]
    assert height <= 170, height  # it was 240 of 640 px
    ctx.close()
