"""Admin login, sessions and CSRF through the Flask test client.

``test_every_admin_rule_refuses_anonymous`` walks the app's URL map, so admin
pages added later by other areas are covered without editing this file.
"""

import re

import pytest
from werkzeug.routing import Rule

from tests.helpers_portal import PASSWORD, csrf_token, login, set_admin


@pytest.fixture
def admin_client(client, demo_conn):
    set_admin(demo_conn)
    return client


def _sample_path(rule: Rule) -> str:
    """A concrete URL for a rule, filling converters with plausible values."""
    values = {}
    for arg in rule.arguments:
        conv = rule._converters[arg].__class__.__name__
        values[arg] = 1 if conv in ("IntegerConverter", "FloatConverter") else "x"
    try:
        return rule.build(values, append_unknown=False)[1]
    except Exception:  # pragma: no cover - a converter we do not know how to fill
        return re.sub(r"<[^>]+>", "x", rule.rule)


def admin_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/admin", "/api/v1/admin")) and rule.endpoint != "auth.login":
            yield rule


def test_every_admin_rule_refuses_anonymous(app):
    client = app.test_client()
    rules = list(admin_rules(app))
    assert any(r.endpoint == "admin.dashboard" for r in rules)
    app.config["WTF_CSRF_ENABLED"] = False  # so POSTs reach the auth check, not the CSRF check
    checked = 0
    for rule in rules:
        if rule.endpoint == "auth.logout":
            continue  # logging out needs no login
        path = _sample_path(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            r = client.open(path, method=method)
            if path.startswith("/api/"):
                assert r.status_code in (401, 403), (method, path, r.status_code)
            else:
                assert r.status_code in (302, 303, 401, 403), (method, path, r.status_code)
                if r.status_code in (302, 303):
                    assert r.headers["Location"].startswith("/admin/login"), (method, path)
            assert b"csrf_token" not in r.data or r.status_code in (302, 303)
            checked += 1
    assert checked >= 1


def test_every_form_endpoint_refuses_a_post_without_csrf(app, admin_client):
    """Every rule accepting POST/PUT/PATCH/DELETE, anywhere in the app, needs a token.

    Only views explicitly exempted (the usage beacon) may take a token-less
    POST; the exemption list is the app's own, not one kept here.
    """
    assert login(admin_client).status_code == 302
    from edgenode.node.web.auth import csrf
    exempt = {f"{v}" for v in csrf._exempt_views}
    checked = 0
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if f"{view.__module__}.{view.__name__}" in exempt:
            continue
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"}):
            r = admin_client.open(_sample_path(rule), method=method, data={"x": "1"})
            assert r.status_code == 400, (method, rule.rule, r.status_code)
            assert "页面已过期" in r.get_data(as_text=True) or b"E_CSRF" in r.data
            checked += 1
    assert checked >= 2  # at least login and logout


def test_login_page_is_chinese_and_has_token(client):
    html = client.get("/admin/login").get_data(as_text=True)
    assert "管理员登录" in html and 'name="csrf_token"' in html
    assert "edgenode admin set-password" in html  # no account yet


def test_login_wrong_then_right(admin_client):
    r = login(admin_client, "wrong password")
    assert r.status_code == 401 and "用户名或密码不正确" in r.get_data(as_text=True)
    assert admin_client.get("/admin/").status_code == 302
    r = login(admin_client)
    assert r.status_code == 302 and r.headers["Location"] == "/admin/"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    html = admin_client.get("/admin/").get_data(as_text=True)
    assert "管理首页" in html and "社区服务" in html


def test_login_lockout(app, admin_client, demo_conn):
    app.extensions["edgenode"].cfg = app.extensions["edgenode"].cfg.replace(web__login_max_failures=2)
    assert login(admin_client, "bad one").status_code == 401
    r = login(admin_client, "bad two")
    assert r.status_code == 429 and "登录失败次数太多" in r.get_data(as_text=True)
    r = login(admin_client)  # right password, still locked
    assert r.status_code == 429
    assert admin_client.get("/admin/").status_code == 302


def test_logout_needs_post_with_token(admin_client):
    login(admin_client)
    assert admin_client.post("/admin/logout").status_code == 400
    assert admin_client.get("/admin/").status_code == 200
    token = csrf_token(admin_client, "/admin/")
    assert admin_client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert admin_client.get("/admin/").status_code == 302


def test_password_change_ends_sessions(admin_client, demo_conn):
    login(admin_client)
    assert admin_client.get("/admin/").status_code == 200
    set_admin(demo_conn, "another password")
    assert admin_client.get("/admin/").status_code == 302


@pytest.mark.parametrize("target, expected", [
    ("/admin/", "/admin/"), ("//evil.example/x", "/admin/"), ("https://evil.example/", "/admin/"),
    ("/\\evil.example", "/admin/"), ("/search?q=1", "/search?q=1"),
])
def test_next_is_local_only(admin_client, target, expected):
    r = login(admin_client, next=target)
    assert r.status_code == 302 and r.headers["Location"] == expected


def test_anonymous_redirect_carries_next(client):
    r = client.get("/admin/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/admin/login?next=/admin/")


def test_no_password_in_logs(admin_client, caplog):
    caplog.set_level("DEBUG")
    login(admin_client, "Zq9-not-it")
    login(admin_client)
    assert "signed in" in caplog.text and "E_LOGIN_FAILED" in caplog.text
    assert PASSWORD not in caplog.text and "Zq9-not-it" not in caplog.text


def test_change_password_in_the_browser(app, admin_client, demo_conn):
    other = app.test_client()
    login(admin_client)
    login(other)
    token = csrf_token(admin_client, "/admin/password")
    form = {"csrf_token": token, "current": "wrong current", "new": "brand new pass", "again": "brand new pass"}
    r = admin_client.post("/admin/password", data=form)
    assert r.status_code == 401 and "用户名或密码不正确" in r.get_data(as_text=True)
    r = admin_client.post("/admin/password", data={**form, "current": PASSWORD, "again": "different"})
    assert r.status_code == 400 and "两次输入的新密码不一致" in r.get_data(as_text=True)
    r = admin_client.post("/admin/password", data={**form, "current": PASSWORD, "new": "short", "again": "short"})
    assert r.status_code == 400 and "至少" in r.get_data(as_text=True)
    r = admin_client.post("/admin/password", data={**form, "current": PASSWORD})
    assert r.status_code == 302
    assert "密码已修改" in admin_client.get(r.headers["Location"]).get_data(as_text=True)  # this session goes on
    assert other.get("/admin/").status_code == 302  # the other one has ended
    assert login(other, "brand new pass").status_code == 302
