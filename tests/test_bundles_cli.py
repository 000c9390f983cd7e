"""The bundle commands end to end: keys, build, sign, verify, trust, import, history."""

from __future__ import annotations

import json
import shutil
import subprocess

from tests.helpers_bundles import make_source


def test_publish_and_import_with_the_cli(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = runner("keys", "generate")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "edgenode.key").exists() and (tmp_path / "edgenode.pub").exists()
    assert runner("keys", "generate").exit_code == 1  # never overwrite a key silently

    src = make_source(tmp_path / "src", n=3)
    r = runner("bundle", "build", str(src), "--channel", "sannong", "--out", str(tmp_path / "out"),
               "--key", "edgenode.key")
    assert r.exit_code == 0, r.output
    bundle = tmp_path / "out" / "sannong-00000001"
    assert (bundle / "manifest.json.minisig").exists()
    # minisign itself accepts the signature.
    if shutil.which("minisign"):
        assert subprocess.run(["minisign", "-V", "-p", "edgenode.pub", "-m", str(bundle / "manifest.json")],
                              capture_output=True).returncode == 0

    r = runner("bundle", "verify", str(bundle), "--pubkey", "edgenode.pub")
    assert r.exit_code == 0 and "OK: sannong #1, 3 resources" in r.output, r.output

    # Not trusted yet: refused with a stable code.
    r = runner("import", str(tmp_path / "out"))
    assert r.exit_code == 1 and "E_SIG_UNTRUSTED" in r.output

    r = runner("trust", "add", "edgenode.pub", "--channel", "sannong", "--comment", "县图书馆")
    assert r.exit_code == 0, r.output
    r = runner("trust", "list", "--json")
    keys = json.loads(r.output)["keys"]
    assert keys[0]["channels"] == ["sannong"] and keys[0]["comment"] == "县图书馆"

    r = runner("import", str(tmp_path / "out"))
    assert r.exit_code == 0, r.output
    assert "导入完成：3 个资源" in r.output
    r = runner("list", "--json")
    ids = {x["id"] for x in json.loads(r.output)}
    assert {"sannong.doc000", "sannong.doc001", "sannong.doc002"} <= ids

    # A second build gets the next sequence; re-importing the old one is a no-op.
    src2 = make_source(tmp_path / "src2", n=2, seed=1)
    r = runner("bundle", "build", str(src2), "--channel", "sannong", "--out", str(tmp_path / "out"),
               "--key", "edgenode.key", "--withdraw", "doc002")
    assert "sannong-00000002" in r.output
    r = runner("import", "--json", str(tmp_path / "out"))
    results = json.loads(r.output)
    assert [x["result"] for x in results] == ["unchanged", "imported"]
    assert results[1]["withdrawn"] == 1

    r = runner("imports", "--json")
    history = json.loads(r.output)
    assert history[0]["result"] == "imported" and history[0]["seq"] == 2

    key_id = keys[0]["key_id"]
    assert runner("trust", "remove", key_id).exit_code == 0
    assert runner("trust", "remove", key_id).exit_code == 1


def test_sign_later_and_verify_detects_tampering(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner("keys", "generate")
    key_id = (tmp_path / "edgenode.pub").read_text().split()[-2]
    src = make_source(tmp_path / "src", n=1)
    r = runner("bundle", "build", str(src), "--channel", "pushi", "--out", "out", "--key-id", key_id, "--seq", "7")
    assert r.exit_code == 0 and "unsigned" in r.output, r.output
    bundle = tmp_path / "out" / "pushi-00000007"
    r = runner("bundle", "verify", str(bundle), "--pubkey", "edgenode.pub")
    assert r.exit_code == 1 and "E_SIG_MISSING" in r.output
    assert runner("bundle", "sign", str(bundle), "--key", "edgenode.key", "--legacy").exit_code == 0
    assert runner("bundle", "verify", str(bundle), "--pubkey", "edgenode.pub").exit_code == 0
    f = next((bundle / "files").iterdir())
    f.write_bytes(f.read_bytes()[:-1] + b"X")
    r = runner("bundle", "verify", str(bundle), "--pubkey", "edgenode.pub")
    assert r.exit_code == 1 and "E_HASH_MISMATCH" in r.output


def test_import_of_a_folder_without_bundles(runner, tmp_path):
    (tmp_path / "empty").mkdir()
    r = runner("import", str(tmp_path / "empty"))
    assert r.exit_code == 1 and "E_NO_BUNDLES" in r.output
