"""/api/health (minimal vs token), and the admin health page with its diagnostics buttons."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import jsonschema
import pytest

from edgenode.node.app import create_app
from tests.helpers_portal import csrf_token, login, set_admin

TOKEN = "county-token-0123456789abcdef"
SCHEMA = json.loads((Path(__file__).parent.parent / "edgenode" / "node" / "health" / "schema.json").read_text())


@pytest.fixture
def happ(demo_cfg):
    a = create_app(demo_cfg.replace(health__token=TOKEN))
    a.config["TESTING"] = True
    return a


@pytest.fixture
def hclient(happ):
    return happ.test_client()


def test_anonymous_gets_only_ok_and_version(hclient):
    r = hclient.get("/api/health")
    assert r.status_code == 200
    assert r.get_json() == {"ok": True, "version": __import__("edgenode").__version__}


def test_token_gets_the_full_snapshot(hclient):
    r = hclient.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    snap = r.get_json()
    jsonschema.validate(snap, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert snap["content"]["resources"]["visible"] > 0 and snap["system"]["disk"]["total_bytes"] > 0
    # and the lower-case scheme works too (RFC 7235: the scheme is case-insensitive)
    assert hclient.get("/api/health", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


@pytest.mark.parametrize("header", [
    f"Bearer {TOKEN[:-1]}",          # one character short
    f"Bearer {TOKEN}x",              # one character long
    f"Bearer {TOKEN.upper()}",
    "Bearer ",
    "Bearer",
    f"Basic {TOKEN}",
    TOKEN,
    "Bearer 访问令牌",
])
def test_wrong_token_gets_401_and_nothing_else(hclient, header):
    r = hclient.get("/api/health", headers={"Authorization": header})
    assert r.status_code == 401
    body = r.get_json()
    assert body["ok"] is False and body["error"]["code"] == "E_HEALTH_TOKEN"
    assert "system" not in body and "version" not in body
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_without_a_configured_token_any_credentials_are_refused(client):
    assert client.get("/api/health").get_json()["ok"] is True
    assert client.get("/api/health", headers={"Authorization": "Bearer "}).status_code == 401
    assert client.get("/api/health", headers={"Authorization": "Bearer anything"}).status_code == 401


def test_admin_page_needs_login(hclient):
    r = hclient.get("/admin/health")
    assert r.status_code == 302 and "/admin/login" in r.headers["Location"]
    assert hclient.post("/admin/health/diagnostics", data={"target": "download"}).status_code in (302, 400)


@pytest.fixture
def admin(hclient, demo_conn):
    set_admin(demo_conn)
    assert login(hclient).status_code == 302
    return hclient


def test_admin_page_is_chinese_with_plain_warnings(admin, happ, demo_cfg):
    # Make the disk warning certain: the threshold is below the current use.
    happ.extensions["edgenode"].cfg = demo_cfg.replace(health__token=TOKEN, health__disk_warn_percent=0.0)
    html = admin.get("/admin/health").get_data(as_text=True)
    assert "运行状态" in html and "磁盘空间不足" in html and 'data-code="W_DISK_FULL"' in html
    for heading in ("电脑", "网络", "内容", "与县中心同步", "时钟", "软件", "诊断包"):
        assert heading in html
    assert "下载诊断包" in html
    # The nav bar of the admin pages links here.
    assert 'href="/admin/health"' in admin.get("/admin/").get_data(as_text=True)


def test_admin_download_is_a_redacted_bundle(admin):
    token = csrf_token(admin, "/admin/health")
    r = admin.post("/admin/health/diagnostics", data={"target": "download", "csrf_token": token})
    assert r.status_code == 200 and r.mimetype == "application/gzip"
    assert "attachment" in r.headers["Content-Disposition"]
    with tarfile.open(fileobj=io.BytesIO(r.data)) as tar:
        names = tar.getnames()
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert "edgenode-diagnose/snapshot.json" in names
    assert TOKEN.encode() not in blob


def test_admin_download_needs_csrf(admin):
    assert admin.post("/admin/health/diagnostics", data={"target": "download"}).status_code == 400


@pytest.mark.parametrize("target", ["{tmp}/elsewhere", "/", "/etc", "../../etc", "/media/../etc", ""])
def test_admin_refuses_a_target_that_is_not_a_usb_stick(admin, tmp_path, target):
    (tmp_path / "elsewhere").mkdir()
    token = csrf_token(admin, "/admin/health")
    r = admin.post("/admin/health/diagnostics", data={"target": target.format(tmp=tmp_path), "csrf_token": token},
                   follow_redirects=True)
    assert "没有找到这个U盘" in r.get_data(as_text=True)
    assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.root
def test_admin_writes_the_bundle_to_a_mounted_stick(admin, happ, demo_cfg, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a filesystem standing in for the USB stick")
    root = tmp_path / "media"
    stick = root / "U盘"
    stick.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(stick)], check=True)
    try:
        happ.extensions["edgenode"].cfg = demo_cfg.replace(health__token=TOKEN, usb__media_roots=[str(root)])
        html = admin.get("/admin/health").get_data(as_text=True)
        assert "写入U盘" in html and str(stick) in html
        token = csrf_token(admin, "/admin/health")
        r = admin.post("/admin/health/diagnostics", data={"target": str(stick), "csrf_token": token},
                       follow_redirects=True)
        assert "诊断包已写入U盘" in r.get_data(as_text=True)
        written = list(stick.glob("edgenode-diagnose-*.tar.gz"))
        assert len(written) == 1
        with tarfile.open(written[0]) as tar:
            assert "edgenode-diagnose/manifest.json" in tar.getnames()
        assert not list(stick.glob(".*.tmp"))

        # Read-only stick: a clear Chinese message and nothing written.
        subprocess.run(["mount", "-o", "remount,ro", str(stick)], check=True)
        r = admin.post("/admin/health/diagnostics", data={"target": str(stick), "csrf_token": token},
                       follow_redirects=True)
        assert "只读" in r.get_data(as_text=True)
        assert len(list(stick.iterdir())) == 1
    finally:
        subprocess.run(["umount", str(stick)], check=False)
