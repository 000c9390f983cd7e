"""Booking in a real browser (Debian's chromium via Playwright): a villager books and gets a
pickup code, the administrator approves and checks the code in; a reused or forged code is refused."""

from __future__ import annotations

import pytest

from edgenode.core.db import open_main
from tests.helpers_activities import activity, live_app
from tests.helpers_portal import PASSWORD, set_admin

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_book_approve_checkin_in_chromium(cfg, browser):
    conn = open_main(cfg, check=True)
    set_admin(conn)
    a = activity(conn, capacity=10, audit=True, title="电影放映：《袁隆平》")
    conn.close()
    with live_app(cfg) as (base, _app):
        # The villager, on a phone-sized screen.
        villager = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
        villager.goto(f"{base}/activities/")
        villager.get_by_role("link", name="电影放映：《袁隆平》").click()
        villager.fill("input[name=name]", "陈忠")
        villager.fill("input[name=phone]", "155 2000 0820")
        villager.fill("input[name=seats]", "2")
        villager.get_by_role("button", name="提交预约").click()
        villager.wait_for_selector("#code")
        code = villager.inner_text("#code")
        order_id = villager.inner_text("#order-id")
        assert len(code) == 8 and code.isdigit() and len(order_id) == 20
        assert villager.inner_text("#status") == "待审核"

        # The administrator, in another browser profile.
        admin = browser.new_context(locale="zh-CN").new_page()
        admin.goto(f"{base}/admin/activities/{a['id']}")
        assert "/admin/login" in admin.url  # anonymous: sent to the login page
        admin.fill("input[name=password]", PASSWORD)
        admin.locator("form button[type=submit]").last.click()
        admin.wait_for_url(f"**/admin/activities/{a['id']}")
        row = admin.locator(f"tr[data-order='{order_id}']")
        assert "155****0820" in row.inner_text() and "15520000820" not in admin.content()
        # Checking in before approval is refused.
        admin.goto(f"{base}/admin/activities/checkin")
        admin.fill("input[name=code]", code)
        admin.get_by_role("button", name="签到").click()
        assert "尚未审核" in admin.inner_text("#error")
        # Approve, then check in by code.
        admin.goto(f"{base}/admin/activities/{a['id']}")
        admin.locator(f"tr[data-order='{order_id}'] button.approve").click()
        admin.wait_for_load_state()
        assert "已审核" in admin.locator(f"tr[data-order='{order_id}']").inner_text()
        admin.goto(f"{base}/admin/activities/checkin")
        admin.fill("input[name=code]", code)
        admin.get_by_role("button", name="签到").click()
        assert "签到成功" in admin.inner_text("#result") and order_id in admin.inner_text("#result")
        # The same code again: refused as used.
        admin.fill("input[name=code]", code)
        admin.get_by_role("button", name="签到").click()
        assert "签到过" in admin.inner_text("#error")
        # A forged code: refused.
        forged = f"{(int(code) + 1) % 10 ** 8:08d}"
        admin.fill("input[name=code]", forged)
        admin.get_by_role("button", name="签到").click()
        assert "取票码无效" in admin.inner_text("#error")

        # The villager sees the new status with order id + code.
        villager.goto(f"{base}/activities/lookup?order_id={order_id}")
        villager.fill("input[name=code]", code)
        villager.get_by_role("button", name="查询").click()
        assert villager.inner_text("#status") == "已签到"
