"""Contributions at the point (issue 21): tus uploads, the plain form, caps, processing, moderation."""

from __future__ import annotations

import os
import time

import pytest

from edgenode.node.contrib import moderation, process, uploads
from edgenode.node.contrib import queries as q
from tests.helpers_contrib import (OCTETS, TUS, exif_location, ffprobe_tags, make_audio, make_picture, make_video,
                                   meta_for, metadata_header, sha256)
from tests.helpers_portal import csrf_token, login, set_admin


@pytest.fixture
def client(cfg, conn):
    """The node app on an empty data directory (conftest's ``cfg``/``conn``): uploads need no library."""
    from edgenode.node.app import create_app
    return create_app(cfg).test_client()


def _create(client, path, token, **over):
    size = os.path.getsize(path)
    return client.post("/api/v1/contrib/files", headers={**TUS, "Upload-Length": str(size), "X-CSRFToken": token,
                                                          "Upload-Metadata": metadata_header(**meta_for(path, **over))})


def tus_upload(client, path, *, pieces: int = 3) -> str:
    token = csrf_token(client, "/contrib/")
    r = _create(client, path, token)
    assert r.status_code == 201, r.get_data(as_text=True)
    loc = r.headers["Location"]
    data = path.read_bytes()
    step = len(data) // pieces + 1
    for at in range(0, len(data), step):
        r = client.patch(loc, data=data[at:at + step], headers={**OCTETS, "Upload-Offset": str(at)})
        assert r.status_code == 204, r.get_data(as_text=True)
    return loc.rsplit("/", 1)[-1]


def test_tus_upload_resumes_after_a_cut_and_the_stored_file_is_the_source(client, cfg, tmp_path):
    src = make_video(tmp_path / "gala.mp4")
    data = src.read_bytes()
    r = client.options("/api/v1/contrib/files")
    assert r.status_code == 204 and "creation" in r.headers["Tus-Extension"] and r.headers["Tus-Version"] == "1.0.0"
    token = csrf_token(client, "/contrib/")
    r = _create(client, src, token)
    assert r.status_code == 201 and r.headers["Upload-Expires"]
    loc = r.headers["Location"]
    # A PATCH whose connection dies after 1000 bytes: those bytes stay, and HEAD says so.
    class Cut:
        def __init__(self):
            self.sent = False

        def read(self, n):
            if self.sent:
                raise OSError("connection reset")
            self.sent = True
            return data[:1000]
    cid = loc.rsplit("/", 1)[-1]
    from edgenode.core.db import open_main
    conn = open_main(cfg)
    assert uploads.append(cfg, conn, cid, 0, Cut(), len(data)) == 1000
    r = client.head(loc, headers=TUS)
    assert r.headers["Upload-Offset"] == "1000" and r.headers["Upload-Length"] == str(len(data))
    r = client.patch(loc, data=data[500:], headers={**OCTETS, "Upload-Offset": "500"})
    assert r.status_code == 409 and r.json["error"]["code"] == "E_CONTRIB_OFFSET"
    r = client.patch(loc, data=data[1000:], headers={**OCTETS, "Upload-Offset": "1000"})
    assert r.status_code == 204 and r.headers["Upload-Offset"] == str(len(data))
    row = q.contribution(conn, cid)
    assert row["state"] == "processing" and row["title"] == "村晚广场舞"
    stored = cfg.data_path / "contrib" / "incoming" / f"{cid}.mp4"
    assert sha256(stored) == sha256(src)
    conn.close()


