"""Content pull from a real rsync daemon on loopback: import, unchanged re-pull, cut links, window end."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from edgenode.core.db import open_main
from edgenode.core.errors import EdgenodeError
from edgenode.core.store import open_store
from edgenode.node.sources import pull
from edgenode.node.sync.runner import run_job
from tests.conftest import make_config
from tests.helpers_bundles import new_key, trust_key
from tests.helpers_sync import CuttingProxy, Rsyncd, publish_bundle


@pytest.fixture
def published(tmp_path):
    """A hub's rsync tree with two signed bundles of channel sannong (about 9 MB), and its daemon."""
    sk = new_key(tmp_path)
    out = tmp_path / "hub" / "rsync" / "channels" / "sannong"
    for seq in (1, 2):
        publish_bundle(tmp_path / "pub", out, sk, "sannong", seq, n=3, size=1_500_000, seed=seq)
    d = Rsyncd(tmp_path / "hub" / "rsync", tmp_path / "rsyncd").start()
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    yield {"sk": sk, "root": out, "rsyncd": d, "total": total}
    d.stop()


def _node(tmp_path, sk, url, **kw):
    cfg = make_config(tmp_path / "node", sync__rsync_url=url, sync__channels=["sannong"], **kw)
    conn = open_main(cfg)
    trust_key(conn, sk, "sannong")
    return cfg, conn


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and pull.PARTIAL_DIR not in p.parts and
            p.name != pull.MARKER}


def _visible(conn) -> int:
    return conn.execute("SELECT count(*) FROM resources WHERE channel = 'sannong' AND visible = 1").fetchone()[0]


def test_pull_imports_and_unchanged_repull_moves_almost_nothing(tmp_path, published):
    cfg, conn = _node(tmp_path, published["sk"], published["rsyncd"].url)
    r = run_job(cfg, "pull", ignore_windows=True)
    assert r["state"] == "done", r
    assert r["result"]["imported"] == 2 and r["result"]["import_failures"] == 0
    assert _visible(conn) == 6
    assert _tree(pull.staging_root(cfg) / "sannong") == _tree(published["root"])
    first = r["result"]["wire_bytes"]
    # the staging mirror shares its files with the store: no second copy on the disk
    assert r["result"]["channels"][0]["shared_bytes"] >= published["total"] - 100_000
    linked = [p for p in (pull.staging_root(cfg) / "sannong").rglob("*.pdf")]
    assert len(linked) == 6 and all(p.stat().st_nlink == 2 for p in linked)
    r2 = run_job(cfg, "pull", ignore_windows=True)
    assert r2["state"] == "done" and r2["result"]["imported"] == 0
    moved = r2["result"]["wire_bytes"]
    ratio = moved / published["total"]
    print(f"\nfirst pull moved {first} bytes; unchanged re-pull moved {moved} of {published['total']} bytes "
          f"({ratio:.5%})")
    assert ratio < 0.001
    assert _visible(conn) == 6
    assert all(p.stat().st_nlink == 2 for p in linked)  # the re-pull left the shared files alone
    from edgenode.core.store import open_store
    assert open_store(cfg).verify()["bad"] == []
    # the hub drops a superseded bundle from its tree: the mirror follows (the marker is there), the
    # catalogue keeps what was imported (only a signed withdraw hides a resource)
    import shutil
    old = sorted(published["root"].iterdir())[0]
    shutil.rmtree(old)
    assert run_job(cfg, "pull", ignore_windows=True)["state"] == "done"
    assert not (pull.staging_root(cfg) / "sannong" / old.name).exists()
    assert _tree(pull.staging_root(cfg) / "sannong") == _tree(published["root"])
    assert _visible(conn) == 6 and open_store(cfg).verify()["bad"] == []
    conn.close()


