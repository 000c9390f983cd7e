"""Campaigns: window, per-terminal daily limit (also under concurrency), the portal, and votes
from three nodes reaching the real hub exactly once, with redelivery, and the ranking coming back."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

from edgenode.node.activities import published
from edgenode.node.campaigns import queries as cq
from edgenode.node.campaigns.ranking import fetch_rankings
from edgenode.core.db import open_main
from edgenode.core.errors import EdgenodeError
from edgenode.core.identity import load_or_create
from edgenode.node.sync import client, outbox, uplink
from tests.helpers_activities import ERROR_RE, campaign, csrf
from tests.helpers_sync import Hub, enrolled_node


def test_window_limit_and_events(cfg, conn):
    now = time.time()
    c = campaign(conn, cfg, start=now + 3600, end=now + 3 * 86400)
    with pytest.raises(EdgenodeError) as e:
        cq.vote(conn, c["id"], "12", terminal="a", now=now)
    assert e.value.code == "E_VOTE_NOT_STARTED" and "尚未开始" in e.value.zh
    t = now + 7200
    assert cq.vote(conn, c["id"], "12", terminal="a", now=t)["left"] == 1
    assert cq.vote(conn, c["id"], "31", terminal="a", now=t + 1)["left"] == 0
    with pytest.raises(EdgenodeError) as e:
        cq.vote(conn, c["id"], "26", terminal="a", now=t + 2)
    assert e.value.code == "E_VOTE_LIMIT" and e.value.status == 429 and "每人每天限投2票" in e.value.zh
    cq.vote(conn, c["id"], "26", terminal="b", now=t + 3)  # another terminal has its own two votes
    cq.vote(conn, c["id"], "12", terminal="a", now=t + 86400)  # and tomorrow is a new day
    with pytest.raises(EdgenodeError) as e:
        cq.vote(conn, c["id"], "12", terminal="c", now=c["end_at"] + 1)
    assert e.value.code == "E_VOTE_ENDED" and "投票已于" in e.value.zh
    with pytest.raises(EdgenodeError) as e:
        cq.vote(conn, c["id"], "99", terminal="c", now=t)
    assert e.value.status == 404
    assert cq.local_counts(conn, c["id"]) == {"12": 2, "31": 1, "26": 1}
    rows = conn.execute("SELECT terminal, data FROM usage_events WHERE kind = 'vote' ORDER BY seq").fetchall()
    assert [json.loads(r["data"]) for r in rows][:2] == [{"campaign": c["id"], "item": "12"},
                                                          {"campaign": c["id"], "item": "31"}]
    assert len(rows) == 4  # refused votes left no event


def test_campaign_limit_setting_and_json_rules(cfg, conn, runner, tmp_path):
    c = campaign(conn, cfg, daily_limit=1, cid="one")
    cq.vote(conn, c["id"], "12", terminal="x")
    with pytest.raises(EdgenodeError):
        cq.vote(conn, c["id"], "12", terminal="x")
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "c", "title": "t", "start": "2030-01-01 00:00", "end": "2029-01-01 00:00", '
                   '"items": [{"id": "1", "title": "a"}]}', encoding="utf-8")
    r = runner("campaign", "create", str(bad))
    assert r.exit_code == 1 and "E_TIME_ORDER" in r.output
    bad.write_text("{not json", encoding="utf-8")
    assert "E_CAMPAIGN_INVALID" in runner("campaign", "create", str(bad)).output
    assert "one" in runner("campaign", "list").output


def test_daily_limit_holds_under_concurrent_votes(cfg, conn):
    c = campaign(conn, cfg)
    results: list = []
    barrier = threading.Barrier(12)

    def voter():
        own = open_main(cfg)
        barrier.wait()
        try:
            cq.vote(own, c["id"], "12", terminal="same-terminal")
            results.append("ok")
        except EdgenodeError as e:
            results.append(e.code)
        finally:
            own.close()

    threads = [threading.Thread(target=voter) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert Counter(results) == {"ok": 2, "E_VOTE_LIMIT": 10}
    assert conn.execute("SELECT count(*) FROM usage_events WHERE kind = 'vote'").fetchone()[0] == 2


def test_vote_in_the_portal(demo_cfg, demo_conn, client):
    campaign(demo_conn, demo_cfg)
    page = client.get("/campaigns/qunwen-2026")
    assert page.status_code == 200 and "每人每天限投2票" in page.text
    token = csrf(page.text)
    r = client.post("/campaigns/qunwen-2026/vote", data={"item": "12"})
    assert r.status_code == 400  # no CSRF token
    for _ in range(2):
        r = client.post("/campaigns/qunwen-2026/vote", data={"csrf_token": token, "item": "12"})
        assert r.status_code == 200 and "投票成功" in r.text
    r = client.post("/campaigns/qunwen-2026/vote", data={"csrf_token": token, "item": "31"})
    assert r.status_code == 429 and "今天的票已经投完了" in ERROR_RE.search(r.text).group(1)
    assert 'data-item="12">2<' in r.text
    assert client.get("/campaigns/nope").status_code == 404
    assert "全县排行" in client.get("/campaigns/qunwen-2026").text


CAMPAIGN = {"id": "qunwen", "title": "2026 群文杯", "start": "2020-01-01 00:00", "end": "2099-12-31 23:59",
            "daily_limit": 2, "items": [{"id": "12", "title": "黄河之歌"}, {"id": "31", "title": "山海夕阳红"},
                                        {"id": "26", "title": "你的名字是春天"}]}


def _publish(conn):
    manifest = json.dumps({"format": 1, "channel": "county", "seq": 1, "resources": [],
                           "campaigns": [CAMPAIGN]}, ensure_ascii=False).encode()
    published.apply_manifest_sections(conn, "county", 1, manifest)
    return "county.qunwen"


def _cast(conn, cid, node_no: int, terminals: int, round_: int) -> Counter:
    """Each terminal votes twice (the limit), then once more (refused)."""
    got = Counter()
    items = ["12", "31", "26"]
    for t in range(terminals):
        term = f"n{node_no}-r{round_}-t{t}"
        for k in range(2):
            item = items[(node_no + t + k) % 3]
            cq.vote(conn, cid, item, terminal=term)
            got[item] += 1
        with pytest.raises(EdgenodeError):
            cq.vote(conn, cid, "12", terminal=term)
    return got


def _redeliver(cfg, saved):
    ident = load_or_create(cfg)
    answers = []
    for batch_no, data, sig in saved:
        answers.append(client.call(cfg, cfg["sync.hub_url"] or _hub_url(cfg), "POST", uplink.PATH, body=data,
                                   ident=ident, content_type="application/octet-stream",
                                   headers={"X-Edgenode-Batch-No": str(batch_no), "X-Edgenode-Batch-Signature": sig}))
    return answers


def _hub_url(cfg):
    conn = open_main(cfg)
    try:
        return client.hub_url(cfg, conn)
    finally:
        conn.close()


def test_three_nodes_votes_reach_the_hub_exactly_once(tmp_path):
    hub = Hub(tmp_path / "hub").start()
    try:
        expected = Counter()
        nodes = []
        for i in range(3):
            cfg = enrolled_node(tmp_path, hub, f"node{i}")
            conn = open_main(cfg)
            cid = _publish(conn)
            expected += _cast(conn, cid, i, terminals=3 + i, round_=0)
            uplink.seal(cfg, conn)
            saved = [(n, p.read_bytes(), outbox.sig_path(p).read_text().strip()) for n, p in outbox.batch_files(cfg)]
            assert saved
            sent = uplink.send(cfg, conn, _hub_url(cfg))
            assert sent["sent"] == len(saved) and sent["duplicate"] == 0
            # Redelivery: the same batches again (a lost ack, a USB export imported too).
            assert {a["status"] for a in _redeliver(cfg, saved)} == {"duplicate"}
            nodes.append((cfg, conn))
        # A second round on one node, sent twice over.
        cfg0, conn0 = nodes[0]
        expected += _cast(conn0, "county.qunwen", 0, terminals=2, round_=1)
        # Through the scheduler's uplink job, which also brings the county ranking back.
        from edgenode.node.sync.runner import run_job
        job = run_job(cfg0, "uplink", ignore_windows=True)
        assert job["state"] == "done" and job["result"]["sent"] == 1, job
        assert job["result"]["rankings"]["stored"] == ["county.qunwen"]
        assert uplink.run(cfg0, conn0, _hub_url(cfg0))["sent"] == 0

        local_total = Counter()
        for cfg, conn in nodes:
            local_total += Counter(cq.local_counts(conn, "county.qunwen"))
        assert local_total == expected

        hconn = hub.db()
        from edgenode.hub import tally
        r = tally.ranking(hconn, "county.qunwen")
        assert {i["item"]: i["votes"] for i in r["items"]} == dict(expected)
        assert r["total"] == sum(expected.values()) and r["nodes"] == 3
        assert [i["votes"] for i in r["items"]] == sorted(expected.values(), reverse=True)
        per_node = Counter()
        for row in r["per_node"]:
            per_node[row["node_id"]] += row["votes"]
        assert sorted(per_node.values()) == sorted(sum(cq.local_counts(c, "county.qunwen").values())
                                                   for _cfg, c in nodes)
        assert hconn.execute("SELECT count(*) FROM hub_votes").fetchone()[0] == sum(expected.values())
        hconn.close()

        # The ranking comes back to a node and shows on its campaign page.
        cfg1, conn1 = nodes[1]
        assert fetch_rankings(cfg1, conn1)["stored"] == ["county.qunwen"]
        county = cq.get_campaign(conn1, "county.qunwen")["county"]
        assert {i["item"]: i["votes"] for i in county["items"]} == dict(expected)
        assert county["items"][0]["title"] in {"黄河之歌", "山海夕阳红", "你的名字是春天"} and county["nodes"] == 3
        from edgenode.node.app import create_app
        page = create_app(cfg1).test_client().get("/campaigns/county.qunwen").get_data(as_text=True)
        assert 'id="county"' in page and f"<td>{county['items'][0]['votes']}</td>" in page
        for _cfg, conn in nodes:
            conn.close()
    finally:
        hub.stop()


def test_hub_tally_pages_need_staff_login(tmp_path):
    from edgenode.hub.app import create_hub_app
    from tests.conftest import make_config
    app = create_hub_app(make_config(tmp_path / "hub"))
    c = app.test_client()
    for path in ("/tally/", "/tally/campaign/x", "/tally/requests", "/tally/requests?format=csv"):
        r = c.get(path)
        assert r.status_code == 302 and "/login" in r.headers["Location"], path
    assert c.get("/api/v1/tally/rankings").status_code == 401  # unsigned
    with c.session_transaction() as s:
        s["staff"] = "county"
    assert c.get("/tally/").status_code == 200
    assert c.get("/tally/campaign/x?format=json").json["total"] == 0


def test_hub_define_and_window_filter(tmp_path, runner, cfg):
    """The county records the window at the hub; a vote stamped after the end (a node's clock
    was wrong) is shown apart, not counted."""
    from edgenode.hub import tally
    from edgenode.hub.database import open_hub
    doc = tmp_path / "c.json"
    doc.write_text(json.dumps(CAMPAIGN, ensure_ascii=False), encoding="utf-8")
    assert runner("campaign", "hub-define", str(doc), "--channel", "county").exit_code == 0
    hconn = open_hub(cfg)
    header = {"kind": "events"}
    end = cq.campaign_fields(CAMPAIGN, default_limit=2)["end_at"]
    lines = [{"s": i, "t": t, "k": "vote", "m": "t", "r": None, "c": None, "d": 0.0,
              "x": {"campaign": "county.qunwen", "item": "12"}} for i, t in enumerate([end - 10, end - 5, end + 60], 1)]
    tally.ingest(hconn, "a" * 32, header, lines)
    tally.ingest(hconn, "a" * 32, header, lines)  # the same events again: no double count
    hconn.close()
    out = runner("campaign", "hub-tally", "county.qunwen", "--json").output
    r = json.loads(out)
    assert r["total"] == 2 and r["outside_window"] == 1 and r["items"][0]["title"] == "黄河之歌"


def test_votes_exact_when_the_hub_dies_mid_ingest(tmp_path):
    """SIGKILL the hub while a node uploads many small batches of votes; after restarts and
    resends the county totals still equal the node's own counts."""
    import random
    hub = Hub(tmp_path / "hub").start()
    try:
        cfg = enrolled_node(tmp_path, hub, "node", sync__batch_max_events=15)
        conn = open_main(cfg)
        cid = _publish(conn)
        rnd = random.Random(3)
        kills = 0
        for round_ in range(6):
            _cast(conn, cid, round_ % 3, terminals=10, round_=round_)
            killer = threading.Timer(rnd.uniform(0.02, 0.25), hub.kill)
            killer.start()
            try:
                uplink.run(cfg, conn, _hub_url(cfg))
            except EdgenodeError:
                pass  # the hub died under us: the batches stay in the outbox
            killer.join()
            kills += hub.proc.poll() is not None
            if hub.proc.poll() is not None:
                hub.start()
        for _ in range(5):
            if uplink.run(cfg, conn, _hub_url(cfg))["backlog"]["batches"] == 0:
                break
        local = cq.local_counts(conn, cid)
        conn.close()
        hconn = hub.db()
        from edgenode.hub import tally
        got = {i["item"]: i["votes"] for i in tally.ranking(hconn, cid)["items"]}
        hconn.close()
        assert kills >= 3
        assert got == local and sum(local.values()) == 6 * 10 * 2
    finally:
        hub.stop()


def test_votes_survive_the_outbox_summarising_old_batches(tmp_path):
    """A node offline so long that its outbox outgrew sync.outbox_cap_mb: the summarised batches
    still bring every vote, with its campaign and item, to the county's ranking."""
    hub = Hub(tmp_path / "hub").start()
    try:
        cfg = enrolled_node(tmp_path, hub, "node")
        conn = open_main(cfg)
        cid = _publish(conn)
        expected = _cast(conn, cid, 0, terminals=4, round_=0)
        ident = load_or_create(cfg)
        uplink.seal(cfg, conn, ident)
        assert outbox.enforce_cap(cfg, conn, ident, cap_bytes=1)["summarised"] >= 1
        assert {outbox.read_header(p)["kind"] for _, p in outbox.batch_files(cfg)} == {"daily"}
        assert uplink.send(cfg, conn, _hub_url(cfg), ident)["sent"] >= 1
        hconn = hub.db()
        from edgenode.hub import tally
        r = tally.ranking(hconn, cid)
        assert {i["item"]: i["votes"] for i in r["items"]} == dict(expected)
        assert hconn.execute("SELECT count(*) FROM hub_votes").fetchone()[0] == sum(expected.values())
        hconn.close()
        conn.close()
    finally:
        hub.stop()
