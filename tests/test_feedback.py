"""Requests and feedback: no personal data, limits, the portal form, and the hub's listing per
node and keyword after the real uplink."""

from __future__ import annotations

import json

import pytest

from edgenode.core.db import open_main
from edgenode.core.errors import EdgenodeError
from edgenode.node.feedback import queries as fq
from edgenode.node.sync import uplink
from tests.helpers_activities import ERROR_RE, csrf
from tests.helpers_sync import Hub, enrolled_node


def _resource(conn):
    return conn.execute("SELECT id FROM resources WHERE visible = 1 LIMIT 1").fetchone()[0]


def test_request_and_feedback_are_usage_events(demo_cfg, demo_conn):
    rid = _resource(demo_conn)
    fq.submit_request(demo_conn, demo_cfg, "想看更多果树修剪", terminal="t1")
    fq.submit_feedback(demo_conn, demo_cfg, rid, 4, "讲得清楚", terminal="t1")
    rows = demo_conn.execute("SELECT kind, resource_id, data FROM usage_events WHERE kind IN ('request', 'feedback') "
                             "ORDER BY seq").fetchall()
    assert [(r["kind"], r["resource_id"], json.loads(r["data"])) for r in rows] == [
        ("request", None, {"text": "想看更多果树修剪"}), ("feedback", rid, {"rating": 4, "comment": "讲得清楚"})]
    assert [r["kind"] for r in fq.recent(demo_conn)] == ["feedback", "request"]


@pytest.mark.parametrize("call, code", [
    (lambda c, cfg, rid: fq.submit_request(c, cfg, "", terminal="t"), "E_FIELD_REQUIRED"),
    (lambda c, cfg, rid: fq.submit_request(c, cfg, "打我电话 138 0000 0820", terminal="t"), "E_PERSONAL_DATA"),
    (lambda c, cfg, rid: fq.submit_request(c, cfg, "身份证622425199404180317", terminal="t"), "E_ID_NUMBER"),
    (lambda c, cfg, rid: fq.submit_request(c, cfg, "长" * 201, terminal="t"), "E_FIELD_TOO_LONG"),
    (lambda c, cfg, rid: fq.submit_request(c, cfg, "a\x1bb", terminal="t"), "E_FIELD_INVALID"),
    (lambda c, cfg, rid: fq.submit_request(c, cfg, "好", terminal="t", resource_id="nope"), "E_NOT_FOUND"),
    (lambda c, cfg, rid: fq.submit_feedback(c, cfg, rid, 6, terminal="t"), "E_NUMBER_RANGE"),
    (lambda c, cfg, rid: fq.submit_feedback(c, cfg, rid, 0, terminal="t"), "E_NUMBER_RANGE"),
    (lambda c, cfg, rid: fq.submit_feedback(c, cfg, rid, "五", terminal="t"), "E_NUMBER_INVALID"),
    (lambda c, cfg, rid: fq.submit_feedback(c, cfg, "nope", 5, terminal="t"), "E_NOT_FOUND"),
    (lambda c, cfg, rid: fq.submit_feedback(c, cfg, rid, 5, "13800000820", terminal="t"), "E_PERSONAL_DATA"),
])
def test_hostile_feedback_changes_nothing(demo_cfg, demo_conn, call, code):
    rid = _resource(demo_conn)
    before = demo_conn.execute("SELECT count(*) FROM usage_events").fetchone()[0]
    with pytest.raises(EdgenodeError) as e:
        call(demo_conn, demo_cfg, rid)
    assert e.value.code == code
    assert demo_conn.execute("SELECT count(*) FROM usage_events").fetchone()[0] == before


def test_daily_limit_per_terminal(demo_cfg, demo_conn):
    for i in range(demo_cfg["feedback.terminal_daily_limit"]):
        fq.submit_request(demo_conn, demo_cfg, f"需求{i}", terminal="busy")
    with pytest.raises(EdgenodeError) as e:
        fq.submit_request(demo_conn, demo_cfg, "再来一个", terminal="busy")
    assert e.value.code == "E_FEEDBACK_LIMIT" and e.value.status == 429
    fq.submit_request(demo_conn, demo_cfg, "别的设备", terminal="calm")


