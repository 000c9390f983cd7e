"""Issue 18: staff roles (县级管理员 changes things, 查看 only reads), the audit log of every staff
action, and the admin texts (code states, CSRF refusal, lock-out) in Chinese."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from edgenode.hub import alerts, audit, registry, staff
from edgenode.hub.app import create_hub_app
from edgenode.hub.database import open_hub
from edgenode.hub.web.auth import ANY_ROLE_WRITES, OPEN
from tests.conftest import make_config
from tests.helpers_hub import csrf_from, login, seed_fleet

PASSWORD = "correct horse 1"


@pytest.fixture
def hub(tmp_path):
    cfg = make_config(tmp_path / "hub", web__login_max_failures=3)
    conn = open_hub(cfg)
    fleet = seed_fleet(conn)
    alerts.evaluate(conn, cfg)
    app = create_hub_app(cfg)
    app.config["TESTING"] = True
    yield cfg, conn, app, fleet
    conn.close()


def _state(conn) -> str:
    """Everything a staff write could change, as one string."""
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN "
                                         "('hub_audit', 'hub_log') AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return json.dumps({t: [list(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1")] for t in tables},
                      default=str)


def _writes(app, args: dict):
    """Every state-changing URL of the app's URL map, with real arguments."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint in OPEN or rule.endpoint in ANY_ROLE_WRITES:
            continue
        for method in sorted(rule.methods - {"GET", "HEAD", "OPTIONS"}):
            values = {k: args.get(k, "1") for k in rule.arguments}  # "1" fits an int or a string argument
            yield rule.endpoint, method, rule.build(values, append_unknown=False)[1]


def _form(endpoint: str, fleet) -> dict:
    # What an administrator would submit, so only the role can be what stops it.
    node = fleet["healthy"].node_id
    return {"hub_pages.node_revoke": {"confirm": node[:6]}, "hub_pages.node_edit": {"name": "改名", "township": "新镇"},
            "hub_pages.enrol": {"township": "河口镇"}, "hub_pages.enrol_revoke": {"hint": "ABCD"}}.get(endpoint, {})


def test_a_viewer_can_change_nothing_walking_the_url_map(hub):
    cfg, conn, app, fleet = hub
    staff.set_password(conn, "小李", PASSWORD, role="viewer")
    client = login(app.test_client(), conn, "小李", PASSWORD)
    alert_id = alerts.open_alerts(conn)[0]["id"]
    args = {"node_id": fleet["healthy"].node_id, "alert_id": alert_id, "period": "2026", "fmt": "csv",
            "campaign": "x"}
    before = _state(conn)
    walked = []
    for endpoint, method, url in _writes(app, args):
        token = csrf_from(client.get("/stats/").get_data(as_text=True))
        r = client.open(url, method=method, data={"csrf_token": token, **_form(endpoint, fleet)})
        assert r.status_code == 403, (endpoint, r.status_code)
        assert "只能浏览，不能修改" in r.get_data(as_text=True) and "县级管理员" in r.get_data(as_text=True)
        walked.append(endpoint)
    assert {"hub_pages.enrol", "hub_pages.enrol_revoke", "hub_pages.node_revoke", "hub_pages.node_edit",
            "hub_pages.problem_note", "hub_pages.alerts_evaluate", "hub_pages.node_diagnostics_request",
            "hub_contrib.adopt", "hub_contrib.publish", "hub_rollout.start"} <= set(walked)
    assert _state(conn) == before
    refused = [r for r in audit.recent(conn) if r["outcome"] == "refused"]
    assert sorted(r["action"] for r in refused) == sorted(walked)
    assert all(r["username"] == "小李" and r["role"] == "viewer" for r in refused)
    # Reading is allowed, the audit log is not.
    for url in ("/", f"/nodes/{args['node_id']}", "/enrol", "/stats/", "/stats/report/2026"):
        assert client.get(url).status_code == 200, url
    assert client.get("/audit").status_code == 403
    assert "操作记录" not in client.get("/").get_data(as_text=True)


def test_the_audit_log_records_each_admin_action(hub):
    cfg, conn, app, fleet = hub
    client = login(app.test_client(), conn, "老王", PASSWORD)
    node = fleet["healthy"].node_id

    def post(url, **data):
        token = csrf_from(client.get("/enrol").get_data(as_text=True))
        return client.post(url, data={"csrf_token": token, **data})

    code = re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", post("/enrol", township="河口镇").get_data(
        as_text=True)).group(0)
    post("/enrol/revoke", hint=code[-4:])
    post(f"/nodes/{node}/edit", name="东村新名", township="河口镇")
    post(f"/nodes/{node}/diagnostics/request")
    post("/problems/note", node_id=fleet["offline"].node_id, kind="offline", subject="", action="ack",
         reason="已电话联系管理员")
    post("/alerts/evaluate")
    post(f"/nodes/{node}/revoke", confirm=node[:6])
    assert registry.get_node(conn, node)["revoked_at"] and registry.get_node(conn, node)["name"] == "东村新名"
    rows = [r for r in reversed(audit.recent(conn)) if r["username"] == "老王"]
    assert [r["action"] for r in rows] == [
        "hub_auth.login", "hub_pages.enrol", "hub_pages.enrol_revoke", "hub_pages.node_edit",
        "hub_pages.node_diagnostics_request", "hub_pages.problem_note", "hub_pages.alerts_evaluate",
        "hub_pages.node_revoke"]
    assert all(r["role"] == "admin" and r["outcome"] in ("ok", "200", "302") for r in rows)
    assert rows[3]["target"] == f"node_id={node}" and "name=东村新名" in rows[3]["detail"]
    assert code not in json.dumps(rows, ensure_ascii=False)  # the code itself is a secret
    assert all("csrf" not in r["detail"] for r in rows)
    page = client.get("/audit").get_data(as_text=True)
    for zh in ("登录", "生成注册码", "作废注册码", "修改服务点名称或乡镇", "请求诊断包", "确认或暂缓问题", "注销服务点", "县级管理员"):
        assert zh in page, zh
    assert "服务点：东村新名" in page and "名称：东村新名" in page
    run_cli = CliRunner().invoke(__import__("edgenode.cli", fromlist=["cli"]).cli,
                                 ["--data-dir", str(cfg.data_path), "hub", "rename", node[:8], "--township", "新镇"],
                                 env={"EDGENODE_CONFIG": ""})
    assert run_cli.exit_code == 0, run_cli.output
    page = client.get("/audit").get_data(as_text=True)
    assert "命令行：修改服务点名称或乡镇" in page
    visible = re.sub(r"<[^>]+>", " ", page.split("<main>", 1)[1])
    hint = code[-4:]  # a code's last four characters are how staff tell codes apart
    assert set(re.findall(r"[A-Za-z0-9]+", visible)) - {hint} <= {"UTC"} | set(re.findall(r"\d+", visible))
    post("/logout")
    assert audit.recent(conn, 1)[0]["action"] == "hub_auth.logout"


