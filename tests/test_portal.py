"""Portal pages, usage recording and beacons through the Flask test client."""

import json
import re

import pytest

from edgenode.node.catalog import queries as q
from edgenode.core.db import transaction
from edgenode.node.usage import stats
from tests.helpers_portal import login, set_admin

BEACON = "/api/v1/usage/beacon"


def events(client, conn, kind=None):
    client.application.extensions["usage_recorder"].flush()
    sql = "SELECT * FROM usage_events" + (" WHERE kind = ?" if kind else "") + " ORDER BY seq"
    return [dict(r) for r in conn.execute(sql, (kind,) if kind else ())]


def beacon(client, *evs, content_type="application/json"):
    return client.post(BEACON, data=json.dumps({"events": list(evs)}), content_type=content_type)


def test_pages_are_chinese_and_paged(app, client):
    app.extensions["edgenode"].cfg = app.extensions["edgenode"].cfg.replace(web__page_size=2)
    html = client.get("/column/sannong").get_data(as_text=True)
    assert "三农" in html and "第 1 / 3 页" in html and "下一页" in html
    html = client.get("/column/sannong?page=3").get_data(as_text=True)
    assert "上一页" in html and "下一页" not in html
    html = client.get("/column/sannong?kind=pdf").get_data(as_text=True)
    assert "果树冬季修剪手册" in html and "水稻种植技术要点" not in html
    html = client.get("/tag/养殖").get_data(as_text=True)
    assert "标签：养殖" in html and "生猪科学养殖入门" in html
    assert client.get("/tag/没有这个标签").status_code == 404
    assert client.get("/column/nope").status_code == 404


def test_search_filters(client):
    html = client.get("/search?q=养殖&kind=video").get_data(as_text=True)
    assert "生猪科学养殖入门" in html
    html = client.get("/search?q=养殖&column=shequ").get_data(as_text=True)
    assert "没有找到" in html
    html = client.get("/search").get_data(as_text=True)
    assert "请输入要找的内容" in html


@pytest.mark.parametrize("rid, needle", [
    ("demo-01", '<video id="player"'), ("demo-05", '<audio id="player"'),
    ("demo-04", '<iframe class="doc"'), ("demo-08", "在线阅读"),
])
def test_resource_page_per_kind(client, rid, needle):
    html = client.get(f"/r/{rid}").get_data(as_text=True)
    assert needle in html and "下载" in html and "相关内容" in html


def test_player_reports_at_the_configured_interval(app, client):
    app.extensions["edgenode"].cfg = app.extensions["edgenode"].cfg.replace(web__beacon_interval_seconds=7)
    html = client.get("/r/demo-01").get_data(as_text=True)
    assert 'data-interval="7"' in html and 'data-resource="demo-01"' in html
    assert 'data-beacon="/api/v1/usage/beacon"' in html and "player.js" in html
    js = client.get("/static/player.js").get_data(as_text=True)
    assert "play_start" in js and "progress" in js and "play_end" in js and "catch" in js


def test_epub_reader_pages_and_parts(client):
    html = client.get("/r/demo-08/read").get_data(as_text=True)
    assert "第 1 / 3 章" in html and "下一章" in html
    src = re.search(r'<iframe class="chapter" src="([^"]+)"', html).group(1)
    part = client.get(src)
    assert part.status_code == 200 and "静夜思" in part.get_data(as_text=True)
    assert "sandbox" in part.headers["Content-Security-Policy"]
    html = client.get("/r/demo-08/read?ch=3").get_data(as_text=True)
    assert "上一章" in html and "下一章" not in html
    for bad in ("/r/demo-08/book/../../edgenode.db", "/r/demo-08/book/%2e%2e/secret_key",
                "/r/demo-08/book/META-INF/container.xml", "/r/demo-08/book/OEBPS/nope.xhtml",
                "/r/demo-01/read", "/r/demo-08/book//etc/passwd"):
        r = client.get(bad, follow_redirects=True)  # "//" is merged by a redirect first
        assert r.status_code == 404, bad
        assert b"SQLite" not in r.data


def test_friendly_chinese_errors(demo_cfg):
    from edgenode.node.app import create_app
    app = create_app(demo_cfg)
    client = app.test_client()

    @app.route("/boom")
    def boom():
        raise RuntimeError("kaboom")
    r = client.get("/nope")
    assert r.status_code == 404 and "没有找到这个页面" in r.get_data(as_text=True) and "回到首页" in r.get_data(as_text=True)
    r = client.get("/boom")
    assert r.status_code == 500 and "服务器出了点问题" in r.get_data(as_text=True)
    assert "kaboom" not in r.get_data(as_text=True)