def test_processing_strips_location_and_device_and_makes_a_poster(client, cfg, conn, tmp_path):
    video = make_video(tmp_path / "v.mov", vcodec="mpeg4", acodec="mp3")  # not H.264/AAC: transcoded
    assert exif_location(video), "the test video must carry location tags"
    pic = make_picture(tmp_path / "p.jpg")
    assert any("GPS" in k for k in exif_location(pic))
    audio = make_audio(tmp_path / "a.mp3")
    ids = [tus_upload(client, p) for p in (video, pic, audio)]
    out = process.run_job(cfg)
    assert [p["state"] for p in out["result"]["processed"]] == ["pending"] * 3
    for cid, kind, codecs in zip(ids, ("video", "image", "audio"), (["h264", "aac"], ["mjpeg"], ["aac"])):
        row = q.contribution(conn, cid)
        assert row["kind"] == kind
        ready = process.ready_file(cfg, row)
        assert sha256(ready) == row["sha256"] and ready.stat().st_size == row["size"]
        facts = ffprobe_tags(ready)
        assert facts["codecs"] == codecs
        assert not exif_location(ready), exif_location(ready)
        assert not any("location" in k or k in ("make", "model", "artist") for k in facts["tags"])
        assert not list((cfg.data_path / "contrib" / "incoming").glob(f"{cid}.*"))
    assert (cfg.data_path / "contrib" / "ready" / f"{ids[0]}.poster.jpg").stat().st_size > 0


def test_the_administrator_approves_or_rejects_with_a_reason(client, cfg, conn, tmp_path):
    a, b = (tus_upload(client, make_video(tmp_path / f"{n}.mp4")) for n in "ab")
    process.run_job(cfg)
    set_admin(conn)
    r = client.get("/admin/contrib/")
    assert r.status_code in (302, 401)  # never without a login
    login(client)
    html = client.get("/admin/contrib/").get_data(as_text=True)
    assert "待审核" in html and "李大娘舞蹈队" in html
    r = client.get(f"/admin/contrib/{a}/file", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.data) == 100
    token = csrf_token(client, "/admin/contrib/")
    client.post(f"/admin/contrib/{a}/approve", data={"csrf_token": token})
    client.post(f"/admin/contrib/{b}/reject", data={"csrf_token": token, "reason": ""})
    assert q.contribution(conn, b)["state"] == "pending"  # no reason, no rejection
    client.post(f"/admin/contrib/{b}/reject", data={"csrf_token": token, "reason": "画面与主题无关"})
    assert q.contribution(conn, a)["state"] == "approved"
    assert q.contribution(conn, b)["state"] == "rejected"
    assert moderation.files_of(cfg, b) == []
    html = client.get("/admin/contrib/").get_data(as_text=True)
    assert "已批准，等待上传" in html and "画面与主题无关" in html


def test_the_plain_form_takes_small_files_and_says_no_in_chinese_to_big_ones(client, cfg, conn, tmp_path):
    pic = make_picture(tmp_path / "画.jpg", gps=False)
    token = csrf_token(client, "/contrib/")
    with open(pic, "rb") as f:
        r = client.post("/contrib/form", data={"csrf_token": token, "title": "我家的小院", "credit": "王小明",
                                               "consent": "1", "file": (f, "画.jpg")},
                        content_type="multipart/form-data")
    assert r.status_code == 200 and "上传成功" in r.get_data(as_text=True)
    assert [c["title"] for c in moderation.listing(conn)] == ["我家的小院"]
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(2 * 1024 * 1024))
    from edgenode.node.app import create_app
    small = create_app(cfg.replace(contrib__form_max_mb=1)).test_client()
    token = csrf_token(small, "/contrib/")
    with open(big, "rb") as f:
        r = small.post("/contrib/form", data={"csrf_token": token, "title": "大", "consent": "1",
                                              "file": (f, "big.mp4")}, content_type="multipart/form-data")
    assert r.status_code == 413 and "文件太大" in r.get_data(as_text=True)
    assert len(moderation.listing(conn)) == 1


