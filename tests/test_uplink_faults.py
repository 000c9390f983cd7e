"""Seal-and-send under SQLite FULL, BUSY and IOERR at every statement, against the real hub (issue 16).

Whatever statement fails, the events are neither lost nor counted twice: the next run of
the uplink brings the hub's totals to exactly the events recorded.  The short form tries
every second statement; ``pytest -m slow`` tries all.
"""

from __future__ import annotations

import sqlite3

import pytest

from edgenode.core.db import open_main
from edgenode.core.errors import EdgenodeError
from edgenode.core.identity import load_or_create
from edgenode.node.sync import outbox, uplink
from tests.helpers_faults import FAULTS, FaultyConnection
from tests.helpers_sync import Hub, add_events, enrolled_node

EVENTS = 120


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub")).start()
    yield h
    h.stop()


def _node(tmp_path, hub, name):
    cfg = enrolled_node(tmp_path, hub, name, sync__batch_max_events=50)
    conn = open_main(cfg)
    add_events(conn, EVENTS)
    return cfg, conn


def _points(tmp_path, hub, fault, step):
    cfg, conn = _node(tmp_path, hub, f"count-{fault}")
    counting = FaultyConnection(conn)
    uplink.run(cfg, counting, hub.url)
    assert hub.totals(load_or_create(cfg).node_id)["events"] == EVENTS
    total = counting.count
    conn.close()
    assert total > 5, total
    fired = 0
    for n in range(1, total + 1, step):
        cfg, conn = _node(tmp_path, hub, f"{fault}-{n}")
        node_id = load_or_create(cfg).node_id
        try:
            uplink.run(cfg, FaultyConnection(conn, fail_at=n, fault=fault), hub.url)
        except (sqlite3.Error, EdgenodeError):
            fired += 1  # the runner records the job as failed; the next run carries on
        assert hub.totals(node_id)["events"] <= EVENTS, (n, "counted twice")
        uplink.run(cfg, conn, hub.url)
        assert hub.totals(node_id)["events"] == EVENTS, (n, hub.totals(node_id))
        assert outbox.backlog(cfg)["batches"] == 0, n
        conn.close()
    return total, fired


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_at_any_statement_of_an_uplink_loses_and_doubles_nothing(tmp_path, hub, fault):
    total, fired = _points(tmp_path, hub, fault, step=2)
    print(f"{fault}: {total} statements, every second tried, {fired} runs failed")
    assert fired > 0


@pytest.mark.slow
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_at_every_statement_of_an_uplink(tmp_path, hub, fault):
    total, fired = _points(tmp_path, hub, fault, step=1)
    print(f"{fault}: {total} statements, all tried, {fired} runs failed")
    assert fired > 0
