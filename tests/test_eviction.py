"""Eviction on a real small filesystem, through the real signed-bundle import pipeline.

The store lives on a tmpfs mounted by the test; the quota and the free-space
floor are real limits on it.  The order checked here is the one documented in
``edgenode/node/storage/eviction.py`` and ``docs/storage.md``.
"""

from __future__ import annotations

import shutil

import pytest

from edgenode.protocol.build import build_bundle
from edgenode.node.imports.pipeline import import_bundle
from edgenode.core.db import open_main
from edgenode.node.storage import eviction, quota, state, subscriptions
from edgenode.core.store import open_store
from tests.conftest import make_config
from tests.helpers_bundles import make_pdf, new_key, snapshot, trust_key
from tests.helpers_storage import KIB, age, blob_present, bundle, import_ok, play, small_fs

S = 256 * KIB


@pytest.fixture
def node(tmp_path):
    """A node whose store is a 16 MiB tmpfs with a 3 MiB quota and a 1 MiB floor."""
    cfg = make_config(tmp_path / "data", store__quota_gb=3 / 1024, store__free_space_floor_mb=1,
                      storage__fresh_days=7.0, storage__always=["kept", "new"])
    with small_fs(cfg.store_path, 16 * 1024):
        conn = open_main(cfg, check=True)
        store = open_store(cfg)
        sk = new_key(tmp_path)
        trust_key(conn, sk, "kept", "old", "exp", "new")
        yield cfg, conn, store, sk, tmp_path
        conn.close()


def _library(cfg, conn, store, sk, tmp):
    """kept.* pinned by channel; old.* evictable; exp.* expired; one old item withdrawn; one fresh."""
    import_ok(cfg, conn, store, bundle(tmp, sk, "kept", 1, {"k0": S, "k1": S}))
    # 'old' is imported while kept in full, then the administrator turns it to on-demand.
    import_ok(cfg, conn, store, bundle(tmp, sk, "old", 1, {"o0": S, "o1": 3 * S, "o2": S, "o3": S, "o4": S}))
    import_ok(cfg, conn, store, bundle(tmp, sk, "exp", 1, {"e0": S}, expires="2020-01-01T00:00:00Z"))
    age(conn, ["kept.k0", "kept.k1", "old.o0", "old.o1", "old.o2", "old.o3", "old.o4", "exp.e0"], 30)
    # Seq 2 withdraws o3 (its blob is then unreferenced) and brings a fresh o5.
    import_ok(cfg, conn, store, bundle(tmp, sk, "old", 2, {"o5": S}, withdraw=["o3"]))
    subscriptions.set_mode(conn, "old", "on_demand")
    play(conn, "old.o0", 1)
    play(conn, "old.o1", 20)
    play(conn, "old.o4", 2)
    play(conn, "exp.e0", 0.05)   # played an hour ago, but expired: goes early anyway
    play(conn, "kept.k0", 400)   # long unplayed, but pinned by its channel
    play(conn, "old.o5", 300)    # the event is older than the arrival: o5 is fresh regardless


def test_policy_order_is_the_documented_one(node):
    cfg, conn, store, sk, tmp = node
    _library(cfg, conn, store, sk, tmp)
    order = [(v.reason, v.resource_id) for v in eviction.candidates(conn, cfg)]
    # tier 0: the withdrawn o3's blob; tier 1: expired e0; tier 2 by idle × size:
    # o1 (20 d × 3S = 60) > o2 (30 d × S, never played) > o4 (2 d × S) > o0 (1 d × S).
    assert order == [("unreferenced", None), ("expired", "exp.e0"), ("lru", "old.o1"), ("lru", "old.o2"),
                     ("lru", "old.o4"), ("lru", "old.o0")]
    ids = {rid for _, rid in order}
    assert not ids & {"kept.k0", "kept.k1", "old.o5"}  # pinned by channel, and fresh

    # A resource's own pin takes it out; un-pinning puts it back.
    state.set_pin(conn, "old.o2")
    assert "old.o2" not in {v.resource_id for v in eviction.candidates(conn, cfg)}
    state.set_pin(conn, "old.o2", False)
    assert "old.o2" in {v.resource_id for v in eviction.candidates(conn, cfg)}


def test_import_over_quota_evicts_in_order_and_never_pinned_or_fresh(node):
    cfg, conn, store, sk, tmp = node
    _library(cfg, conn, store, sk, tmp)
    state.set_pin(conn, "old.o4")  # pinned by hand: skipped, so o0 is the fourth victim
    used = quota.used_bytes(conn)
    assert used == 11 * S  # k0 k1 o0 o1(3S) o2 o3(withdrawn, still on disk) o4 o5 e0
    # 12 S of quota: a 6.5 S import needs 5.5 S freed: o3 (S) + e0 (S) + o1 (3S) + o2 (S) = 6 S.
    b = bundle(tmp, sk, "new", 1, {"n0": int(6.5 * S)})
    p = quota.plan(conn, store, cfg, int(6.5 * S))
    assert [v.resource_id for v in p.victims] == [None, "exp.e0", "old.o1", "old.o2"]
    import_ok(cfg, conn, store, b)

    gone = {"exp.e0", "old.o1", "old.o2"}
    kept = {"kept.k0", "kept.k1", "old.o0", "old.o4", "old.o5", "new.n0"}
    for rid in gone:
        assert not blob_present(store, conn, rid), rid
    for rid in kept:
        assert blob_present(store, conn, rid), rid
    assert not store.has(p.victims[0].sha256)  # the withdrawn blob went first
    # Evicted resources stay listed (visible) but are on request; the rest play as before.
    on_request = {conn.execute("SELECT id FROM resources WHERE num = ?", (n,)).fetchone()[0]
                  for n in state.on_request_nums(conn)}
    assert on_request == gone
    assert all(r[0] == 1 for r in conn.execute(
        "SELECT visible FROM resources WHERE id IN ('exp.e0', 'old.o1', 'old.o2', 'new.n0')"))
    assert quota.used_bytes(conn) <= cfg["store.quota_gb"] * 1024 ** 3
    # The catalogue's accounting matches the disk.
    on_disk = sum(p_.stat().st_size for _, p_ in store.iter_blobs())
    assert on_disk == quota.used_bytes(conn)