def test_pull_survives_twenty_cut_connections(tmp_path, published):
    # each cut comes before 1/30 of the content, so all 20 land mid-transfer
    proxy = CuttingProxy(published["rsyncd"].port, cuts=20, max_bytes=published["total"] // 30, seed=7)
    try:
        cfg, conn = _node(tmp_path, published["sk"], f"rsync://127.0.0.1:{proxy.port}/edgenode")
        r = pull.pull(cfg, conn, open_store(cfg), retries=40, retry_delay=0.01)
        ch, = r["channels"]
        assert r["state"] == "done", ch["error"]
        assert proxy.cuts_done == 20 and ch["attempts"] == 20 + 2  # 20 cut, then each of the two phases whole
        assert r["imported"] == 2 and _visible(conn) == 6  # imported = every blob re-hashed and verified
        assert _tree(pull.staging_root(cfg) / "sannong") == _tree(published["root"])
        resent = proxy.bytes_down - published["total"]
        print(f"\n20 cuts: {ch['attempts']} attempts, {proxy.bytes_down} bytes through the proxy for "
              f"{published['total']} bytes of content: {resent} bytes of protocol overhead and resends "
              f"({resent / published['total']:.1%})")
        conn.close()
    finally:
        proxy.close()


def test_window_end_keeps_partial_data_and_next_window_finishes(tmp_path, published):
    cfg, conn = _node(tmp_path, published["sk"], published["rsyncd"].url)
    # 2 MiB/s for a 9 MB channel: the "window" closes after 2.5 s, mid-transfer
    r = pull.pull(cfg, conn, open_store(cfg), bwlimit=2048, deadline=time.monotonic() + 2.5)
    assert r["state"] == "partial" and r["imported"] == 0
    staged = pull.staging_root(cfg) / "sannong"
    kept = sum(p.stat().st_size for p in staged.rglob("*") if p.is_file() and pull.PARTIAL_DIR in p.parts)
    assert kept > 500_000  # the partial data survived the SIGTERM
    assert _visible(conn) == 0  # --delay-updates: nothing half-new became visible
    r2 = run_job(cfg, "pull", ignore_windows=True)
    assert r2["state"] == "done" and r2["result"]["imported"] == 2
    stats = r2["result"]["channels"][0]["stats"]
    print(f"\nwindow end: {kept} bytes kept; the next window moved {stats['literal']} literal bytes "
          f"of {published['total']}")
    assert stats["literal"] < published["total"] - kept // 2
    assert _visible(conn) == 6
    conn.close()


def test_job_progress_is_recorded(tmp_path, published):
    cfg, conn = _node(tmp_path, published["sk"], published["rsyncd"].url)
    seen = []
    r = pull.pull(cfg, conn, open_store(cfg), bwlimit=4096, report=lambda **kw: seen.append(kw))
    assert r["state"] == "done"
    assert len(seen) >= 2 and seen[-1]["bytes_done"] > 0
    assert all(s["bytes_total"] >= s["bytes_done"] for s in seen)
    conn.close()


def test_no_delete_into_a_tree_without_the_marker(tmp_path, published):
    cfg, conn = _node(tmp_path, published["sk"], published["rsyncd"].url)
    root = pull.staging_root(cfg)
    root.mkdir(parents=True)
    (root / "precious.txt").write_text("not ours")  # e.g. an unmounted disk's mount point with other files
    with pytest.raises(EdgenodeError) as e:
        pull.pull(cfg, conn, open_store(cfg))
    assert e.value.code == "E_STAGING_MARKER"
    assert (root / "precious.txt").read_text() == "not ours"
    conn.close()


def test_no_staging_without_a_data_disk(tmp_path, published):
    cfg = make_config(tmp_path / "unmounted", sync__rsync_url=published["rsyncd"].url, sync__channels=["sannong"])
    with pytest.raises(EdgenodeError) as e:
        pull.ensure_marker(cfg)
    assert e.value.code == "E_STAGING_ROOT"
    assert not pull.staging_root(cfg).exists()


def test_files_the_storage_policy_leaves_out_are_not_fetched(tmp_path, published):
    cfg, conn = _node(tmp_path, published["sk"], published["rsyncd"].url)
    bundles = sorted(p.name for p in published["root"].iterdir())
    seen_manifests = []

    def unwanted(root):  # called between the phases: the new manifests are already there
        seen_manifests.extend(sorted(p.parent.name for p in root.glob("*/manifest.json")))
        return [f"{bundles[0]}/files/doc000.pdf", f"{bundles[1]}/files/doc002.pdf"]

    res = pull.rsync_channel(cfg, "sannong", unwanted=unwanted)
    assert res.state == "done" and res.skipped_files == 2 and seen_manifests == bundles
    staged = pull.staging_root(cfg) / "sannong"
    assert not (staged / bundles[0] / "files" / "doc000.pdf").exists()
    assert not (staged / bundles[1] / "files" / "doc002.pdf").exists()
    assert (staged / bundles[0] / "files" / "doc001.pdf").stat().st_size == 1_500_000
    assert res.stats["transferred_size"] < published["total"] - 2 * 1_400_000
    conn.close()


@pytest.mark.parametrize("channel", ["../../etc", "", "a/b", ".", "Sannong", "x" * 40])
def test_hostile_channel_names_are_refused(tmp_path, channel):
    cfg = make_config(tmp_path / "node", sync__rsync_url="rsync://127.0.0.1:1/edgenode")
    open_main(cfg).close()
    with pytest.raises(EdgenodeError) as e:
        pull.rsync_channel(cfg, channel)
    assert e.value.code == "E_CHANNEL_NAME"
    assert not pull.staging_root(cfg).exists()


def test_progress2_and_stats_parsing():
    p = pull._Progress(None)
    p(b"      1,048,576  25%    1.00MB/s    0:00:03 (xfr#1, to-chk=3/4)\r   2,097,152  50%")
    p(b"   1.00MB/s    0:00:02 (xfr#1, to-chk=2/4)\r")
    assert (p.done, p.percent) == (2097152, 50)
    assert pull.parse_stats("Total bytes sent: 1,234\nTotal bytes received: 56\nLiteral data: 0 bytes\n") == \
        {"sent": 1234, "received": 56, "literal": 0}


def test_end_to_end_with_the_hubs_own_publish_and_rsyncd_conf(tmp_path):
    """The hub publishes with `edgenode hub publish`, serves with the rsyncd.conf that
    `edgenode hub rsyncd-conf` writes; the node trusts `edgenode hub key` and runs `edgenode sync now`."""
    import json
    import os
    import random
    import subprocess
    import sys
    from tests.helpers_sync import ROOT, free_port, wait_port

    def edgenode(data, *args, env=None):
        out = subprocess.run([sys.executable, "-m", "edgenode", "--data-dir", str(data), *args], cwd=ROOT,
                             env={**os.environ, "EDGENODE_CONFIG": "", **(env or {})}, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr + out.stdout
        return out.stdout

    hub, node, port = tmp_path / "hub", tmp_path / "node", free_port()
    rnd = random.Random(5)
    for seq in (1, 2):
        src = tmp_path / f"src{seq}"
        src.mkdir()
        res = []
        for i in range(2):
            (src / f"d{i}.pdf").write_bytes(b"%PDF-1.4\n" + rnd.randbytes(300_000) + b"\n%%EOF\n")
            res.append({"id": f"s{seq}-d{i}", "path": f"d{i}.pdf", "title": f"资料 {seq}-{i}", "column": "sannong"})
        (src / "resources.json").write_text(json.dumps(res, ensure_ascii=False), encoding="utf-8")
        if seq == 1:
            edgenode(hub, "hub", "publish", str(src), "--channel", "sannong")
    (tmp_path / "county.pub").write_text(edgenode(hub, "hub", "key"))
    conf = tmp_path / "rsyncd.conf"
    conf.write_text(edgenode(hub, "hub", "rsyncd-conf", env={"EDGENODE_HUB_RSYNC_PORT": str(port)}))
    daemon = subprocess.Popen(["rsync", "--daemon", "--no-detach", f"--config={conf}", "--address=127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=daemon)
        env = {"EDGENODE_SYNC_RSYNC_URL": f"rsync://127.0.0.1:{port}/edgenode", "EDGENODE_SYNC_CHANNELS": '["sannong"]'}
        edgenode(node, "trust", "add", str(tmp_path / "county.pub"), "--channel", "sannong")
        out = json.loads(edgenode(node, "sync", "now", "--job", "pull", "--json", env=env))
        assert out[0]["state"] == "done" and out[0]["result"]["imported"] == 1, out
        edgenode(hub, "hub", "publish", str(tmp_path / "src2"), "--channel", "sannong")
        out = json.loads(edgenode(node, "sync", "now", "--job", "pull", "--json", env=env))
        assert out[0]["state"] == "done" and out[0]["result"]["imported"] == 1, out
        conn = open_main(make_config(node))
        assert _visible(conn) == 4
        conn.close()
    finally:
        daemon.terminate()
        daemon.wait(5)
