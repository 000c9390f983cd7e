import hashlib
import io

import pytest

from edgenode.node.catalog import queries as q
from edgenode.core.store import HashMismatch, Store, StoreError


def test_put_is_content_addressed_and_fanned_out(store):
    r = store.put_bytes(b"hello")
    sha = hashlib.sha256(b"hello").hexdigest()
    assert r.sha256 == sha and r.size == 5 and not r.existed
    assert store.path_for(sha) == store.root / sha[:2] / sha[2:4] / sha
    assert store.path_for(sha).read_bytes() == b"hello"
    assert store.put_bytes(b"hello").existed
    assert list(store.staging.iterdir()) == []


def test_expected_hash_and_size_are_enforced(store):
    with pytest.raises(HashMismatch):
        store.put_stream(io.BytesIO(b"abc"), expected_sha256="0" * 64)
    with pytest.raises(StoreError, match="E_SIZE_MISMATCH|expected"):
        store.put_stream(io.BytesIO(b"abc"), expected_size=4)
    with pytest.raises(StoreError):
        store.put_stream(io.BytesIO(b"abcdef"), expected_size=4)
    assert list(store.iter_blobs()) == []
    assert list(store.staging.iterdir()) == []


@pytest.mark.parametrize("bad", ["../etc/passwd", "", "A" * 64, "g" * 64, "0" * 63])
def test_path_for_refuses_non_hashes(store, bad):
    with pytest.raises(StoreError):
        store.path_for(bad)


def test_verify_catches_a_flipped_byte(store):
    good = store.put_bytes(b"a" * 10000)
    victim = store.put_bytes(b"b" * 10000)
    path = store.path_for(victim.sha256)
    data = bytearray(path.read_bytes())
    data[5000] ^= 0x01
    path.write_bytes(bytes(data))
    result = store.verify()
    assert result["checked"] == 2
    assert result["bad"] == [victim.sha256]
    assert good.sha256 not in result["bad"]


def test_gc_removes_only_unreferenced_and_stale_staging(store):
    keep = store.put_bytes(b"keep")
    drop = store.put_bytes(b"drop")
    (store.staging / "put-leftover").write_bytes(b"half")
    result = store.gc({keep.sha256})
    assert result["removed"] == [drop.sha256]
    assert store.has(keep.sha256) and not store.has(drop.sha256)
    assert result["staging_removed"] == 1


def test_disk_floor_is_checked_before_copy(tmp_path):
    s = Store(tmp_path / "s", free_floor_bytes=10 ** 18).init()
    with pytest.raises(StoreError, match="E_DISK_FULL|free"):
        s.ensure_space(1)


def test_cli_verify_hides_resource_and_gc_keeps_referenced(demo_cfg, runner):
    from click.testing import CliRunner
    from edgenode.cli import cli
    from edgenode.core.db import open_main

    def run(*args):
        return CliRunner().invoke(cli, ["--data-dir", str(demo_cfg.data_path), *args])

    conn = open_main(demo_cfg)
    res = q.get(conn, "demo-01")
    path = demo_cfg.store_path / res["sha256"][:2] / res["sha256"][2:4] / res["sha256"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    r = run("store", "verify")
    assert r.exit_code == 1
    assert f"BAD      {res['sha256']}" in r.output
    assert q.get(conn, "demo-01", include_hidden=True)["visible"] == 0
    assert q.get(conn, "demo-02")["visible"] == 1
    # An orphan blob goes, referenced ones stay.
    from edgenode.core.store import open_store
    orphan = open_store(demo_cfg).put_bytes(b"orphan")
    before = {s for s, _ in open_store(demo_cfg).iter_blobs()}
    r = run("store", "gc", "--json")
    assert r.exit_code == 0, r.output
    after = {s for s, _ in open_store(demo_cfg).iter_blobs()}
    assert before - after == {orphan.sha256}
    assert q.referenced_hashes(conn) - {res["sha256"]} <= after
    conn.close()