def test_caps_per_file_and_per_day_answer_in_chinese(cfg, tmp_path):
    from edgenode.core.db import open_main
    from edgenode.node.app import create_app
    cfg = cfg.replace(contrib__max_file_mb=1, contrib__daily_mb=2)
    client = create_app(cfg).test_client()
    token = csrf_token(client, "/contrib/")
    meta = metadata_header(**meta_for("x.mp4"))
    r = client.post("/api/v1/contrib/files", headers={**TUS, "X-CSRFToken": token, "Upload-Metadata": meta,
                                                      "Upload-Length": str(2 * 1024 * 1024)})
    assert r.status_code == 413 and r.json["error"]["code"] == "E_CONTRIB_TOO_BIG"
    assert "1 MB" in r.json["error"]["message_zh"]
    for _ in range(2):
        r = client.post("/api/v1/contrib/files", headers={**TUS, "X-CSRFToken": token, "Upload-Metadata": meta,
                                                          "Upload-Length": str(1000 * 1024)})
        assert r.status_code == 201
    r = client.post("/api/v1/contrib/files", headers={**TUS, "X-CSRFToken": token, "Upload-Metadata": meta,
                                                      "Upload-Length": str(200 * 1024)})
    assert r.status_code == 413 and r.json["error"]["code"] == "E_CONTRIB_DAILY" and "明天" in r.json["error"]["message_zh"]
    r = client.post("/api/v1/contrib/files", headers={**TUS, "Upload-Metadata": meta, "Upload-Length": "10"})
    assert r.status_code == 400  # no CSRF token: refused
    conn = open_main(cfg)
    assert q.day_total(conn, uploads.today()) == 2000 * 1024
    conn.close()


def test_an_abandoned_upload_expires_and_frees_its_space(client, cfg, conn, tmp_path):
    src = make_video(tmp_path / "v.mp4")
    token = csrf_token(client, "/contrib/")
    loc = _create(client, src, token).headers["Location"]
    client.patch(loc, data=src.read_bytes()[:5000], headers={**OCTETS, "Upload-Offset": "0"})
    cid = loc.rsplit("/", 1)[-1]
    part = uploads.part_path(cfg, cid)
    assert part.stat().st_size == 5000
    assert uploads.expire(cfg, conn)["expired"] == 0  # fresh: kept
    out = uploads.expire(cfg, conn, now=time.time() + cfg["contrib.expire_hours"] * 3600 + 60)
    assert out == {"expired": 1, "freed_bytes": 5000} and not part.exists()
    r = client.head(loc, headers=TUS)
    assert r.status_code == 404
    r = client.patch(loc, data=b"x", headers={**OCTETS, "Upload-Offset": "5000"})
    assert r.status_code == 404 and r.json["error"]["code"] == "E_CONTRIB_GONE"


def test_termination_deletes_the_part(client, cfg, tmp_path):
    src = make_video(tmp_path / "v.mp4")
    loc = _create(client, src, csrf_token(client, "/contrib/")).headers["Location"]
    assert client.delete(loc, headers=TUS).status_code == 204
    assert not list((cfg.data_path / "contrib" / "uploads").iterdir())


def test_processing_killed_at_random_points_ends_whole(cfg, conn, tmp_path):
    """SIGKILL of `edgenode contrib process` mid-ffmpeg three times: the next run still ends with one
    clean, playable file per work, and no temporary file is left."""
    import random
    import signal
    import subprocess
    import sys
    from tests.helpers_sync import ROOT, _env
    src = make_video(tmp_path / "v.mov", seconds=6, size="640x360", vcodec="mpeg4", acodec="mp3")
    size = src.stat().st_size
    cid = uploads.create(cfg, conn, size, meta_for(src))
    with open(src, "rb") as f:
        uploads.append(cfg, conn, cid, 0, f, size)
    cmd = [sys.executable, "-m", "edgenode", "--data-dir", str(cfg.data_path), "contrib", "process"]
    rnd = random.Random(21)
    for _ in range(3):
        p = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        time.sleep(rnd.uniform(0.8, 2.0))
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        row = q.contribution(conn, cid)
        assert row["state"] in ("processing", "pending")
        if row["state"] == "processing":  # the upload itself is never lost
            assert sha256(cfg.data_path / "contrib" / "incoming" / f"{cid}.mov") == sha256(src)
    process.run_job(cfg)
    row = q.contribution(conn, cid)
    ready = process.ready_file(cfg, row)
    assert row["state"] == "pending" and sha256(ready) == row["sha256"]
    assert ffprobe_tags(ready)["codecs"] == ["h264", "aac"]
    assert sorted(p.name for p in ready.parent.iterdir()) == sorted([ready.name, f"{cid}.poster.jpg"])