def test_cli_adds_staff_with_a_role_and_is_audited(hub):
    cfg, conn, app, fleet = hub
    from edgenode.cli import cli

    def run(*args, code=0):
        r = CliRunner().invoke(cli, ["--data-dir", str(cfg.data_path), "hub", *args], env={"EDGENODE_CONFIG": ""})
        assert r.exit_code == code, r.output
        return r.output

    run("staff", "add", "小张", "--role", "viewer", "--password", "secret-pass-9")
    run("staff", "add", "小赵", "--role", "boss", "--password", "secret-pass-9", code=2)
    assert staff.role_of(conn, "小张") == "viewer"
    run("staff", "role", "小张", "admin")
    assert staff.role_of(conn, "小张") == "admin"
    assert "E_STAFF_UNKNOWN" in run("staff", "role", "无此人", "viewer", code=1)
    run("revoke", fleet["offline"].node_id)
    run("stats")  # reads: not recorded
    rows = audit.recent(conn)
    assert [r["action"] for r in rows[:4]] == ["cli:revoke", "cli:staff role", "cli:staff role", "cli:staff add"]
    assert rows[1]["outcome"] == "E_STAFF_UNKNOWN" and rows[0]["outcome"] == "ok"
    assert all("secret-pass-9" not in r["detail"] for r in rows) and "--password ***" in rows[3]["detail"]
    assert json.loads(run("staff", "list", "--json"))[0]["role"] in ("admin", "viewer")


def test_an_old_account_stays_an_administrator(hub):
    cfg, conn, app, fleet = hub
    staff.set_password(conn, "老账户", PASSWORD)
    assert staff.role_of(conn, "老账户") == "admin"
    staff.set_password(conn, "小李", PASSWORD, role="viewer")
    staff.set_password(conn, "小李", PASSWORD + "x")  # a new password keeps the role
    assert staff.role_of(conn, "小李") == "viewer"


# -- admin texts -----------------------------------------------------------------------------------

def test_enrolment_page_says_code_states_in_chinese(hub):
    cfg, conn, app, fleet = hub
    registry.revoke_code(conn, registry.new_code(conn, township="河口镇"))
    registry.new_code(conn, township="山前镇")
    html = login(app.test_client(), conn).get("/enrol").get_data(as_text=True)
    states = re.findall(r'<td class="code-state">([^<]*)</td>', html)
    assert any(s.startswith("已使用") for s in states) and "已作废" in states
    assert any(s.startswith("可以使用") and "前有效" in s for s in states)
    assert not re.search(r">(used|open|revoked|expired)<", html)
    assert "东村服务点" in html  # the node that used a code, by name


def test_csrf_refusal_says_what_happened_and_what_to_do(hub):
    cfg, conn, app, fleet = hub
    client = login(app.test_client(), conn)
    r = client.post("/enrol", data={"township": "x"})
    text = r.get_data(as_text=True)
    assert r.status_code == 400 and "没有执行" in text and "刷新" in text and "请求有误" not in text
    r = app.test_client().post("/login", data={"username": "老王", "password": "x"})
    assert r.status_code == 400 and "刷新" in r.get_data(as_text=True)


def test_lockout_keeps_the_user_name_and_says_when_and_whom_to_ask(hub):
    cfg, conn, app, fleet = hub
    staff.set_password(conn, "老王", PASSWORD)
    client = app.test_client()
    for attempt in range(4):
        token = csrf_from(client.get("/login").get_data(as_text=True))
        r = client.post("/login", data={"username": "老王", "password": "wrong-password", "csrf_token": token})
    text = r.get_data(as_text=True)
    assert 'value="老王"' in text
    until = conn.execute("SELECT locked_until FROM hub_staff WHERE username = '老王'").fetchone()[0]
    assert until > 0
    at = re.search(r"请在 (\d\d:\d\d)（UTC\+8）之后再登录", text)
    assert at, text
    from datetime import datetime, timedelta, timezone
    assert at.group(1) == datetime.fromtimestamp(until + 59, timezone(timedelta(hours=8))).strftime("%H:%M")
    assert "县级管理员" in text and "edgenode hub set-password 老王" in text
    assert [r["action"] for r in audit.recent(conn, 2)] == ["login_locked", "login_failed"]
