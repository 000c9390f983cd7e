"""Uploads through the shipped nginx site and gunicorn settings (issue 21): phones that send slowly
or stall hold at most 4 of gunicorn's 8 threads (4 PATCHes at once, 2 per address), so the portal
keeps answering; a refused PATCH gets a tus answer with a Chinese message that the page's client
retries on, and HEAD is never refused; once the stalled phones go, uploads go through again, whole."""

from __future__ import annotations

import json
import os
import re
import socket
import time

import pytest
import requests

from edgenode.core.db import open_main
from tests.conftest import make_config
from tests.helpers_contrib import meta_for, metadata_header, sha256
from tests.helpers_portal import Production

TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    work = tmp_path_factory.mktemp("contrib-serving")
    open_main(make_config(work / "data"), check=True).close()
    p = Production(work / "prod", work / "data")
    p.work = work
    yield p
    p.stop()


def _create(base: str, size: int, src) -> str:
    s = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(base + "/contrib/", timeout=10).text).group(1)
    r = s.post(base + "/api/v1/contrib/files", timeout=10, headers={
        **TUS, "Upload-Length": str(size), "X-CSRFToken": token, "Upload-Metadata": metadata_header(**meta_for(src))})
    assert r.status_code == 201, r.text
    return r.headers["Location"]


def _stalled_patch(prod, location: str, size: int, source_ip: str) -> socket.socket:
    """A phone that starts a PATCH of ``size`` bytes, sends 1000 of them and then nothing."""
    s = socket.create_connection(("127.0.0.1", prod.port), timeout=10, source_address=(source_ip, 0))
    s.sendall((f"PATCH {location} HTTP/1.1\r\nHost: n\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
               f"Content-Type: application/offset+octet-stream\r\nContent-Length: {size}\r\n\r\n").encode()
              + os.urandom(1000))
    return s


def _patch(base: str, location: str, data: bytes, source_ip: str = "127.0.0.1") -> requests.Response:
    s = requests.Session()
    s.mount("http://", _SourceAdapter(source_ip))
    return s.patch(base + location, data=data, timeout=30, headers={
        **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})


class _SourceAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, source_ip: str):
        self.source_ip = source_ip
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source_ip, 0)
        super().init_poolmanager(*args, **kwargs)


def test_stalled_uploads_hold_at_most_four_threads_and_the_portal_answers(prod, tmp_path):
    src = tmp_path / "v.mp4"
    src.write_bytes(os.urandom(3 * 1024 * 1024))
    size = src.stat().st_size
    base = prod.url
    held, spare = [], _create(base, size, src)
    stalled = [_create(base, size, src) for _ in range(4)]
    try:
        # Two stalled phones from each of two addresses: the 4 upload slots.
        for loc, ip in zip(stalled, ("127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3")):
            held.append(_stalled_patch(prod, loc, size, ip))
        # Each stalled PATCH is in gunicorn, streaming (a thread each): its first 1000 bytes are on disk.
        deadline = time.monotonic() + 20
        while (got := [_offset(base, loc) for loc in stalled]) != [1000] * 4:
            assert time.monotonic() < deadline, f"the stalled uploads did not reach gunicorn: {got}"
            time.sleep(0.1)
        # HEAD still answers (a refused HEAD would make tus-js-client start the upload again from 0).
        assert _offset(base, spare) == 0
        # A third PATCH from a busy address, and one from a new address: refused for a slot, in tus terms.
        for ip in ("127.0.0.2", "127.0.0.4"):
            r = _patch(base, spare, src.read_bytes(), ip)
            assert r.status_code == 503, (ip, r.status_code, r.headers, r.text)
            assert r.headers["Tus-Resumable"] == "1.0.0" and r.headers["Retry-After"]
            err = json.loads(r.content)["error"]
            assert err["code"] == "E_CONTRIB_TOO_MANY" and "同时上传的人太多" in err["message_zh"]
        # The portal still answers: the stalled uploads hold 4 threads of 8 (with all 8 held, these
        # requests would wait for a thread until the timeout).
        for path in ("/", "/contrib/", "/static/portal.css"):
            assert requests.get(base + path, timeout=10).status_code == 200
    finally:
        for s in held:
            s.close()
    # The phones gone, their threads come back (each kept the bytes it got) and a whole upload goes through.
    deadline = time.monotonic() + 15
    while True:
        r = _patch(base, spare, src.read_bytes())
        if r.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 204 and r.headers["Upload-Offset"] == str(size), r.text
    stored = prod.work / "data" / "contrib" / "incoming" / f"{spare.rsplit('/', 1)[-1]}.mp4"
    assert sha256(stored) == sha256(src)
    assert [_offset(base, loc) for loc in stalled] == [1000] * 4  # each kept what it got


def _offset(base: str, location: str) -> int:
    r = requests.head(base + location, headers=TUS, timeout=10)
    assert r.status_code == 200, r.status_code
    return int(r.headers["Upload-Offset"])
