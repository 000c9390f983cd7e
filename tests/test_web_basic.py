"""The built-in (Flask-only) serving path: pages and media ranges."""

import pytest

from edgenode.node.catalog import queries as q


def media_url(conn, rid):
    r = q.get(conn, rid)
    return f"/media/{r['sha256']}.{r['ext']}", r


def test_home_lists_demo_columns(client):
    r = client.get("/")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    for text in ("三农", "普适性", "新城市人", "社区服务", "健康讲座：高血压的日常护理", 'lang="zh-CN"'):
        assert text in html


def test_search_page(client):
    html = client.get("/search?q=水稻").get_data(as_text=True)
    assert "水稻种植技术要点" in html
    html = client.get("/search?q=xyzzy").get_data(as_text=True)
    assert "没有找到" in html


def test_resource_page_has_player(client):
    html = client.get("/r/demo-01").get_data(as_text=True)
    assert "<video" in html and "/media/" in html


def test_404_is_chinese(client):
    r = client.get("/r/nope")
    assert r.status_code == 404 and "没有找到" in r.get_data(as_text=True)
    r = client.get("/no/such/page")
    assert r.status_code == 404 and "没有找到" in r.get_data(as_text=True)


def test_ranges_in_builtin_mode(client, demo_conn):
    url, res = media_url(demo_conn, "demo-01")
    size = res["size"]
    full = client.get(url)
    assert full.status_code == 200 and len(full.data) == size
    assert "immutable" in full.headers["Cache-Control"]
    r = client.get(url, headers={"Range": "bytes=0-0"})
    assert r.status_code == 206 and r.data == full.data[:1]
    assert r.headers["Content-Range"] == f"bytes 0-0/{size}"
    r = client.get(url, headers={"Range": f"bytes={size - 1}-{size - 1}"})
    assert r.status_code == 206 and r.data == full.data[-1:]
    r = client.get(url, headers={"Range": "bytes=-100"})
    assert r.status_code == 206 and r.data == full.data[-100:]
    r = client.get(url, headers={"Range": "bytes=100-"})
    assert r.status_code == 206 and r.data == full.data[100:]
    r = client.get(url, headers={"Range": f"bytes={size}-"})
    assert r.status_code == 416
    etag = full.headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304


@pytest.mark.parametrize("path", [
    "/media/../edgenode.db", "/media/%2e%2e/edgenode.db", "/media/..%2fedgenode.db",
    "/media/" + "0" * 64 + ".mp4", "/media//etc/passwd", "/media/secret_key",
])
def test_traversal_refused(client, path):
    r = client.get(path)
    assert r.status_code in (400, 404)
    assert b"SQLite" not in r.data


def test_symlink_planted_in_store_is_refused(client, demo_cfg, demo_conn):
    url, res = media_url(demo_conn, "demo-02")
    path = demo_cfg.store_path / res["sha256"][:2] / res["sha256"][2:4] / res["sha256"]
    path.unlink()
    path.symlink_to(demo_cfg.db_path)
    r = client.get(url)
    assert r.status_code == 404 and b"SQLite" not in r.data
