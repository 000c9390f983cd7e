"""The per-request shortcuts of issue 19's speed work (web/hotpath.py, catalog migration 5):
each must change nothing a visitor sees."""

from __future__ import annotations

from edgenode.node.catalog import queries as q


def _version(conn) -> int:
    return q.fingerprint(conn)


def test_the_catalogue_version_moves_with_what_visitors_see_and_only_then(demo_conn):
    conn = demo_conn
    v0 = _version(conn)
    q.refresh_visibility(conn)  # rewrites every row, changes nothing visible
    conn.commit()
    assert _version(conn) == v0
    rid = conn.execute("SELECT id FROM resources WHERE visible = 1 LIMIT 1").fetchone()[0]
    assert q.withdraw(conn, rid)
    conn.commit()
    v1 = _version(conn)
    assert v1 > v0
    conn.execute("UPDATE series SET title = title || '（修订）'")
    conn.commit()
    assert _version(conn) > v1


def test_a_withdrawal_drops_the_cached_search_page_at_once(client, demo_conn):
    first = client.get("/search?q=水稻").get_data(as_text=True)
    row = demo_conn.execute("SELECT id, title FROM resources WHERE visible = 1 AND title LIKE '%水稻%' "
                            "LIMIT 1").fetchone()
    assert row and row[1] in first
    assert q.withdraw(demo_conn, row[0])
    demo_conn.commit()
    after = client.get("/search?q=水稻").get_data(as_text=True)
    assert f"/r/{row[0]}\"" not in after and f"/r/{row[0]}\"" in first


def test_the_page_chrome_follows_the_language_of_each_request(client):
    zh = client.get("/").get_data(as_text=True)
    client.set_cookie("lang", "en")
    en = client.get("/").get_data(as_text=True)
    client.delete_cookie("lang")
    zh_again = client.get("/").get_data(as_text=True)
    assert "管理" in zh and ">Administration<" in en and ">Administration<" not in zh_again
    assert 'lang="en"' in en and 'lang="en"' not in zh_again
    client.set_cookie("lang", "../../etc/passwd")  # an unknown language is the default one, not a new cache entry
    assert ">Administration<" not in client.get("/").get_data(as_text=True)


def test_links_follow_the_script_root_of_each_request(client, demo_conn):
    """Remembered URLs and chrome are keyed by the prefix the portal is mounted under (a resource
    page: it is rendered for every request)."""
    rid = demo_conn.execute("SELECT id FROM resources WHERE visible = 1 LIMIT 1").fetchone()[0]
    plain = client.get(f"/r/{rid}").get_data(as_text=True)
    mounted = client.get(f"/r/{rid}", base_url="http://localhost/portal/").get_data(as_text=True)
    assert 'href="/portal/static/portal.css"' in mounted and 'href="/portal/search"' not in plain
    assert 'href="/static/portal.css"' in plain and 'action="/portal/search"' in mounted


def test_the_url_memo_is_bounded_and_still_right_after_it_fills(app, monkeypatch):
    from edgenode.node.web import hotpath
    monkeypatch.setattr(hotpath, "URL_MEMO_SIZE", 8)
    url_for = hotpath.memo_url_for(app)
    with app.test_request_context("/"):
        urls = [url_for("portal.resource", resource_id=f"demo.r{i}") for i in range(50)]
        assert urls == [f"/r/demo.r{i}" for i in range(50)]
        assert url_for("portal.search", q=["a", "b"]) == "/search?q=a&q=b"  # unhashable: built each time


def test_a_villager_page_sets_no_session_cookie_but_a_form_still_gets_its_csrf(client):
    r = client.get("/")
    assert not any(h.startswith("session=") for h in r.headers.getlist("Set-Cookie"))
    login = client.get("/admin/login")
    assert 'name="csrf_token"' in login.get_data(as_text=True)
    assert any(h.startswith("session=") for h in login.headers.getlist("Set-Cookie"))


def test_thirty_terminals_asking_for_a_missing_page_at_once_cause_one_render(app):
    import threading
    import time

    from edgenode.node.portal import pagecache
    renders, pages = [], []

    def render():
        renders.append(1)
        time.sleep(0.3)  # a cold section page on a big library
        return ("<p>页</p>",)

    def visitor():
        with app.test_request_context("/s/shaoer"):
            pages.append(pagecache.cached("test", ("shaoer",), render))
    threads = [threading.Thread(target=visitor) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(renders) == 1 and pages == [("<p>页</p>",)] * 30


def test_a_page_that_is_not_there_is_asked_for_by_each_and_never_kept(app):
    from edgenode.node.portal import pagecache
    calls = []
    with app.test_request_context("/series/nosuch"):
        for _ in range(3):
            assert pagecache.cached("test", ("nosuch",), lambda: calls.append(1)) is None
    assert len(calls) == 3


def test_a_remembered_card_follows_the_catalogue(client, demo_conn):
    """Cards are kept across pages until the catalogue moves: a retitled resource shows its new title
    in the related cards of a page that is rendered every time."""
    import time
    rid, column = demo_conn.execute("SELECT id, column_key FROM resources WHERE visible = 1 AND series_num IS NULL "
                                    "ORDER BY num LIMIT 1").fetchone()
    other = demo_conn.execute("SELECT id FROM resources WHERE visible = 1 AND column_key = ? AND id != ? "
                              "ORDER BY num LIMIT 1", (column, rid)).fetchone()[0]
    before = client.get(f"/r/{other}").get_data(as_text=True)
    assert f'href="/r/{rid}"' in before  # among the related cards
    demo_conn.execute("UPDATE resources SET title = '改过的标题', updated_at = ? WHERE id = ?", (time.time(), rid))
    demo_conn.commit()
    after = client.get(f"/r/{other}").get_data(as_text=True)
    assert "改过的标题" in after and "改过的标题" not in before
