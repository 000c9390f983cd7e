"""Media serving over real sockets, in both modes, with the same checks.

* production: the shipped ``systemd/gunicorn.conf.py`` (gthread) behind the
  shipped ``systemd/nginx-site.conf`` (paths rewritten to this test's store),
  nginx sending the bytes after ``X-Accel-Redirect``;
* builtin: ``edgenode serve`` (Flask alone), as ``make run`` uses.
"""

from __future__ import annotations

import re

import pytest
import requests

from edgenode.node.catalog import queries as q
from edgenode.core.config import load_config
from edgenode.core.db import open_main
from tests.helpers_portal import Production, copy_data, free_port, raw_unix_get, start_builtin, stop, write_config

MODES = ["production", "builtin"]


@pytest.fixture(scope="module")
def site(demo_master, tmp_path_factory):
    work = tmp_path_factory.mktemp("serving")
    data = copy_data(demo_master, work / "data")
    prod = Production(work / "prod", data)
    port = free_port()
    builtin = start_builtin(write_config(work / "builtin.toml", data), port)
    conn = open_main(load_config(env={}, overrides={"data_dir": str(data)}))
    try:
        yield {"production": prod.url, "builtin": f"http://127.0.0.1:{port}", "data": data, "conn": conn,
               "prod": prod}
    finally:
        conn.close()
        stop(builtin)
        prod.stop()


@pytest.fixture(params=MODES)
def base(request, site):
    return site[request.param]


def media(site, rid="demo-01"):
    r = q.get(site["conn"], rid)
    path = site["data"] / "store" / r["sha256"][:2] / r["sha256"][2:4] / r["sha256"]
    return f"/media/{r['sha256']}.{r['ext']}", path.read_bytes(), path


def get(base, path, **headers):
    return requests.get(base + path, headers=headers, timeout=10, allow_redirects=False)