def test_page_views_recorded_with_random_terminal_not_ip(client, demo_conn):
    r = client.get("/r/demo-02")
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("tid=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    tid = cookie.split(";")[0].split("=")[1]
    client.get("/")
    client.get("/search?q=水稻")
    evs = events(client, demo_conn)
    assert [e["kind"] for e in evs] == ["view", "view", "search"]
    # The first request came without a cookie: anonymous, no terminal (protocol/figures.py); then the cookie is reused.
    assert [e["terminal"] for e in evs] == ["", tid, tid]
    assert evs[0]["resource_id"] == "demo-02" and evs[0]["column_key"] == "sannong"
    assert "127.0.0.1" not in json.dumps(evs)
    assert [e["seq"] for e in evs] == sorted(e["seq"] for e in evs)


def test_beacons_record_plays_and_watch_time(client, demo_conn):
    client.get("/r/demo-01")
    client.application.extensions["usage_recorder"].flush()
    assert beacon(client, {"kind": "play_start", "resource": "demo-01", "position": 0}).status_code == 200
    assert beacon(client, {"kind": "progress", "resource": "demo-01", "seconds": 15, "position": 15}).status_code == 200
    r = beacon(client, {"kind": "progress", "resource": "demo-01", "seconds": 10_000})  # capped
    assert r.status_code == 200
    assert beacon(client, {"kind": "play_end", "resource": "demo-01", "seconds": 3.5}).status_code == 200
    s = stats.summary(demo_conn)["today"]
    assert s["plays"] == 1 and s["views"] == 1
    assert s["watch_hours"] == round((15 + 35 + 3.5) / 3600, 2)  # cap = 2 * 15 + 5
    top = stats.most_watched(demo_conn)
    assert top[0]["resource_id"] == "demo-01" and top[0]["title"] == "水稻种植技术要点"


@pytest.mark.parametrize("body, content_type", [
    ({"events": [{"kind": "play_start", "resource": "demo-01"}]}, "text/plain"),
    ({"events": [{"kind": "play_start", "resource": "demo-01"}]}, "application/x-www-form-urlencoded"),
    ({"events": []}, "application/json"),
    ({"events": [{"kind": "hack", "resource": "demo-01"}]}, "application/json"),
    ({"events": [{"kind": "progress", "resource": "demo-99"}]}, "application/json"),
    ({"events": [{"kind": "progress", "resource": "demo-01", "seconds": -5}]}, "application/json"),
    ({"events": [{"kind": "progress", "resource": "demo-01", "seconds": "lots"}]}, "application/json"),
    ({"events": [{"kind": "progress", "resource": "demo-01", "seconds": True}]}, "application/json"),
    ({"events": [{"kind": "progress", "resource": ["x"]}]}, "application/json"),
    ({"events": [{"kind": "progress", "resource": "demo-01"}] * 21}, "application/json"),
    (["not", "an", "object"], "application/json"),
    ("{broken json", "application/json"),
])
def test_bad_beacons_refused_and_nothing_recorded(client, demo_conn, body, content_type, caplog):
    data = body if isinstance(body, str) else json.dumps(body)
    r = client.post(BEACON, data=data, content_type=content_type)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "E_BEACON"
    assert events(client, demo_conn) == []
    assert "E_BEACON" in caplog.text


def test_beacon_needs_no_csrf_but_forms_do(client, demo_conn):
    r = beacon(client, {"kind": "play_start", "resource": "demo-01"})
    assert r.status_code == 200 and len(events(client, demo_conn, "play_start")) == 1


def test_recording_failure_never_breaks_the_page(client, demo_conn, caplog):
    with transaction(demo_conn):
        demo_conn.execute("CREATE TEMP TABLE x (a)")  # keep the write lock held by another connection
        demo_conn.execute("INSERT INTO usage_events (at, mono, boot_id, terminal, kind) VALUES (0, 0, 'b', 't', 'view')")
        import edgenode.core.db as db
        old = db.connect

        def impatient(path, **kw):
            c = old(path, **kw)
            c.execute("PRAGMA busy_timeout = 50")
            return c
        db.connect = impatient
        import edgenode.node.web.context as ctx
        ctx.connect = impatient
        try:
            r = client.get("/r/demo-03")
            rb = beacon(client, {"kind": "play_start", "resource": "demo-03"})
        finally:
            db.connect = old
            ctx.connect = old
    assert r.status_code == 200 and "淡水鱼" in r.get_data(as_text=True)
    assert rb.status_code == 503
    assert "E_USAGE_RECORD" in caplog.text


def test_home_shows_popular_and_cache_follows_catalogue(client, demo_conn):
    html = client.get("/").get_data(as_text=True)
    assert "大家都在看" not in html  # no usage yet
    for _ in range(3):
        beacon(client, {"kind": "play_start", "resource": "demo-13"})
    client.application.extensions["portal_cache"].pop("popular")  # as if a minute had passed
    html = client.get("/").get_data(as_text=True)
    popular = html.split('id="popular"')[1].split("</section>")[0]
    assert "老年人防范电信诈骗" in popular
    assert "健康讲座：高血压的日常护理" in client.get("/").get_data(as_text=True)
    with transaction(demo_conn):
        q.withdraw(demo_conn, "demo-15")
    assert "健康讲座：高血压的日常护理" not in client.get("/").get_data(as_text=True)


def test_dashboard_counts_plays(client, demo_conn):
    set_admin(demo_conn)
    login(client)
    plays = lambda: int(re.search(r'class="plays-today">(\d+)<', client.get("/admin/").get_data(as_text=True)).group(1))  # noqa: E731
    before = plays()
    beacon(client, {"kind": "play_start", "resource": "demo-01"})
    beacon(client, {"kind": "progress", "resource": "demo-01", "seconds": 20})
    html = client.get("/admin/").get_data(as_text=True)
    assert plays() == before + 1
    assert "水稻种植技术要点" in html and "各栏目资源数" in html and "存储空间" in html


def test_group_commit_keeps_each_requests_events_together(demo_cfg, demo_conn):
    """Many threads at once: everything lands, and one request's events stay contiguous."""
    import threading

    from edgenode.node.usage.recorder import Recorder
    rec = Recorder(demo_cfg.db_path)

    def request(n):
        rec.submit([{"kind": "progress", "terminal": f"t{n}", "resource_id": "demo-01", "seconds": 1}] * 3,
                   wait=n % 2 == 0)
    threads = [threading.Thread(target=request, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rec.flush()
    rows = demo_conn.execute("SELECT seq, terminal FROM usage_events ORDER BY seq").fetchall()
    assert len(rows) == 120
    by_terminal = {}
    for seq, term in rows:
        by_terminal.setdefault(term, []).append(seq)
    assert all(s == list(range(s[0], s[0] + 3)) for s in by_terminal.values())
