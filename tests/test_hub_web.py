"""Issue 7 through the Flask test client: permissions, dashboard, node page, statistics, CSV, alerts, metrics."""

from __future__ import annotations

import csv
import io
import json

import pytest

from edgenode.hub import alerts, registry, stats
from edgenode.hub.app import create_hub_app
from edgenode.hub.database import open_hub
from edgenode.hub.web.api import NODE_FACING
from tests.conftest import make_config
from tests.helpers_hub import FlaskNode, csrf_from, login, make_events, seal, seed_fleet


@pytest.fixture
def hub_cfg(tmp_path):
    return make_config(tmp_path / "hub", hub__metrics_token="scrape-token-123")


@pytest.fixture
def hub_db(hub_cfg):
    conn = open_hub(hub_cfg)
    yield conn
    conn.close()


@pytest.fixture
def hub_app(hub_cfg, hub_db):
    app = create_hub_app(hub_cfg)
    app.config["TESTING"] = True
    return app


ARGS = {"node_id": "0" * 32, "alert_id": 1, "month": "2026-11"}


def _urls(app):
    for rule in app.url_map.iter_rules():
        url = rule.build({k: ARGS.get(k, "x") for k in rule.arguments}, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, url


def test_every_url_but_node_ingest_refuses_anonymous_users(hub_app):
    client = hub_app.test_client()
    seen = 0
    for endpoint, method, url in _urls(hub_app):
        r = client.open(url, method=method)
        if endpoint in NODE_FACING:
            assert r.status_code in (400, 401, 403), (endpoint, r.status_code)  # unsigned / no code
            continue
        if endpoint == "hub_auth.login":
            continue  # the one page an anonymous user must reach
        seen += 1
        if method == "GET" and not url.startswith("/api/") and url != "/metrics":
            assert r.status_code == 302 and "/login" in r.headers["Location"], (endpoint, r.status_code)
        else:
            assert r.status_code == 401, (endpoint, method, r.status_code)
    assert seen >= 12


def test_forms_need_csrf_even_when_logged_in(hub_app, hub_db):
    client = login(hub_app.test_client(), hub_db)
    r = client.post("/enrol", data={"township": "x"})
    assert r.status_code == 400
    assert registry.list_codes(hub_db) == []
    token = csrf_from(client.get("/enrol").get_data(as_text=True))
    r = client.post("/enrol", data={"township": "河口镇", "csrf_token": token})
    assert r.status_code == 200 and "一次性" in r.get_data(as_text=True)
    assert [c["township"] for c in registry.list_codes(hub_db)] == ["河口镇"]


def test_login_cookie_flags_wrong_password_and_lockout(hub_app, hub_db, hub_cfg):
    client = hub_app.test_client()
    login(client, hub_db)
    cookie = client.get_cookie("edgenode_hub")
    assert cookie.http_only and cookie.same_site == "Strict"
    other = hub_app.test_client()
    for _ in range(hub_cfg.web.login_max_failures):
        token = csrf_from(other.get("/login").get_data(as_text=True))
        r = other.post("/login", data={"username": "county", "password": "wrong", "csrf_token": token})
        assert r.status_code == 400 and "用户名或密码错误" in r.get_data(as_text=True)
    token = csrf_from(other.get("/login").get_data(as_text=True))
    r = other.post("/login", data={"username": "county", "password": "correct horse 1", "csrf_token": token})
    assert r.status_code == 400 and "登录失败次数太多" in r.get_data(as_text=True)
    assert "E_LOGIN" in [x["code"] for x in registry.recent_log(hub_db)]
    assert "correct horse" not in json.dumps(registry.recent_log(hub_db), ensure_ascii=False)


def test_login_redirect_stays_on_site(hub_app, hub_db):
    from edgenode.hub import staff
    staff.set_password(hub_db, "county", "correct horse 1")
    client = hub_app.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    r = client.post("/login?next=//evil.example/x", data={"username": "county", "password": "correct horse 1",
                                                          "csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"] == "/"


def test_dashboard_lists_problems_first_and_the_fleet_table_filters_the_same(hub_app, hub_db):
    seeded = seed_fleet(hub_db)
    client = login(hub_app.test_client(), hub_db)
    html = client.get("/").get_data(as_text=True)
    assert 'id="problem-count"' in html and "<b>3</b>" in html
    listed = html.split('id="problem-list"')[1].split("</ol>")[0]
    for role, kind in (("offline", "offline"), ("disk", "disk"), ("behind", "behind")):
        assert f'data-node="{seeded[role].node_id}" data-kind="{kind}"' in listed, role
    assert seeded["healthy"].node_id not in listed
    # names and townships, not ids; offline first (most severe), disk before content behind
    assert "西村服务点" in listed and "河口镇" in listed and seeded["offline"].node_id[:8] not in listed.replace(
        seeded["offline"].node_id, "")
    assert listed.index("西村服务点") < listed.index("南村服务点") < listed.index("北村服务点")
    assert "电话联系管理员" in listed and "北京时间" in html
    fleet = client.get("/fleet").get_data(as_text=True)
    for role, rule in (("offline", "offline"), ("disk", "disk"), ("behind", "behind")):
        row = fleet.split(f'data-node="{seeded[role].node_id}"')[1].split("</tr>")[0]
        assert f"problem-{rule}" in row, role
    healthy = fleet.split(f'data-node="{seeded["healthy"].node_id}"')[1].split("</tr>")[0]
    assert "problem-" not in healthy and "在线" in healthy
    assert "3 / 4" in html  # channel county: three of four nodes at the latest sequence
    only = client.get("/fleet?problems=1&sort=disk_percent&dir=desc").get_data(as_text=True)
    assert seeded["healthy"].node_id not in only and only.index(seeded["disk"].node_id) < only.index(
        seeded["behind"].node_id)
    assert seeded["disk"].node_id not in client.get("/fleet?q=河口镇").get_data(as_text=True)
    # grouped by township
    assert fleet.index("山前镇") < fleet.index(seeded["disk"].node_id) and fleet.index("河口镇") < fleet.index(
        seeded["offline"].node_id)


def test_alert_rules_metrics_and_webhook(hub_app, hub_db, hub_cfg):
    import http.server
    import threading
    seen = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        seeded = seed_fleet(hub_db)
        cfg = hub_cfg.replace(hub__webhook_url=f"http://127.0.0.1:{srv.server_port}/hook")
        r = alerts.evaluate(hub_db, cfg)
        assert sorted(a["rule"] for a in r["opened"]) == ["behind", "disk", "offline"]
        assert r["webhook"] == "sent 3" and len(seen[0]["alerts"]) == 3
        assert alerts.evaluate(hub_db, cfg)["opened"] == [] and len(seen) == 1  # nothing new, nothing sent
    finally:
        srv.shutdown()
    # The low-disk node cleans up: its alert clears.
    from edgenode.hub import heartbeat
    from tests.helpers_hub import snapshot
    node = registry.get_node(hub_db, seeded["disk"].node_id)
    heartbeat.record(hub_db, node, json.dumps(snapshot(seeded["disk"], catalog={"channels": {"county": 12}})).encode(),
                     signed_ts=None)
    r = alerts.evaluate(hub_db, hub_cfg)
    assert [a["rule"] for a in r["cleared"]] == ["disk"]
    client = hub_app.test_client()
    assert client.get("/metrics").status_code == 401
    text = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"}).get_data(as_text=True)
    assert 'edgenode_hub_nodes{status="offline"} 1' in text
    assert 'edgenode_hub_problems{rule="behind"} 1' in text and 'edgenode_hub_alerts_open{rule="disk"} 0' in text
    assert 'edgenode_hub_channel_nodes_at_latest{channel="county"} 3' in text
    import shutil
    import subprocess
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr


def test_clock_and_integrity_rules(hub_db, hub_cfg):
    from edgenode.hub import fleet, heartbeat
    from tests.helpers_hub import new_identity, snapshot
    ident = new_identity()
    registry.enroll(hub_db, code=registry.new_code(hub_db), node_id=ident.node_id, public_key=ident.public_b64())
    snap = snapshot(ident, integrity={"ok": False})
    snap["clock"]["wall"] -= 3 * 3600
    heartbeat.record(hub_db, registry.get_node(hub_db, ident.node_id), json.dumps(snap).encode(), signed_ts=None)
    rules = {p["rule"] for p in fleet.fleet(hub_db, hub_cfg)[0]["problems"]}
    assert rules == {"clock", "integrity"}
    # The compact heartbeat of edgenode.node.health reports a failed verify as a warning code.
    for warnings, failed in ((["W_STORE_BAD"], True), (["W_DB_CHECK", "W_DISK_FULL"], True),
                             (["W_SYNC_STALE"], False), ("W_STORE_BAD", False)):
        assert fleet.integrity_failed({"warnings": warnings}) is failed


def test_node_page_charts_and_management(hub_app, hub_db):
    client = login(hub_app.test_client(), hub_db)
    n = FlaskNode(client)
    n.enroll(registry.new_code(hub_db))
    for pct in (50.0, 60.0, 70.0):
        n.heartbeat(disk={"total": 1, "used": 1, "free": 0, "percent": pct})
    n.upload(1, *seal(n.ident, 1, make_events(30)))
    html = client.get(f"/nodes/{n.node_id}").get_data(as_text=True)
    assert html.count("<svg") == 3 and "磁盘使用率" in html and "近30天每日服务人次" in html
    # axes with units and dated ticks in the statistics time zone; no script; raw JSON only behind <details>
    assert "已用（%）" in html and "日期（北京时间）" in html and "间隔（小时）" in html and "<script" not in html
    assert html.index("<details><summary>原始心跳数据") < html.index('id="raw-heartbeat"')
    for label in ("在线状态", "磁盘", "内存", "版本", "内容是否最新", "最后上传", "时钟"):
        assert f"<th>{label}</th>" in html, label
    token = csrf_from(html)
    client.post(f"/nodes/{n.node_id}/edit", data={"name": "<script>x</script>村", "township": "新镇",
                                                  "csrf_token": token})
    assert registry.get_node(hub_db, n.node_id)["township"] == "新镇"
    html = client.get(f"/nodes/{n.node_id}").get_data(as_text=True)
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
    client.post(f"/nodes/{n.node_id}/revoke", data={"confirm": "nope", "csrf_token": token})
    assert registry.get_node(hub_db, n.node_id)["revoked_at"] is None
    client.post(f"/nodes/{n.node_id}/revoke", data={"confirm": n.node_id[:6], "csrf_token": token})
    assert registry.get_node(hub_db, n.node_id)["revoked_at"] is not None
    assert n.heartbeat().status_code == 403
    assert client.get("/nodes/" + "f" * 32).status_code == 404


def _upload_fleet(client, hub_db, nodes=3, batches=2):
    out = []
    for i in range(nodes):
        n = FlaskNode(client)
        n.enroll(registry.new_code(hub_db, township=["河口镇", "山前镇"][i % 2]), name=f"村{i}")
        for b in range(batches):
            n.upload(b + 1, *seal(n.ident, b + 1, make_events(60, first_seq=1 + 60 * b, seed=i * 10 + b,
                                                                  start=1761955200.0 + b * 86400 * 20)))
        out.append(n)
    return out


def test_csv_export_matches_the_database(hub_app, hub_db):
    client = login(hub_app.test_client(), hub_db)
    _upload_fleet(client, hub_db)
    for group in ("node", "township", "column", "resource", "month"):
        r = client.get(f"/stats/export.csv?group={group}")
        assert r.status_code == 200 and r.mimetype == "text/csv"
        rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff").split("\r\n", 1)[1])))
        # Independent SQL over the raw tables, not through stats.py.
        truth = hub_db.execute("SELECT sum(n) FILTER (WHERE kind='view'), sum(n) FILTER (WHERE kind='play_start'), "
                               "sum(seconds) FROM hub_daily").fetchone()
        assert sum(int(x["visits"]) for x in rows) == truth[0]
        assert sum(int(x["plays"]) for x in rows) == truth[1]
        assert abs(sum(float(x["watch_hours"]) for x in rows) - truth[2] / 3600) < 0.01 * len(rows) + 0.01
    rows = list(csv.DictReader(io.StringIO(client.get("/stats/export.csv?group=node").get_data(
        as_text=True).lstrip("\ufeff").split("\r\n", 1)[1])))
    for x in rows:
        terms = hub_db.execute("SELECT count(DISTINCT terminal) FROM hub_terminals WHERE node_id = ?",
                               (x["node_id"],)).fetchone()[0]
        assert int(x["unique_terminals"]) == terms
    # Within one month (the count(*) path) and per column, against the raw terminal table too.
    for month in stats.months(hub_db):
        for group, key, col in (("node", "node_id", "node_id"), ("column", "column_key", "column_key"),
                                ("township", "township", "township")):
            got = {r[key]: r["unique_terminals"] for r in stats.table(hub_db, group, {"month": month})}
            truth = dict(hub_db.execute(
                f"SELECT {'n.' if col == 'township' else 't.'}{col}, count(DISTINCT t.node_id || t.terminal) "
                "FROM hub_terminals t JOIN hub_nodes n ON n.node_id = t.node_id WHERE t.month = ? GROUP BY 1",
                (month,)))
            assert got == truth, (month, group)


def test_stats_pages_and_monthly_report(hub_app, hub_db):
    client = login(hub_app.test_client(), hub_db)
    _upload_fleet(client, hub_db)
    month = stats.months(hub_db)[-1]
    html = client.get(f"/stats/?group=township&month={month}").get_data(as_text=True)
    assert "河口镇" in html and "山前镇" in html and "<svg" in html
    total = stats.totals(hub_db, {"month": month})["visits"]
    assert f'id="total-visits">{total}<' in html
    rep = client.get(f"/stats/report/{month}").get_data(as_text=True)
    assert "服务月报" in rep and "按乡镇" in rep and "@media print" in rep
    assert client.get("/stats/report/not-a-month").status_code == 404
    assert client.get("/stats/?group=bogus").status_code == 400


def test_cli_stats_csv_and_nodes(hub_cfg, hub_db, hub_app):
    from click.testing import CliRunner
    from edgenode.cli import cli
    _upload_fleet(hub_app.test_client(), hub_db, nodes=2, batches=1)

    def run(*args):
        r = CliRunner().invoke(cli, ["--data-dir", str(hub_cfg.data_path), "hub", *args], env={"EDGENODE_CONFIG": ""})
        assert r.exit_code == 0, r.output
        return r.output

    out = run("stats", "--group", "township", "--csv")
    rows = list(csv.DictReader(io.StringIO("\n".join(out.splitlines()[1:]))))
    assert sum(int(r["visits"]) for r in rows) == stats.totals(hub_db)["visits"]
    nodes = json.loads(run("nodes", "--json"))
    assert len(nodes) == 2
    run("rename", nodes[0]["node_id"][:8], "--township", "新镇")
    assert registry.get_node(hub_db, nodes[0]["node_id"])["township"] == "新镇"
    code = run("enroll-code", "--township", "河口镇").splitlines()[0].strip()
    assert len(code) == 14 and code.count("-") == 2
    assert "open" in run("codes")
    run("revoke", nodes[1]["node_id"])
    assert registry.get_node(hub_db, nodes[1]["node_id"])["revoked_at"]
    r = CliRunner().invoke(cli, ["--data-dir", str(hub_cfg.data_path), "hub", "set-password", "x", "--password",
                                 "short"], env={"EDGENODE_CONFIG": ""})
    assert r.exit_code == 1 and "E_WEAK_PASSWORD" in r.output


def _diag_bundle() -> bytes:
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in (("manifest.json", b'{"parts": []}'), ("snapshot.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
    return buf.getvalue()


def test_diagnostics_upload_is_signed_and_shown_to_staff_only(hub_app, hub_db):
    client = hub_app.test_client()
    n = FlaskNode(client)
    n.enroll(registry.new_code(hub_db))
    bundle = _diag_bundle()
    assert client.post("/api/v1/diagnostics", data=bundle).status_code == 401  # unsigned
    r = n.signed("/api/v1/diagnostics", b"not a tarball")
    assert r.status_code == 400 and r.json["error"]["code"] == "E_DIAGNOSTICS"
    r = n.signed("/api/v1/diagnostics", bundle)
    assert r.status_code == 200 and r.json["bytes"] == len(bundle)
    url = f"/nodes/{n.node_id}/diagnostics.tar.gz"
    assert hub_app.test_client().get(url).status_code == 302  # anonymous → login
    login(client, hub_db)
    assert "下载最新诊断包" in client.get(f"/nodes/{n.node_id}").get_data(as_text=True)
    r = client.get(url)
    assert r.status_code == 200 and r.data == bundle
    assert client.get("/nodes/../../etc/diagnostics.tar.gz").status_code == 404


def test_a_real_node_heartbeat_fills_the_dashboard_row(cfg, conn, hub_db, hub_cfg):
    """The body edgenode.node.sync.heartbeat builds on a real node, read by the hub's fleet view."""
    from edgenode.hub import fleet, heartbeat
    from edgenode.core.identity import load_or_create
    from edgenode.node.sync.heartbeat import build
    ident = load_or_create(cfg)
    registry.enroll(hub_db, code=registry.new_code(hub_db), node_id=ident.node_id, public_key=ident.public_b64())
    body = json.dumps(build(cfg, conn)).encode()
    heartbeat.record(hub_db, registry.get_node(hub_db, ident.node_id), body, signed_ts=None)
    row = fleet.fleet(hub_db, hub_cfg)[0]
    assert row["status"] == "online"
    for key in ("disk_percent", "cpu_percent", "mem_percent", "uptime", "clock_skew", "outbox_batches"):
        assert row[key] is not None, key
    assert abs(row["clock_skew"]) < 60 and row["version"]


def test_staff_ask_a_node_for_diagnostics_on_its_page(hub_app, hub_db):
    client = login(hub_app.test_client(), hub_db)
    n = FlaskNode(client)
    n.enroll(registry.new_code(hub_db))
    assert n.heartbeat().json["diagnostics_requested"] is False
    html = client.get(f"/nodes/{n.node_id}").get_data(as_text=True)
    assert "请求服务点上传诊断包" in html
    url = f"/nodes/{n.node_id}/diagnostics/request"
    assert client.post(url).status_code == 400  # no CSRF token
    assert hub_app.test_client().post(url).status_code in (302, 401, 403)  # not signed in
    r = client.post(url, data={"csrf_token": csrf_from(html)}, follow_redirects=True)
    assert "已请求诊断包" in r.get_data(as_text=True)
    assert n.heartbeat().json["diagnostics_requested"] is True
    assert n.signed("/api/v1/diagnostics", _diag_bundle()).status_code == 200
    assert n.heartbeat().json["diagnostics_requested"] is False  # answered
    assert client.post("/nodes/" + "f" * 32 + "/diagnostics/request",
                       data={"csrf_token": csrf_from(html)}).status_code == 404
