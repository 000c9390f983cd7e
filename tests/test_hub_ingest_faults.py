"""The hub's ingest of a usage batch under SQLite FULL, BUSY and IOERR at every statement (issue 16).

After each fault the batch is either wholly stored or not at all (totals are the full batch
or nothing), and the node's retry of the same bytes ends stored exactly once.
"""

from __future__ import annotations

import sqlite3

import pytest

from edgenode.hub import registry
from edgenode.hub.database import open_hub
from edgenode.hub.ingest import ingest_batch
from tests.conftest import make_config
from tests.helpers_faults import FAULTS, FaultyConnection
from tests.helpers_hub import make_events, new_identity, seal

EVENTS = make_events(60, seed=3)


def _hub(tmp_path, name):
    conn = open_hub(make_config(tmp_path / name))
    ident = new_identity()
    registry.enroll(conn, code=registry.new_code(conn), node_id=ident.node_id, public_key=ident.public_b64(),
                    name="村")
    return conn, ident, registry.get_node(conn, ident.node_id)


def _totals(conn, node_id):
    row = conn.execute("SELECT events, batches FROM hub_nodes WHERE node_id = ?", (node_id,)).fetchone()
    daily = conn.execute("SELECT coalesce(sum(n), 0) FROM hub_daily WHERE node_id = ?", (node_id,)).fetchone()[0]
    return tuple(row) + (daily,)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_at_any_statement_of_an_ingest_stores_the_batch_whole_or_not_at_all(tmp_path, fault):
    conn, ident, node = _hub(tmp_path, "count")
    data, sig = seal(ident, 1, EVENTS)
    counting = FaultyConnection(conn)
    assert ingest_batch(counting, node, 1, data, sig)["status"] == "stored"
    whole = _totals(conn, ident.node_id)
    total = counting.count
    conn.close()
    assert total > 5 and whole[0] == len(EVENTS)

    fired = 0
    for n in range(1, total + 1):
        conn, ident, node = _hub(tmp_path, f"{fault}-{n}")
        data, sig = seal(ident, 1, EVENTS)
        empty = _totals(conn, ident.node_id)
        faulty = FaultyConnection(conn, fail_at=n, fault=fault)
        try:
            ingest_batch(faulty, node, 1, data, sig)
        except sqlite3.Error:
            fired += 1  # the web layer answers 5xx; the node keeps the batch and retries
        assert _totals(conn, ident.node_id) in (empty, whole), (n, "a half-stored batch")
        again = ingest_batch(conn, node, 1, data, sig)
        assert again["status"] in ("stored", "duplicate"), (n, again)
        assert _totals(conn, ident.node_id) == whole, (n, "stored more or less than once")
        conn.close()
    print(f"{fault}: {total} statements, {fired} ingests failed and were retried")
    assert fired >= total // 2
