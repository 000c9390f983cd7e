"""The activities pages over HTTP: anonymous users refused on every admin action, CSRF enforced
on every form, booking errors shown in Chinese, and the code shown only to the booking browser."""

from __future__ import annotations

import pytest

from edgenode.node.activities import queries as aq
from tests.helpers_activities import CODE_RE, ERROR_RE, PHONES, activity, campaign, csrf
from tests.helpers_portal import login, set_admin


@pytest.fixture
def setup(demo_cfg, demo_conn):
    set_admin(demo_conn)
    a = activity(demo_conn, capacity=5, audit=True)
    b = aq.book(demo_conn, demo_cfg, a["id"], {"name": "陈忠", "phone": PHONES[1], "seats": 1}, terminal="t")
    campaign(demo_conn, demo_cfg)
    return a, b


def _admin_requests(a, b):
    aid, oid = a["id"], b["order_id"]
    return [("GET", "/admin/activities/"), ("GET", "/admin/activities/new"), ("POST", "/admin/activities/new"),
            ("GET", f"/admin/activities/{aid}"), ("POST", f"/admin/activities/{aid}/cancel"),
            ("POST", f"/admin/activities/booking/{oid}/approve"), ("POST", f"/admin/activities/booking/{oid}/cancel"),
            ("GET", f"/admin/activities/booking/{oid}"), ("GET", "/admin/activities/checkin"),
            ("POST", "/admin/activities/checkin"), ("GET", "/admin/activities/export.csv"),
            ("GET", f"/admin/activities/{aid}/export.csv"), ("GET", "/admin/activities/campaigns/qunwen-2026"),
            ("GET", "/admin/activities/feedback"), ("POST", "/admin/activities/privacy/purge")]


def test_every_admin_action_refuses_anonymous(app, client, demo_conn, setup):
    a, b = setup
    app.config["WTF_CSRF_ENABLED"] = False  # so POSTs reach the login check, not the CSRF check
    listed = _admin_requests(a, b)
    # The list covers every endpoint and method of the admin blueprint, so a new page cannot slip by.
    adapter = app.url_map.bind("localhost")
    covered = {(adapter.match(p, method=m)[0], m) for m, p in listed}
    wanted = {(r.endpoint, m) for r in app.url_map.iter_rules() if r.endpoint.startswith("admin_activities.")
              for m in r.methods - {"HEAD", "OPTIONS"}}
    assert wanted == covered
    for method, path in listed:
        r = client.open(path, method=method, data={"code": b["code"], "title": "x"})
        assert r.status_code == 302 and r.headers["Location"].startswith("/admin/login"), (method, path)
        assert PHONES[1] not in r.get_data(as_text=True)
    # Nothing happened.
    assert aq.get_booking(demo_conn, b["order_id"])["status"] == "pending"
    assert aq.get_activity(demo_conn, a["id"])["cancelled_at"] is None
    assert demo_conn.execute("SELECT count(*) FROM act_activities").fetchone()[0] == 1


def test_every_form_needs_a_csrf_token(client, demo_conn, setup):
    a, b = setup
    login(client)
    posts = [(p, {"code": b["code"], "title": "x", "start": "2030-01-01 10:00", "end": "2030-01-01 11:00",
                  "capacity": "3"}) for m, p in _admin_requests(a, b) if m == "POST"]
    posts += [(f"/activities/{a['id']}/book", {"name": "张宇", "phone": PHONES[2], "seats": "1"}),
              ("/activities/lookup", {"order_id": b["order_id"], "code": b["code"], "action": "cancel"}),
              ("/campaigns/qunwen-2026/vote", {"item": "12"}), ("/feedback", {"kind": "request", "text": "戏曲"})]
    for path, data in posts:
        for token in (None, "forged-token"):
            form = dict(data, **({"csrf_token": token} if token else {}))
            r = client.post(path, data=form)
            assert r.status_code == 400 and "页面已过期" in r.get_data(as_text=True), (path, token)
    assert aq.get_booking(demo_conn, b["order_id"])["status"] == "pending"
    assert demo_conn.execute("SELECT count(*) FROM act_bookings").fetchone()[0] == 1
    assert demo_conn.execute("SELECT count(*) FROM camp_votes").fetchone()[0] == 0
    assert demo_conn.execute("SELECT count(*) FROM act_activities").fetchone()[0] == 1


