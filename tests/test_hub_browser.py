"""The dashboard in a real browser (Debian's chromium through Playwright)."""

from __future__ import annotations

import csv
import io
import shutil

import pytest

from edgenode.hub import registry
from edgenode.hub.database import open_hub
from edgenode.hub.ingest import ingest_batch
from tests.conftest import make_config
from tests.helpers_hub import LoopbackHub, make_events, seal, seed_fleet

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not shutil.which("chromium") and not shutil.os.path.exists("/usr/bin/chromium"),
                                 reason="needs /usr/bin/chromium")]

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--autoplay-policy=no-user-gesture-required"]


def test_dashboard_flags_problem_nodes_and_csv_matches_the_database(tmp_path):
    from playwright.sync_api import sync_playwright
    from edgenode.hub import staff

    cfg = make_config(tmp_path / "hub")
    conn = open_hub(cfg)
    seeded = seed_fleet(conn)
    for role, ident in seeded.items():
        node = registry.get_node(conn, ident.node_id)
        for b in range(2):
            ingest_batch(conn, node, b + 1, *seal(ident, b + 1, make_events(80, first_seq=1 + 80 * b,
                                                                              seed=hash(role) % 1000 + b)))
    staff.set_password(conn, "县中心", "correct horse 1")
    hub = LoopbackHub(cfg)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(accept_downloads=True)
            page.goto(hub.url + "/")
            assert "/login" in page.url
            page.fill("input[name=username]", "县中心")
            page.fill("input[name=password]", "correct horse 1")
            page.click("button[type=submit]")
            page.wait_for_selector("#problem-list")
            assert page.inner_text("#problem-count b") == "3"
            assert "3 / 4" in page.inner_text(".card.channel")
            page.click("#fleet-link")
            page.wait_for_selector("#fleet")
            for role, rule in (("offline", "offline"), ("disk", "disk"), ("behind", "behind")):
                row = page.locator(f'tr[data-node="{seeded[role].node_id}"]')
                assert row.locator(f".problem-{rule}").count() == 1, role
                assert "problem" in (row.get_attribute("class") or "")
            healthy = page.locator(f'tr[data-node="{seeded["healthy"].node_id}"]')
            assert healthy.locator("[class*=problem-]").count() == 0 and "在线" in healthy.inner_text()
            assert page.locator(f'tr[data-node="{seeded["offline"].node_id}"] .s-offline').inner_text() == "离线"
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

            page.check("input[name=problems]")
            page.click("form[method=get] button[type=submit]")
            page.wait_for_selector("#fleet")
            assert page.locator("#fleet tbody tr[data-node]").count() == 3
            page.click("text=磁盘已用")  # sort by disk
            page.wait_for_selector("#fleet")

            page.click("text=服务统计")
            page.select_option("select[name=group]", "township")
            page.click("form.noprint button")
            page.wait_for_selector("#stats")
            with page.expect_download() as dl:
                page.click("#csv")
            text = open(dl.value.path(), encoding="utf-8-sig").read()
            browser.close()
    finally:
        hub.close()
    rows = list(csv.DictReader(io.StringIO(text.split("\n", 1)[1])))
    truth = {r[0]: r[1:] for r in conn.execute(
        "SELECT n.township, sum(d.n) FILTER (WHERE d.kind = 'view'), sum(d.n) FILTER (WHERE d.kind = 'play_start'), "
        "round(sum(d.seconds) / 3600.0, 2) FROM hub_daily d JOIN hub_nodes n USING (node_id) GROUP BY n.township")}
    assert {r["township"]: (int(r["visits"]), int(r["plays"]), float(r["watch_hours"])) for r in rows} == truth
    terms = dict(conn.execute("SELECT n.township, count(DISTINCT t.node_id || t.terminal) FROM hub_terminals t "
                              "JOIN hub_nodes n USING (node_id) GROUP BY n.township"))
    assert {r["township"]: int(r["unique_terminals"]) for r in rows} == terms
    conn.close()
