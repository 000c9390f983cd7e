"""Hostile uploads at the point (issue 21): each refused with its code and a Chinese message, and
the upload area (DATA/contrib/) exactly as it was before, apart from the refused row's record."""

from __future__ import annotations

import os
import re
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from edgenode.node.contrib import process, uploads
from edgenode.node.contrib import queries as q
from tests.helpers_contrib import OCTETS, TUS, make_audio, make_picture, make_video, meta_for, metadata_header, sha256
from tests.helpers_portal import csrf_token

CJK = re.compile(r"[\u4e00-\u9fff]")

@pytest.fixture
def client(cfg, conn):
    """The node app on an empty data directory (conftest's ``cfg``/``conn``): uploads need no library."""
    from edgenode.node.app import create_app
    return create_app(cfg).test_client()


def png_bomb(path: Path, side: int = 9000) -> Path:
    """A real PNG of side×side grey pixels (81 MB decoded; the cap is 40 M pixels) in about 80 KB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    z = zlib.compressobj(9)
    row = b"\0" * (side + 1)
    body = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def jpeg_claiming(path: Path, side: int = 60000) -> Path:
    """A small real JPEG whose frame header claims side×side pixels."""
    make_picture(path, gps=False, size="64x64")
    data = bytearray(path.read_bytes())
    at = 2
    while not (0xC0 <= data[at + 1] <= 0xC3):
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    data[at + 5:at + 9] = side.to_bytes(2, "big") * 2
    path.write_bytes(bytes(data))
    return path


def zip_bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("video.mp4", b"\0" * (40 * 1024 * 1024))  # 40 MB in 40 KB
    return path


def snapshot(cfg) -> dict:
    root = cfg.data_path / "contrib"
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")
            if p.is_file() and p.name != "process.lock"} if root.exists() else {}  # the job's lock file


def _upload(client, path: Path, filename: str, **meta):
    token = csrf_token(client, "/contrib/")
    size = path.stat().st_size
    r = client.post("/api/v1/contrib/files", headers={
        **TUS, "Upload-Length": str(size), "X-CSRFToken": token,
        "Upload-Metadata": metadata_header(**meta_for(path, filename=filename, **meta))})
    if r.status_code != 201:
        return r, None
    loc = r.headers["Location"]
    r = client.patch(loc, data=path.read_bytes(), headers={**OCTETS, "Upload-Offset": "0"})
    return r, loc.rsplit("/", 1)[-1]


# (case, how to make the file, the name it claims, extra metadata, expected code, where it is refused)
CASES = [
    ("wrong extension", lambda d: (d / "x.exe").write_bytes(b"MZ" + os.urandom(4000)) and d / "x.exe", "setup.exe",
     {}, "E_CONTRIB_TYPE", "create"),
    ("a zip, as such", lambda d: zip_bomb(d / "b.zip"), "bomb.zip", {}, "E_CONTRIB_TYPE", "create"),
    ("zip bomb named .mp4", lambda d: zip_bomb(d / "b.zip"), "bomb.mp4", {}, "E_CONTRIB_NOT_MEDIA", "process"),
    ("text lying as .mp4", lambda d: (d / "t.mp4").write_text("不是视频" * 500) and d / "t.mp4", "t.mp4", {},
     "E_CONTRIB_LIES", "process"),
    ("text lying as .mp3", lambda d: (d / "t.mp3").write_text("不是录音" * 500) and d / "t.mp3", "t.mp3", {},
     "E_CONTRIB_LIES", "process"),
    ("random bytes as .mp4", lambda d: (d / "r.mp4").write_bytes(os.urandom(100000)) and d / "r.mp4", "r.mp4", {},
     "E_CONTRIB_NOT_MEDIA", "process"),
    ("audio lying as .jpg", lambda d: make_audio(d / "a.mp3"), "photo.jpg", {}, "E_CONTRIB_LIES", "process"),
    ("video lying as .mp3", lambda d: make_video(d / "v.mp4", gps=False), "song.mp3", {}, "E_CONTRIB_LIES", "process"),
    ("decompression bomb picture", lambda d: png_bomb(d / "b.png"), "big.png", {}, "E_CONTRIB_BOMB", "process"),
    ("JPEG claiming 60000x60000", lambda d: jpeg_claiming(d / "j.jpg"), "j.jpg", {}, "E_CONTRIB_BOMB", "process"),
    ("no consent", lambda d: make_picture(d / "p.jpg", gps=False), "p.jpg", {"consent": ""}, "E_CONTRIB_CONSENT",
     "create"),
    ("a phone number as credit", lambda d: make_picture(d / "p.jpg", gps=False), "p.jpg",
     {"credit": "张三 13812345678"}, "E_CONTRIB_PHONE", "create"),
    ("unknown campaign", lambda d: make_picture(d / "p.jpg", gps=False), "p.jpg", {"campaign": "../../etc"},
     "E_CONTRIB_CAMPAIGN", "create"),
]


@pytest.mark.parametrize("case,make,filename,meta,code,stage", CASES, ids=[c[0] for c in CASES])
def test_hostile_upload(client, cfg, conn, tmp_path, case, make, filename, meta, code, stage):
    src = make(tmp_path)
    before = snapshot(cfg)
    r, cid = _upload(client, src, filename, **meta)
    if stage == "create":
        assert r.status_code in (400, 413, 415) and r.json["error"]["code"] == code, r.get_data(as_text=True)
        assert CJK.search(r.json["error"]["message_zh"])
        assert q.contributions(conn) == []
    else:
        assert r.status_code == 204
        out = process.run_job(cfg)["result"]["processed"]
        assert out == [{"id": cid, "state": "failed", "code": code}]
        row = q.contribution(conn, cid)
        assert row["state"] == "failed" and row["code"] == code and CJK.search(row["reason"])
    after = snapshot(cfg)
    assert {k: v for k, v in after.items() if not k.startswith("uploads/")} == \
        {k: v for k, v in before.items() if not k.startswith("uploads/")}
    assert not any(k.startswith(("incoming/", "ready/")) for k in after)
    assert all(v == 0 for k, v in after.items() if k.startswith("uploads/")) or stage == "create"


def test_traversal_names_and_ids_touch_nothing_outside(client, cfg, conn, tmp_path):
    src = make_picture(tmp_path / "p.jpg", gps=False)
    outside = cfg.data_path / "evil.jpg"
    r, _ = _upload(client, src, ".././.jpg")  # nothing but dots and a suffix: no name, no type
    assert r.status_code == 415 and r.json["error"]["code"] == "E_CONTRIB_TYPE"
    for name in ("../../evil.jpg", "..\\..\\evil.jpg", "/etc/evil.jpg", "\x00../evil.jpg"):
        r, cid = _upload(client, src, name)
        assert r.status_code == 204, (name, r.get_data(as_text=True))
        row = q.contribution(conn, cid)
        assert "/" not in row["filename"] and "\\" not in row["filename"] and ".." not in row["filename"]
        assert (cfg.data_path / "contrib" / "incoming" / f"{cid}.jpg").is_file()
    assert not outside.exists() and not Path("/etc/evil.jpg").exists()
    for bad in ("..%2F..%2Fsecret_key", "../secret_key", "0" * 31 + "g", "%2e%2e"):
        r = client.open(f"/api/v1/contrib/files/{bad}", method="HEAD", headers=TUS)
        assert r.status_code in (404, 405), bad
        r = client.patch(f"/api/v1/contrib/files/{bad}", data=b"x", headers={**OCTETS, "Upload-Offset": "0"})
        assert r.status_code in (404, 405), bad
    assert (cfg.data_path / "secret_key").exists()


def test_more_bytes_than_declared_are_refused(client, cfg, conn, tmp_path):
    src = make_picture(tmp_path / "p.jpg", gps=False)
    token = csrf_token(client, "/contrib/")
    r = client.post("/api/v1/contrib/files", headers={**TUS, "Upload-Length": "100", "X-CSRFToken": token,
                                                      "Upload-Metadata": metadata_header(**meta_for(src))})
    loc = r.headers["Location"]
    r = client.patch(loc, data=src.read_bytes(), headers={**OCTETS, "Upload-Offset": "0"})
    assert r.status_code == 413 and r.json["error"]["code"] == "E_CONTRIB_TOO_LONG"
    assert q.contributions(conn) == []


@pytest.mark.root
def test_a_disk_filling_mid_upload_loses_nothing_and_resumes(cfg, conn, tmp_path):
    from tests.helpers_storage import small_fs
    cfg = cfg.replace(store__free_space_floor_mb=0)
    src = make_video(tmp_path / "v.mp4", seconds=2, noise=True)
    size = src.stat().st_size
    with small_fs(cfg.data_path / "contrib", size_kib=size // 1024 + 512):
        cid = uploads.create(cfg, conn, size, meta_for(src))
        filler = cfg.data_path / "contrib" / "filler"
        filler.write_bytes(b"\0" * (size // 2))  # someone else takes half the room meanwhile
        with open(src, "rb") as f:
            with pytest.raises(Exception) as e:
                uploads.append(cfg, conn, cid, 0, f, size)
        assert e.value.code == "E_DISK_FULL" and e.value.status == 507 and "空间不足" in e.value.zh
        held, _ = uploads.offset(cfg, conn, cid)
        assert 0 < held < size and src.read_bytes()[:held] == uploads.part_path(cfg, cid).read_bytes()
        filler.unlink()  # the administrator frees space: the upload resumes from what it held
        with open(src, "rb") as f:
            f.seek(held)
            assert uploads.append(cfg, conn, cid, held, f, size - held) == size
        assert sha256(cfg.data_path / "contrib" / "incoming" / f"{cid}.mp4") == sha256(src)