def _gunicorn_request(head: bytes, send_rest):
    """A request parsed by gunicorn's own parser from a real socket, and its environ as gunicorn
    builds it; ``send_rest(sock)`` runs in a thread and sends what follows ``head``."""
    import socket
    import threading
    from gunicorn.config import Config
    from gunicorn.http import wsgi
    from gunicorn.http.parser import RequestParser
    client, server = socket.socketpair()
    t = threading.Thread(target=lambda: (client.sendall(head), send_rest(client)), daemon=True)
    t.start()
    parser = RequestParser(Config(), server, ("127.0.0.1", 9))
    req = next(parser)
    _, environ = wsgi.create(req, server, ("127.0.0.1", 9), ("127.0.0.1", 80), Config())
    return parser, environ, client, t


def _read_all(stream) -> bytes:
    buf, out = memoryview(bytearray(uploads.READ)), bytearray()
    while n := stream.readinto(buf):
        out += buf[:n]
    return bytes(out)


def test_a_patch_body_is_read_from_gunicorns_socket_and_the_connection_stays_in_step():
    """Under gunicorn the body is received straight into the upload's buffer (tus.body_stream), after
    what gunicorn read ahead with the headers; the next request on the kept-alive connection (here
    pipelined right behind the body) still parses.  Fails if a gunicorn upgrade changes the reader."""
    from edgenode.node.contrib.tus import _SocketBody, body_stream
    body = os.urandom(3 * uploads.MB + 17)
    head = b"PATCH /x HTTP/1.1\r\nHost: n\r\nContent-Length: %d\r\n\r\n" % len(body)

    def rest(sock):
        for at in range(5000, len(body), 300_000):
            sock.sendall(body[at:at + 300_000])
        sock.sendall(b"HEAD /next HTTP/1.1\r\nHost: n\r\n\r\n")
    parser, environ, client, t = _gunicorn_request(head + body[:5000], rest)
    stream = body_stream(environ, "fallback")
    assert isinstance(stream, _SocketBody)
    assert _read_all(stream) == body
    t.join()
    follow = next(parser)
    assert (follow.method, follow.path) == ("HEAD", "/next")
    client.close()
    environ["gunicorn.socket"].close()


def test_a_cut_or_chunked_patch_body_under_gunicorn():
    """What came with the headers is taken at once, without waiting for more (a phone that stalls
    keeps it); a connection cut mid-body gives what arrived and then an end; a chunked body (no
    length) reads through the WSGI stream as before."""
    import threading
    from edgenode.node.contrib.tus import body_stream
    go = threading.Event()
    head = b"PATCH /x HTTP/1.1\r\nHost: n\r\nContent-Length: 2000\r\n\r\n" + b"a" * 500
    parser, environ, client, t = _gunicorn_request(head, lambda s: (go.wait(10), s.sendall(b"b" * 1500)))
    environ["gunicorn.socket"].settimeout(5)  # a read that waited for more would fail here
    stream, buf = body_stream(environ, "fallback"), memoryview(bytearray(uploads.READ))
    assert stream.readinto(buf) == 500 and buf[:500] == b"a" * 500
    go.set()
    assert _read_all(stream) == b"b" * 1500
    t.join()
    client.close()
    environ["gunicorn.socket"].close()
    body = os.urandom(uploads.MB)
    head = b"PATCH /x HTTP/1.1\r\nHost: n\r\nContent-Length: %d\r\n\r\n" % (2 * len(body))
    parser, environ, client, t = _gunicorn_request(head, lambda s: (s.sendall(body), s.close()))
    assert _read_all(body_stream(environ, "fallback")) == body
    t.join()
    environ["gunicorn.socket"].close()
    head = b"PATCH /x HTTP/1.1\r\nHost: n\r\nTransfer-Encoding: chunked\r\n\r\n"
    _, environ, client, t = _gunicorn_request(head, lambda s: s.sendall(b"3\r\nabc\r\n0\r\n\r\n"))
    assert body_stream(environ, "fallback") == "fallback"
    t.join()
    client.close()
    environ["gunicorn.socket"].close()