def test_feedback_form(demo_conn, client):
    rid = _resource(demo_conn)
    page = client.get(f"/feedback?resource={rid}")
    assert page.status_code == 200 and "评价" in page.text
    token = csrf(page.text)
    assert client.post("/feedback", data={"kind": "request", "text": "戏曲"}).status_code == 400  # no CSRF
    r = client.post("/feedback", data={"csrf_token": token, "kind": "request", "text": "黄梅戏"})
    assert r.status_code == 200 and "已收到" in r.text
    r = client.post(f"/feedback?resource={rid}", data={"csrf_token": token, "kind": "feedback", "rating": "5",
                                                        "comment": "好看"})
    assert r.status_code == 200 and "谢谢您的评价" in r.text
    r = client.post("/feedback", data={"csrf_token": token, "kind": "request", "text": "联系13800000820"})
    assert r.status_code == 400 and "个人信息" in ERROR_RE.search(r.text).group(1)
    kinds = [row[0] for row in demo_conn.execute(
        "SELECT kind FROM usage_events WHERE kind IN ('request', 'feedback') ORDER BY seq")]
    assert kinds == ["request", "feedback"]


def test_hub_lists_requests_per_node_and_keyword(tmp_path):
    hub = Hub(tmp_path / "hub").start()
    try:
        texts = {0: ["想看水稻种植", "黄梅戏"], 1: ["水稻病虫害", "儿童故事"]}
        node_ids = []
        for i in (0, 1):
            cfg = enrolled_node(tmp_path, hub, f"n{i}")
            conn = open_main(cfg)
            from edgenode.core.identity import load_or_create
            node_ids.append(load_or_create(cfg).node_id)
            for t in texts[i]:
                fq.submit_request(conn, cfg, t, terminal=f"t{i}")
            from edgenode.node.sync.client import hub_url
            uplink.run(cfg, conn, hub_url(cfg, conn))
            conn.close()
        from edgenode.hub import tally
        hconn = hub.db()
        assert {r["text"] for r in tally.requests(hconn, keyword="水稻")} == {"想看水稻种植", "水稻病虫害"}
        assert [r["text"] for r in tally.requests(hconn, node_id=node_ids[1], keyword="水稻")] == ["水稻病虫害"]
        assert {r["text"] for r in tally.requests(hconn, node_id=node_ids[0])} == set(texts[0])
        assert tally.requests(hconn, keyword="%") == []  # LIKE wildcards are literal
        summary = {s["node_id"]: s["requests"] for s in tally.request_summary(hconn)}
        assert summary == {node_ids[0]: 2, node_ids[1]: 2}
        # A long keyword is cut before it is escaped: cutting the escaped form left a lone
        # backslash at the end, and then the pattern matched nothing at all.
        from edgenode.hub import tally_queries
        long_text = "水" * 99 + "_"
        tally_queries.insert_requests(hconn, [(node_ids[0], 999, "request", "", long_text, None, 1.0, "2026-11-01")])
        assert [r["text"] for r in tally.requests(hconn, keyword=long_text)] == [long_text]
        hconn.close()
        from edgenode.hub.app import create_hub_app
        c = create_hub_app(hub.cfg).test_client()
        with c.session_transaction() as s:
            s["staff"] = "county"
        page = c.get("/tally/requests?q=水稻")
        assert page.status_code == 200 and "水稻病虫害" in page.text and "黄梅戏" not in page.text
        csv_text = c.get(f"/tally/requests?node={node_ids[0]}&format=csv").get_data(as_text=True)
        assert "黄梅戏" in csv_text and "儿童故事" not in csv_text
    finally:
        hub.stop()
