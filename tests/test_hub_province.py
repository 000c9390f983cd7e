"""Issue 18, the province view: a provincial hub shows its counties as a county hub shows its nodes
(problems first, totals), from real signed reports over loopback HTTP."""

from __future__ import annotations

import re
import time
from datetime import date

from edgenode.hub import province, registry, tiers
from edgenode.hub.app import create_hub_app
from edgenode.hub.database import open_hub
from edgenode.hub.days import local_day
from tests import helpers_fleet
from tests.conftest import make_config
from tests.helpers_hub import LoopbackHub, login, new_identity

ALLOWED = {"KB", "MB", "GB", "TB", "WPS", "Excel", "CSV", "PDF", "U", "UTC"}


def _visible_ascii_words(html: str) -> set[str]:
    text = re.sub(r"<(style|script|details)\b.*?</\1>", "", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return set(re.findall(r"[A-Za-z]+", text)) - ALLOWED


def test_counties_problems_first_and_totals(tmp_path):
    pcfg = make_config(tmp_path / "province", hub__name="省级平台")
    pconn = open_hub(pcfg)
    phub = LoopbackHub(pcfg)
    counties = {}
    try:
        for name, n, base in (("甲县", 100, 0xA1), ("乙县", 40, 0xB2)):
            cfg = make_config(tmp_path / name, hub__name=name)
            conn = open_hub(cfg)
            helpers_fleet.seed(conn, n, id_base=base)
            if name == "乙县":  # every node reported a minute ago
                conn.execute("UPDATE hub_latest SET received_at = ?", (time.time() - 60,))
                conn.commit()
            tiers.enroll_upstream(conn, cfg, phub.url, registry.new_code(pconn))
            assert tiers.forward(conn, cfg)["status"] == "stored"
            counties[name] = (cfg, conn)
        quiet = new_identity()  # 丙县 enrolled two days ago and never reported
        registry.enroll(pconn, code=registry.new_code(pconn), node_id=quiet.node_id, public_key=quiet.public_b64(),
                        name="丙县", kind="hub")
        pconn.execute("UPDATE hub_nodes SET enrolled_at = enrolled_at - 2 * 86400 WHERE node_id = ?", (quiet.node_id,))
        b_id = registry.find_node(pconn, "乙县")["node_id"]
        pconn.execute("UPDATE hub_nodes SET last_batch_at = last_batch_at - 30 * 3600 WHERE node_id = ?", (b_id,))
        pconn.commit()

        v = province.counties(pconn, pcfg)
        assert [(p["name"], p["kind"]) for p in v["problems"]] == [("乙县", "late"), ("丙县", "never"), ("甲县", "nodes")]
        a = next(p for p in v["problems"] if p["name"] == "甲县")
        assert "100 个服务点中 10 个离线、迟报或从未上报" in a["detail"]
        rows = {r["name"]: r for r in v["rows"]}
        assert rows["甲县"]["brief"] == {"nodes": 100, "online": 90, "late": 5, "offline": 5, "never": 0,
                                         "problem_nodes": 35}
        assert rows["乙县"]["brief"]["online"] == 40 and rows["丙县"]["brief"] is None
        today = date.fromisoformat(local_day(time.time(), pcfg.hub.utc_offset_hours))  # the statistics day
        first = today.replace(day=1).isoformat()
        for name, (cfg, conn) in counties.items():
            truth = conn.execute("SELECT coalesce(sum(n), 0) FROM hub_daily WHERE kind = 'view' AND day BETWEEN ? AND ?",
                                 (first, today.isoformat())).fetchone()[0]
            assert rows[name]["visits_month"] == truth, name
        assert v["totals"]["nodes"] == 140 and v["totals"]["problem_counties"] == 3
        assert v["totals"]["visits_month"] == sum(r["visits_month"] for r in v["rows"])

        from click.testing import CliRunner
        from edgenode.cli import cli
        r = CliRunner().invoke(cli, ["hub", "counties"], env={"EDGENODE_DATA_DIR": str(pcfg.data_path)})
        assert r.exit_code == 0 and r.output.index("late") < r.output.index("never") < r.output.index("nodes"), r.output

        app = create_hub_app(pcfg)
        app.config["TESTING"] = True
        client = login(app.test_client(), pconn, username="省平台")
        html = client.get("/province/").get_data(as_text=True)
        assert "各县情况" in html and html.index("乙县") < html.index("丙县") and "服务点离线多" in html
        assert _visible_ascii_words(html) == set()
        # a county hub with no counties below it has no such link
        ccfg, cconn = counties["甲县"]
        capp = create_hub_app(ccfg)
        capp.config["TESTING"] = True
        assert "各县情况" not in login(capp.test_client(), cconn).get("/").get_data(as_text=True)
    finally:
        phub.close()
        for _cfg, conn in counties.values():
            conn.close()
        pconn.close()
