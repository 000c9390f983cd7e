"""The diagnostics bundle: every listed part, and no planted secret anywhere in it."""

from __future__ import annotations

import json
import subprocess
import tarfile

import pytest

from edgenode.core import jobs
from edgenode.core.config import MASK
from edgenode.core.db import open_volatile
from edgenode.node.health import diagnostics

SECRET_TOKEN = "PLANTED-health-token-7f3a9c"
SECRET_KEY = "PLANTED-session-key-b81d02"
HUB_KEY = "PLANTED-hub-key-55e1aa"
PARTS = ("snapshot.json", "config.json", "history/imports.json", "history/jobs.json", "migrations.json",
         "packages.txt", "system.txt", "manifest.json")


def write_config(tmp_path, data_dir, **extra):
    lines = [f'data_dir = "{data_dir}"', "[health]", f'token = "{SECRET_TOKEN}"',
             "[web]", f'secret_key = "{SECRET_KEY}"', "[hub]", f'secret_key = "{HUB_KEY}"',
             "[node]", 'name = "某某村文化服务点"']
    p = tmp_path / "edgenode.toml"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


@pytest.fixture
def planted(tmp_path, demo_cfg):
    """A demo node with secrets in its config, in a log line, in a job message and in the key file."""
    data = demo_cfg.data_path
    conf = write_config(tmp_path, data)
    logs = data / "logs"
    logs.mkdir()
    (logs / "edgenode.log").write_text(
        "2026-01-01 10:00:00 INFO started\n"
        f"2026-01-01 10:00:01 DEBUG hub said: token={SECRET_TOKEN} key {SECRET_KEY}\n"
        "2026-01-01 10:00:02 DEBUG request Authorization: Bearer some-other-bearer-value-123\n"
        "2026-01-01 10:00:03 WARNING 磁盘空间不足 upstream password=hunter2hunter2\n", encoding="utf-8")
    (data / "secret_key").write_text("generated-session-key-0a1b2c3d4e\n")
    v = open_volatile(demo_cfg)
    try:
        j = jobs.start(v, "pull")
        jobs.finish(v, j, "failed", f"E_RSYNC: auth failed with {SECRET_TOKEN}")
    finally:
        v.close()
    return conf, data


def extract(path, dest):
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            assert not m.name.startswith("/") and ".." not in m.name.split("/")
            assert m.isfile() or m.isdir(), f"{m.name}: not a plain file or folder"
        # No filter= here: Debian 12's Python is 3.11.2 and extraction filters came in 3.11.4; the
        # checks above already refuse what the "data" filter would.
        tar.extractall(dest)
    return dest / "edgenode-diagnose"


def test_bundle_has_every_part_and_no_planted_secret(planted, runner, tmp_path):
    conf, data = planted
    out = tmp_path / "diag.tar.gz"
    r = runner("--config", str(conf), "diagnose", "--out", str(out))
    assert r.exit_code == 0, r.output
    root = extract(out, tmp_path / "x")

    for part in PARTS:
        assert (root / part).is_file(), part
    logs = sorted(p.name for p in (root / "logs").iterdir())
    assert logs and any("edgenode.log" in n for n in logs), logs
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["failed"] == {}
    assert set(manifest["files"]) >= set(PARTS) - {"manifest.json"}

    # The parts carry real content.
    snap = json.loads((root / "snapshot.json").read_text())
    assert snap["node"]["name"] == "某某村文化服务点" and snap["content"]["resources"]["visible"] > 0
    assert {m["area"] for m in json.loads((root / "migrations.json").read_text())} >= {"catalog", "usage"}
    assert any(j["kind"] == "pull" for j in json.loads((root / "history/jobs.json").read_text()))
    pk = (root / "packages.txt").read_text()
    assert "zeroconf\t" in pk and "psutil\t" in pk
    if subprocess.run(["which", "dpkg-query"], capture_output=True).returncode == 0:
        assert "rsync\t" in pk
    cfg = json.loads((root / "config.json").read_text())
    assert cfg["config"]["health"]["token"] == MASK and cfg["config"]["web"]["secret_key"] == MASK
    log_text = "".join(p.read_text() for p in (root / "logs").iterdir())
    assert "磁盘空间不足" in log_text and "started" in log_text  # the log is there, only the secrets are gone

    # grep the whole extracted tree for every planted secret, like `grep -r` would.
    for secret in (SECRET_TOKEN, SECRET_KEY, HUB_KEY, "generated-session-key-0a1b2c3d4e",
                   "some-other-bearer-value-123", "hunter2hunter2"):
        hits = subprocess.run(["grep", "-rlF", secret, str(root)], capture_output=True, text=True)
        assert hits.returncode == 1, f"{secret!r} leaked into {hits.stdout}"
    # and the compressed archive itself, in case something bypassed the tar members
    assert SECRET_TOKEN.encode() not in tarfile.open(out).extractfile(
        "edgenode-diagnose/history/jobs.json").read()


