"""A content pull and its imports under SQLite FULL, BUSY and IOERR at every Nth statement (issue 16).

Real rsync daemon on loopback, two signed bundles.  After each fault the catalogue holds only
whole bundles, no blob stays unreferenced, and the next pull completes with everything
visible.  The short form tries every tenth statement; ``pytest -m slow`` tries all.
"""

from __future__ import annotations

import sqlite3

import pytest

from edgenode.core.db import open_main
from edgenode.core.errors import EdgenodeError
from edgenode.core.store import open_store
from edgenode.node.catalog.queries import referenced_hashes
from edgenode.node.sources import pull
from tests.conftest import make_config
from tests.helpers_bundles import check_consistent, new_key, trust_key
from tests.helpers_faults import FAULTS, FaultyConnection
from tests.helpers_sync import Rsyncd, publish_bundle


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("published")
    sk = new_key(tmp)
    out = tmp / "hub" / "rsync" / "channels" / "sannong"
    for seq in (1, 2):
        publish_bundle(tmp / "pub", out, sk, "sannong", seq, n=3, size=60_000, seed=seq)
    d = Rsyncd(tmp / "hub" / "rsync", tmp / "rsyncd").start()
    yield sk, d.url
    d.stop()


def _node(tmp_path, name, sk, url):
    cfg = make_config(tmp_path / name, sync__rsync_url=url, sync__channels=["sannong"],
                      store__free_space_floor_mb=0)
    conn = open_main(cfg)
    trust_key(conn, sk, "sannong")
    return cfg, conn, open_store(cfg)


def _visible(conn) -> int:
    return conn.execute("SELECT count(*) FROM resources WHERE channel = 'sannong' AND visible = 1").fetchone()[0]


def _points(tmp_path, published, fault, step):
    sk, url = published
    cfg, conn, store = _node(tmp_path, f"count-{fault}", sk, url)
    counting = FaultyConnection(conn)
    assert pull.pull(cfg, counting, store, retry_delay=0)["imported"] == 2
    total = counting.count
    conn.close()
    ended = 0
    for n in range(1, total + 1, step):
        cfg, conn, store = _node(tmp_path, f"{fault}-{n}", sk, url)
        try:
            r = pull.pull(cfg, FaultyConnection(conn, fail_at=n, fault=fault), store, retry_delay=0)
            ended += r["import_failures"] > 0
        except (sqlite3.Error, EdgenodeError):
            ended += 1  # outside an import (the storage policy's reads): the job is marked failed
        assert _visible(conn) in (0, 3, 6), (n, "a half-visible bundle")
        check_consistent(conn, store)
        strays = {sha for sha, _ in store.iter_blobs()} - referenced_hashes(conn)
        assert strays == set(), (n, "a blob stays unreferenced")
        again = pull.pull(cfg, conn, store, retry_delay=0)
        assert again["state"] == "done" and again["import_failures"] == 0, (n, again)
        assert _visible(conn) == 6, n
        conn.close()
    return total, ended


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_at_any_statement_of_a_pull_leaves_whole_bundles_and_the_next_pull_completes(
        tmp_path, published, fault):
    total, ended = _points(tmp_path, published, fault, step=10)
    print(f"{fault}: {total} statements, every tenth tried, {ended} pulls hit the fault")
    assert ended > 0


@pytest.mark.slow
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_at_every_statement_of_a_pull(tmp_path, published, fault):
    total, ended = _points(tmp_path, published, fault, step=1)
    print(f"{fault}: {total} statements, all tried, {ended} pulls hit the fault")
    assert ended > 0
