"""Issue 18, problems first: every kind of problem from real signed requests, in severity order, with
acknowledge and snooze through the CSRF-protected form and the CLI."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from edgenode.hub import alerts, problems, problems_queries, registry
from edgenode.hub.app import create_hub_app
from edgenode.hub.database import open_hub
from tests.conftest import make_config
from tests.helpers_hub import FlaskNode, csrf_from, login, make_events, seal


@pytest.fixture
def hub(tmp_path):
    cfg = make_config(tmp_path / "hub")
    conn = open_hub(cfg)
    app = create_hub_app(cfg)
    app.config["TESTING"] = True
    client = login(app.test_client(), conn)
    yield cfg, conn, client
    conn.close()


def _node(client, conn, name, township="河口镇"):
    n = FlaskNode(client)
    assert n.enroll(registry.new_code(conn, township=township), name=name).status_code == 200
    return n


def _age_latest(conn, node_id, seconds):
    # The heartbeat arrived `seconds` ago: what a silent node looks like a day or five later.
    conn.execute("UPDATE hub_latest SET received_at = received_at - ?1, body = json_set(body, '$.clock.wall', "
                 "json_extract(body, '$.clock.wall') - ?1) WHERE node_id = ?2", (seconds, node_id))
    conn.commit()


def test_each_kind_from_real_requests_in_severity_order(hub):
    cfg, conn, client = hub
    late, offline, backlog, refused, healthy = (_node(client, conn, n) for n in (
        "迟报村服务点", "离线村服务点", "积压村服务点", "拒收村服务点", "健康村服务点"))
    for n in (late, offline, healthy, refused):
        assert n.heartbeat().status_code == 200
    assert backlog.heartbeat(outbox={"batches": 40, "bytes": 1}).status_code == 200
    _age_latest(conn, late.node_id, 30 * 3600)
    _age_latest(conn, offline.node_id, 4 * 86400)
    data, _ = seal(refused.ident, 1, make_events(5))
    assert refused.upload(1, data, seal(healthy.ident, 1, make_events(5))[1]).status_code == 401  # wrong key

    p = problems.problem_list(conn, cfg)
    kinds = [(e["name"], e["kind"]) for e in p["open"]]
    assert kinds == [("离线村服务点", "offline"), ("迟报村服务点", "late"), ("积压村服务点", "backlog"),
                     ("拒收村服务点", "imports")]
    assert healthy.node_id not in p["nodes"]
    e = {x["kind"]: x for x in p["open"]}
    assert "4.0 天" in e["offline"]["detail"] and "30 小时" in e["late"]["detail"] and "40 批" in e["backlog"]["detail"]
    assert "签名不符" in e["imports"]["detail"] and "电话" in e["offline"]["action"]
    assert abs(e["offline"]["since"] - (time.time() - 4 * 86400)) < 60
    # a stored batch after the refusal ends the refused-upload problem
    assert refused.upload(1, *seal(refused.ident, 1, make_events(5))).status_code == 200
    assert refused.node_id not in problems.problem_list(conn, cfg)["nodes"]
    # a node enrolled long ago that never sent a heartbeat
    quiet = _node(client, conn, "沉默村服务点")
    later = problems.problem_list(conn, cfg, now=time.time() + 2 * 86400)
    assert ("沉默村服务点", "never") in [(x["name"], x["kind"]) for x in later["open"]] and quiet.node_id in later["nodes"]


def test_acknowledge_and_snooze_need_csrf_and_a_reason_and_end_with_the_problem(hub):
    cfg, conn, client = hub
    n = _node(client, conn, "满盘村服务点")
    n.heartbeat(disk={"total": 100, "used": 97, "free": 3, "percent": 97.0})
    form = {"node_id": n.node_id, "kind": "disk", "subject": "", "reason": "已电话通知管理员清理", "action": "ack"}
    assert client.post("/problems/note", data=form).status_code == 400  # no CSRF token
    assert problems_queries.notes(conn) == {}
    token = csrf_from(client.get("/").get_data(as_text=True))
    for bad in ({"reason": ""}, {"reason": "长" * 201}, {"action": "delete"}, {"kind": "clock"},
                {"action": "snooze", "hours": "0"}, {"action": "snooze", "hours": "9999"},
                {"action": "snooze", "hours": "abc"}):
        r = client.post("/problems/note", data={**form, **bad, "csrf_token": token}, follow_redirects=True)
        assert r.status_code == 200 and problems_queries.notes(conn) == {}, bad
        assert "flash" in r.get_data(as_text=True)
    r = client.post("/problems/note", data={**form, "csrf_token": token}, follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "已确认：满盘村服务点" in html and "已电话通知管理员清理" in html
    p = problems.problem_list(conn, cfg)
    assert p["open"] == [] and [e["kind"] for e in p["handled"]] == ["disk"] and n.node_id in p["nodes"]
    # snooze for 4 hours: hidden until then, back afterwards
    client.post("/problems/note", data={**form, "action": "snooze", "hours": "4", "csrf_token": token})
    assert problems.problem_list(conn, cfg)["open"] == []
    assert [e["kind"] for e in problems.problem_list(conn, cfg, now=time.time() + 5 * 3600)["open"]] == ["disk"]
    # the problem ends: the hourly check forgets the note, so its return shows as new
    n.heartbeat()
    alerts.evaluate(conn, cfg, notify=False)
    assert problems_queries.notes(conn) == {}
    # reopen drops a note
    n.heartbeat(disk={"total": 100, "used": 97, "free": 3, "percent": 97.0})
    client.post("/problems/note", data={**form, "csrf_token": token})
    client.post("/problems/reopen", data={**form, "csrf_token": token})
    assert [e["kind"] for e in problems.problem_list(conn, cfg)["open"]] == ["disk"]


def test_cli_lists_acknowledges_and_snoozes(hub):
    from edgenode.cli import cli
    cfg, conn, client = hub
    n = _node(client, conn, "时钟村服务点")
    snap_clock = {"ntp_synced": False, "wall": time.time() - 3 * 3600, "monotonic": 1.0, "boot_count": 1}
    n.heartbeat(clock=snap_clock)
    runner = CliRunner()
    env = {"EDGENODE_DATA_DIR": str(cfg.data_path)}
    r = runner.invoke(cli, ["hub", "problems", "list", "--json"], env=env)
    assert r.exit_code == 0, r.output
    listed = json.loads(r.stdout if hasattr(r, "stdout") else r.output.split("\n", 0)[0])
    assert [(e["kind"], e["name"]) for e in listed] == [("clock", "时钟村服务点")] and "慢了 3.0 小时" in listed[0]["detail"]
    r = runner.invoke(cli, ["hub", "problems", "ack", n.node_id[:8], "clock", "--reason", ""], env=env)
    assert r.exit_code == 1 and "E_PROBLEM_REASON" in r.output
    r = runner.invoke(cli, ["hub", "problems", "snooze", "时钟村服务点", "clock", "--hours", "8",
                            "--reason", "等管理员周一开机", "--by", "张三"], env=env)
    assert r.exit_code == 0, r.output
    note = problems_queries.notes(conn)[(n.node_id, "clock", "")]
    assert note["action"] == "snooze" and note["by_staff"] == "张三" and 7.9 * 3600 < note["until"] - time.time() <= 8 * 3600
    r = runner.invoke(cli, ["hub", "problems", "ack", n.node_id[:8], "disk", "--reason", "x"], env=env)
    assert r.exit_code == 1 and "E_PROBLEM_GONE" in r.output


def test_a_batch_conflict_is_listed_until_confirmed(hub):
    cfg, conn, client = hub
    n = _node(client, conn, "冲突村服务点")
    n.heartbeat()
    assert n.upload(1, *seal(n.ident, 1, make_events(5))).status_code == 200
    assert n.upload(1, *seal(n.ident, 1, make_events(6, seed=9))).status_code == 409  # same number, other content
    p = problems.problem_list(conn, cfg)
    assert [(e["name"], e["kind"]) for e in p["open"]] == [("冲突村服务点", "conflict")]
    subject = p["open"][0]["subject"]
    alerts.evaluate(conn, cfg, notify=False)  # the hourly check leaves conflicts alone
    assert [e["kind"] for e in problems.problem_list(conn, cfg)["open"]] == ["conflict"]
    problems.note(conn, cfg, n.node_id, "conflict", subject, action="ack", reason="已联系技术支持", by="张三")
    assert problems.problem_list(conn, cfg)["nodes"] == set() and problems_queries.notes(conn) == {}


def test_the_dashboard_reads_a_fleet_snapshot_no_older_than_the_setting(tmp_path):
    cfg = make_config(tmp_path / "hub", hub__fleet_cache_seconds=0.5)
    conn = open_hub(cfg)
    app = create_hub_app(cfg)
    app.config["TESTING"] = True
    client = login(app.test_client(), conn)
    n = _node(client, conn, "缓存村服务点")
    n.heartbeat()
    assert "目前没有待处理的问题" in client.get("/").get_data(as_text=True)
    n.heartbeat(disk={"total": 100, "used": 97, "free": 3, "percent": 97.0})
    assert "目前没有待处理的问题" in client.get("/").get_data(as_text=True)  # the snapshot of a moment ago
    assert "磁盘将满" in client.get(f"/nodes/{n.node_id}").get_data(as_text=True)  # the node page reads the db
    deadline = time.time() + 10
    while "磁盘将满" not in client.get("/").get_data(as_text=True):  # rebuilt beside the pages after 0.5 s
        assert time.time() < deadline
        time.sleep(0.1)
    conn.close()