def test_output_directory_gets_a_generated_name(planted, runner, tmp_path):
    conf, _ = planted
    outdir = tmp_path / "stick"
    outdir.mkdir()
    r = runner("--config", str(conf), "diagnose", "--out", str(outdir))
    assert r.exit_code == 0, r.output
    files = list(outdir.iterdir())
    assert len(files) == 1 and files[0].name.startswith("edgenode-diagnose-") and files[0].name.endswith(".tar.gz")
    assert files[0].stat().st_mode & 0o077 == 0  # only root may read it


def test_missing_directory_is_a_clear_error_and_writes_nothing(runner, tmp_path, cfg):
    r = runner("diagnose", "--out", str(tmp_path / "no" / "such" / "dir" / "x.tar.gz"))
    assert r.exit_code == 1
    assert "E_DIAGNOSE" in r.output and "no such directory" in r.output
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("text, secret", [
    ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
    ("curl -H 'authorization: bearer XYZ123456789'", "XYZ123456789"),
    ("password=topsecret&user=a", "topsecret"),
    ('{"token": "s3cr3t"}', None),  # a JSON key is not an assignment: masked only if it is a configured secret
    ("api_key: k-123", "k-123"),
])
def test_redaction_patterns(text, secret):
    out = diagnostics.redact(text, [])
    if secret:
        assert secret not in out and MASK in out
    else:
        assert out == text


def test_configured_secret_is_redacted_in_json_escaped_form(cfg):
    odd = 'tok"en\\with/quotes-和中文'
    c = cfg.replace(health__token=odd)
    secrets = diagnostics.secret_values(c)
    doc = json.dumps({"message": f"failed with {odd}"})
    doc_zh = json.dumps({"message": f"failed with {odd}"}, ensure_ascii=False)
    assert "quotes" not in diagnostics.redact(doc, secrets)
    assert "quotes" not in diagnostics.redact(doc_zh, secrets)


def test_killed_mid_write_never_leaves_a_partial_archive(planted, tmp_path):
    """SIGKILL at random moments: the target is either absent or a complete, readable archive."""
    import os
    import random
    import signal
    import sys
    import time
    from pathlib import Path

    conf, data = planted
    edgenode = str(Path(sys.executable).with_name("edgenode"))
    env = {**os.environ, "EDGENODE_CONFIG": str(conf)}
    out = tmp_path / "out"
    out.mkdir()
    rng = random.Random(5)
    for i in range(4):
        target = out / f"d{i}.tar.gz"
        p = subprocess.Popen([edgenode, "--data-dir", str(data), "diagnose", "--out", str(target)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 2.0))
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=60)
        if target.exists():
            with tarfile.open(target) as tar:
                assert "edgenode-diagnose/manifest.json" in tar.getnames()
    # Whatever was left behind is only hidden temp files, never a half archive under the real name.
    assert all(f.name.startswith(".") or f.name.endswith(".tar.gz") for f in out.iterdir())
    p = subprocess.run([edgenode, "--data-dir", str(data), "diagnose", "--out", str(out / "last.tar.gz")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert tarfile.open(out / "last.tar.gz").getnames()