def test_admin_publish_approve_checkin_export(client, demo_conn, setup):
    a, b = setup
    login(client)
    token = csrf(client.get("/admin/activities/new").text)
    r = client.post("/admin/activities/new", data={"csrf_token": token, "title": "", "start": "x", "end": "y",
                                                   "capacity": "0"})
    assert r.status_code == 400 and ERROR_RE.search(r.text)
    r = client.post("/admin/activities/new", data={"csrf_token": token, "title": "广场舞培训", "place": "村广场",
                                                   "start": "2030-06-01 19:00", "end": "2030-06-01 21:00",
                                                   "capacity": "30", "audit": "1"})
    assert r.status_code == 303
    page = client.get(r.headers["Location"])
    assert "广场舞培训" in page.text and "已发布活动" in page.text
    listing = client.get(f"/admin/activities/{a['id']}").text
    assert "139****0001" in listing and PHONES[1] not in listing
    assert PHONES[1] in client.get(f"/admin/activities/booking/{b['order_id']}").text
    r = client.post(f"/admin/activities/booking/{b['order_id']}/approve", data={"csrf_token": token})
    assert r.status_code == 303
    r = client.post("/admin/activities/checkin", data={"csrf_token": token, "code": b["code"]})
    assert r.status_code == 200 and "签到成功" in r.text
    r = client.post("/admin/activities/checkin", data={"csrf_token": token, "code": "00000000"})
    assert r.status_code == 404 and "取票码无效" in r.text
    csv_r = client.get("/admin/activities/export.csv")
    assert csv_r.mimetype == "text/csv" and "已签到" in csv_r.text and PHONES[1] not in csv_r.text


def test_booking_pages(client, demo_conn, setup):
    a, _b = setup
    page = client.get(f"/activities/{a['id']}")
    assert "身份证" in page.text and 'name="idcard"' not in page.text  # we say we do not need it
    token = csrf(page.text)
    r = client.post(f"/activities/{a['id']}/book", data={"csrf_token": token, "name": "张宇", "phone": "123",
                                                         "seats": "1"})
    assert r.status_code == 400 and "11位手机号码" in ERROR_RE.search(r.text).group(1)
    assert 'value="张宇"' in r.text  # the form keeps what was typed
    r = client.post(f"/activities/{a['id']}/book", data={"csrf_token": token, "name": "张宇", "phone": PHONES[3],
                                                         "seats": "2"})
    assert r.status_code == 303
    result = client.get(r.headers["Location"])
    code = CODE_RE.search(result.text).group(1)
    assert "待审核" in result.text
    # Another browser opening the same result URL sees no code, only the lookup form.
    other = client.application.test_client()
    r2 = other.get(r.headers["Location"])
    assert r2.status_code == 302 and "/activities/lookup" in r2.headers["Location"]
    assert code not in other.get(r2.headers["Location"]).text
    # Full: three seats left of five, ask for four... limited by max_seats, so fill it up first.
    for i in range(4, 6):
        aq.book(demo_conn, client.application.extensions["edgenode"].cfg, a["id"],
                {"name": "王", "phone": PHONES[i], "seats": 1}, terminal=f"z{i}")
    r = client.post(f"/activities/{a['id']}/book", data={"csrf_token": token, "name": "李", "phone": PHONES[9],
                                                         "seats": "1"})
    assert r.status_code == 409 and ERROR_RE.search(r.text).group(1).startswith("已满")
    assert "已满" in client.get("/activities/").text
    assert client.get("/activities/nope").status_code == 404