def test_full_file_and_cache_headers(base, site):
    url, data, _ = media(site)
    r = get(base, url)
    assert r.status_code == 200 and r.content == data
    assert r.headers["Content-Type"] == "video/mp4"
    assert "immutable" in r.headers["Cache-Control"] and "max-age=31536000" in r.headers["Cache-Control"]
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["ETag"] and r.headers["Last-Modified"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("spec, start, end", [
    ("bytes=0-0", 0, 0),                 # first byte
    ("bytes=-1", -1, None),              # last byte (suffix of one)
    ("bytes=LAST-LAST", -1, None),       # last byte by position
    ("bytes=-500", -500, None),          # suffix range
    ("bytes=1000-", 1000, None),         # open-ended
    ("bytes=100-199", 100, 199),         # middle
    ("bytes=100-99999999999", 100, None),  # end past the file: clipped
])
def test_single_ranges(base, site, spec, start, end):
    url, data, _ = media(site)
    size = len(data)
    spec = spec.replace("LAST", str(size - 1))
    want = data[start:] if end is None else data[start:end + 1]
    r = get(base, url, Range=spec)
    assert r.status_code == 206, (spec, r.status_code)
    assert r.content == want
    first = start % size
    assert r.headers["Content-Range"] == f"bytes {first}-{first + len(want) - 1}/{size}"
    assert int(r.headers["Content-Length"]) == len(want)


def test_multiple_ranges_multipart_or_whole(base, site):
    url, data, _ = media(site)
    r = get(base, url, Range="bytes=0-9,20-29")
    if r.status_code == 200:
        assert r.content == data
        return
    assert r.status_code == 206
    ctype = r.headers["Content-Type"]
    assert ctype.startswith("multipart/byteranges; boundary=")
    boundary = ctype.split("boundary=")[1].encode()
    parts = [p for p in r.content.split(b"--" + boundary) if p.strip(b"\r\n-")]
    bodies = [p.split(b"\r\n\r\n", 1)[1].rstrip(b"\r\n") for p in parts]
    assert bodies == [data[0:10], data[20:30]]
    assert b"Content-Range: bytes 0-9/" in parts[0] and b"Content-Range: bytes 20-29/" in parts[1]


@pytest.mark.parametrize("spec", ["bytes=SIZE-", "bytes=SIZE-SIZE9"])
def test_range_past_the_end_is_416(base, site, spec):
    url, data, _ = media(site)
    r = get(base, url, Range=spec.replace("SIZE", str(len(data))))
    assert r.status_code == 416
    assert r.headers.get("Content-Range") == f"bytes */{len(data)}"
    assert len(r.content) < 2000 and data[:64] not in r.content


def test_conditional_requests(base, site):
    url, data, _ = media(site)
    full = get(base, url)
    etag, modified = full.headers["ETag"], full.headers["Last-Modified"]
    r = get(base, url, **{"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    r = get(base, url, **{"If-None-Match": '"other"'})
    assert r.status_code == 200 and r.content == data
    r = get(base, url, **{"If-Modified-Since": modified})
    assert r.status_code == 304
    # If-Range: the range only while the validator still matches, else the whole file.
    r = get(base, url, Range="bytes=0-99", **{"If-Range": etag})
    assert r.status_code == 206 and r.content == data[:100]
    r = get(base, url, Range="bytes=0-99", **{"If-Range": '"stale"'})
    assert r.status_code == 200 and r.content == data
    r = get(base, url, Range="bytes=0-99", **{"If-Range": modified})
    assert r.status_code == 206 and r.content == data[:100]


def test_head(base, site):
    url, data, _ = media(site)
    r = requests.head(base + url, timeout=10)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(data) and r.content == b""


TRAVERSAL = [
    "/media/../edgenode.db", "/media/%2e%2e/edgenode.db", "/media/%2E%2E%2Fedgenode.db", "/media/..%2fedgenode.db",
    "/media/..%252fedgenode.db", "/media/%2e%2e/%2e%2e/etc/passwd", "/media//etc/passwd", "/media/%2fetc%2fpasswd",
    "/media/secret_key", "/media/" + "0" * 64 + ".mp4", "/media/../../../../etc/passwd",
    "/_store/../edgenode.db", "/static/../edgenode.db", "/static/%2e%2e/%2e%2e/db.py", "/static/..%2f..%2fapp.py",
    "/r/demo-08/book/../../../edgenode.db", "/r/demo-08/book/%2e%2e/%2e%2e/secret_key",
]


@pytest.mark.parametrize("path", TRAVERSAL)
def test_traversal_refused(base, site, path):
    r = requests.get(base + path, timeout=10)  # redirects followed: the end must still be refused
    assert r.status_code in (400, 403, 404), (path, r.status_code)
    body = r.content
    assert b"SQLite format" not in body and b"root:" not in body and b"import " not in body
    assert (site["data"] / "secret_key").read_bytes().strip() not in body


def test_store_is_internal_in_production(site):
    url, _, path = media(site)
    rel = str(path.relative_to(site["data"] / "store"))
    r = get(site["production"], "/_store/" + rel)
    assert r.status_code == 404


def test_python_does_not_carry_bytes_in_production(site):
    """gunicorn only says yes or no; with web.accel_redirect it names the file for nginx."""
    url, data, _ = media(site)
    head, body = raw_unix_get(site["prod"].sock, "/_auth" + url)
    assert head.startswith("HTTP/1.1 204") and body == b""
    head, body = raw_unix_get(site["prod"].sock, "/_auth/media/" + "0" * 64 + ".mp4")
    assert head.startswith("HTTP/1.1 403")
    head, body = raw_unix_get(site["prod"].sock, url, {"Range": "bytes=0-1048575"})
    assert re.search(r"(?im)^X-Accel-Redirect: /_store/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\r?$", head), head
    assert body == b""
    assert get(site["production"], "/_auth").status_code == 404  # internal only


@pytest.mark.parametrize("rid, ctype", [("demo-01", "video/mp4"), ("demo-05", "audio/mpeg"),
                                        ("demo-04", "application/pdf"), ("demo-08", "application/epub+zip")])
def test_content_types_agree(base, site, rid, ctype):
    url, data, _ = media(site, rid)
    r = get(base, url, Range="bytes=0-9")
    assert r.status_code == 206 and r.headers["Content-Type"] == ctype and r.content == data[:10]


def test_withdrawn_resource_is_not_served(site):
    from edgenode.core.db import transaction
    url, data, _ = media(site, "demo-03")
    with transaction(site["conn"]):
        q.withdraw(site["conn"], "demo-03")
    for mode in MODES:
        r = get(site[mode], url)
        assert r.status_code == 404, mode
        assert "没有找到" in r.text and data[:64] not in r.content


def test_symlink_planted_in_store_is_refused(site):
    url, data, path = media(site, "demo-02")
    backup = path.with_name(path.name + ".bak")
    path.rename(backup)
    path.symlink_to(site["data"] / "edgenode.db")
    try:
        for mode in MODES:
            r = get(site[mode], url)
            assert r.status_code == 404, mode
            assert b"SQLite format" not in r.content
    finally:
        path.unlink()
        backup.rename(path)
    # nginx remembers the refusal for 5 s per URL; a new URL (query) is asked afresh.
    assert get(site["production"], url + "?again").content == data


def test_pages_work_through_nginx(site):
    r = get(site["production"], "/search?q=水稻")
    assert r.status_code == 200 and "水稻种植技术要点" in r.text
    assert get(site["production"], "/static/portal.css").status_code == 200
    assert get(site["production"], "/admin/").status_code == 302


@pytest.mark.parametrize("broken", ["[web\nport = ", "[web]\nno_such_key = 1\n"])
def test_gunicorn_with_a_broken_config_stops_at_once(tmp_path, broken):
    """No preload: the worker loads the app; if it cannot, gunicorn stops instead of restarting it forever."""
    from tests.helpers_portal import start_gunicorn
    config = tmp_path / "edgenode.toml"
    config.write_text(broken)
    proc = start_gunicorn(config, f"unix:{tmp_path / 'g.sock'}")
    try:
        assert proc.wait(timeout=60) != 0
    finally:
        stop(proc)


def test_gunicorn_opens_no_control_socket(tmp_path, monkeypatch, demo_master):
    """gunicorn 27+ would open an admin socket in $HOME; the shipped settings turn it off."""
    from tests.helpers_portal import start_gunicorn, wait_http
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    data = copy_data(demo_master, tmp_path / "data")
    port = free_port()
    proc = start_gunicorn(write_config(tmp_path / "e.toml", data), f"127.0.0.1:{port}")
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc=proc)
        assert not (tmp_path / "home" / ".gunicorn").exists()
    finally:
        stop(proc)


def test_while_gunicorn_is_down_nginx_shows_a_chinese_page_that_refreshes(tmp_path):
    """Starting or restarting: not nginx's English '502 Bad Gateway' but 请稍候, which reloads itself."""
    from tests.helpers_portal import nginx_config, start_nginx

    port = free_port()
    conf = nginx_config(tmp_path / "nginx", port=port, store=tmp_path / "store",
                        upstream=f"unix:{tmp_path / 'nobody-listens.sock'}")
    proc = start_nginx(conf, port)
    try:
        r = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert r.status_code == 503
        r.encoding = "utf-8"
        assert "服务正在启动，请稍候" in r.text and 'http-equiv="refresh"' in r.text
        assert "Bad Gateway" not in r.text
    finally:
        stop(proc)