def test_only_pinned_left_stops_before_starting_and_changes_nothing(node):
    cfg, conn, store, sk, tmp = node
    import_ok(cfg, conn, store, bundle(tmp, sk, "kept", 1, {"k0": 4 * S, "k1": 4 * S}))
    import_ok(cfg, conn, store, bundle(tmp, sk, "old", 1, {"o0": S}))
    age(conn, ["kept.k0", "kept.k1", "old.o0"], 30)
    state.set_pin(conn, "old.o0")
    before = snapshot(conn, store)
    b = bundle(tmp, sk, "new", 1, {"n0": 6 * S})
    r = import_bundle(cfg, conn, store, b, source="test")
    assert r.result == "failed" and r.error_code == "E_NO_ROOM"
    assert "pinned" in r.error and "Nothing was changed" in r.error
    assert "存储空间不足" in r.error_zh
    assert snapshot(conn, store) == before
    assert not any(store.staging.iterdir())  # not even a staged byte
    # The same refusal from the planner, for the CLI and the admin page.
    with pytest.raises(quota.NoRoom):
        quota.make_room(conn, store, cfg, 6 * S)
    with pytest.raises(quota.NoRoom, match="larger than the whole quota"):
        quota.make_room(conn, store, cfg, 13 * S)
    assert snapshot(conn, store) == before


def test_free_space_floor_on_a_nearly_full_disk(tmp_path):
    """No quota; the disk itself is small: the floor decides, and eviction frees real disk space."""
    cfg = make_config(tmp_path / "data", store__free_space_floor_mb=1, storage__fresh_days=1.0,
                      storage__on_demand=["old"])
    with small_fs(cfg.store_path, 4 * 1024):
        conn = open_main(cfg, check=True)
        store = open_store(cfg)
        sk = new_key(tmp_path)
        trust_key(conn, sk, "old", "new")
        subscriptions.set_mode(conn, "old", "always")
        import_ok(cfg, conn, store, bundle(tmp_path, sk, "old", 1, {"a": 4 * S, "b": 4 * S}))
        subscriptions.set_mode(conn, "old", "on_demand")
        age(conn, ["old.a", "old.b"], 10)
        play(conn, "old.b", 1)
        free_before = store.free_bytes()
        assert free_before - 6 * S < 1024 * KIB  # 6 S would cross the floor
        import_ok(cfg, conn, store, bundle(tmp_path, sk, "new", 1, {"n": 6 * S}))
        assert not blob_present(store, conn, "old.a") and blob_present(store, conn, "old.b")
        assert store.free_bytes() >= 1024 * KIB
        conn.close()


def test_crash_between_catalogue_and_unlink_is_swept(node, monkeypatch):
    cfg, conn, store, sk, tmp = node
    import_ok(cfg, conn, store, bundle(tmp, sk, "old", 1, {"o0": S, "o1": S}))
    age(conn, ["old.o0", "old.o1"], 30)
    subscriptions.set_mode(conn, "old", "on_demand")
    victims = eviction.candidates(conn, cfg)[:1]
    monkeypatch.setattr(quota, "_unlink", lambda store, sha: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        quota.evict(conn, store, victims)
    monkeypatch.undo()
    # The catalogue already says evicted; the file is still there, counted by nobody.
    assert store.has(victims[0].sha256)
    assert quota.sweep(conn, store) == 1
    assert not store.has(victims[0].sha256)
    assert quota.sweep(conn, store) == 0


def test_import_never_evicts_a_file_it_reuses(node):
    """A new bundle lists the exact bytes of the top eviction candidate: that blob must stay."""
    cfg, conn, store, sk, tmp = node
    _library(cfg, conn, store, sk, tmp)
    o1 = conn.execute("SELECT sha256 FROM resources WHERE id = 'old.o1'").fetchone()[0]
    src = tmp / "src-reuse"
    src.mkdir()
    shutil.copyfile(tmp / "src-old-1" / "o1.pdf", src / "same.pdf")
    make_pdf(src / "n0.pdf", int(4.5 * S), seed=99)
    b = build_bundle(src, "new", 1, tmp / "out", secret_key=sk, link=False, resources=[
        {"id": "same", "path": "same.pdf", "title": "同一个文件", "column": "sannong"},
        {"id": "n0", "path": "n0.pdf", "title": "新资料", "column": "sannong"}])
    assert quota.plan(conn, store, cfg, int(4.5 * S)).victims[2].sha256 == o1  # it would be chosen...
    import_ok(cfg, conn, store, b)
    assert store.has(o1) and blob_present(store, conn, "new.same") and blob_present(store, conn, "old.o1")
    # ...but the import kept it and took the next ones instead.
    assert not blob_present(store, conn, "old.o2") and not blob_present(store, conn, "old.o4")
    assert blob_present(store, conn, "old.o0")
    check = store.verify()
    assert check["bad"] == [] and check["missing"] == []
