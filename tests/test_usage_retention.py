"""Old usage events leave the node (edgenode/node/usage/retention.py) without changing any figure the node shows."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time

import pytest

from edgenode.core.db import open_main
from edgenode.node.sync import uplink
from edgenode.node.sync.runner import prune_usage, run_job
from edgenode.node.usage import retention, stats
from edgenode.node.usage.events import record
from tests.helpers_sync import add_events

DAY = 86400


def _figures(conn, now):
    """Everything the dashboard shows, plus the grand totals the pruning must conserve."""
    ev = conn.execute("SELECT coalesce(sum(kind = 'play_start'), 0), coalesce(sum(seconds), 0) FROM usage_events "
                      "WHERE resource_id IS NOT NULL").fetchone()
    tot = conn.execute("SELECT coalesce(sum(plays), 0), coalesce(sum(seconds), 0) FROM usage_totals").fetchone()
    return {"summary": stats.summary(conn, now), "all_time": stats.most_watched(conn, limit=1000),
            "month": stats.most_watched(conn, since=stats.period_starts(now)["month"], limit=1000),
            "plays": ev[0] + tot[0], "seconds": round(ev[1] + tot[1], 3)}


def _old_and_new(conn, now):
    add_events(conn, 3000, seed=1, start_at=now - 500 * DAY)  # a year and more ago
    add_events(conn, 2000, seed=2, start_at=now - 3 * DAY)  # this week


def test_prune_keeps_every_figure_and_frees_the_old_events(cfg, conn):
    now = time.time()
    _old_and_new(conn, now)
    uplink.seal(cfg, conn)
    before = _figures(conn, now)
    out = prune_usage(cfg, conn)
    assert out["pruned"] == 3000
    assert conn.execute("SELECT count(*) FROM usage_events").fetchone()[0] == 2000
    assert conn.execute("SELECT min(at) FROM usage_events").fetchone()[0] >= now - 400 * DAY
    assert _figures(conn, now) == before  # all-time list, this month, today/week/month totals
    assert prune_usage(cfg, conn)["pruned"] == 0  # idempotent
    # sequence numbers never come back after deletes
    top = conn.execute("SELECT max(seq) FROM usage_events").fetchone()[0]
    record(conn, [{"kind": "view", "terminal": "t", "resource_id": "x"}])
    assert conn.execute("SELECT max(seq) FROM usage_events").fetchone()[0] == top + 1


def test_events_not_yet_sealed_for_the_hub_stay(cfg, conn):
    now = time.time()
    add_events(conn, 1000, seed=3, start_at=now - 500 * DAY)
    assert prune_usage(cfg, conn)["pruned"] == 0  # nothing sealed: the hub has none of them yet
    uplink.seal(cfg, conn)
    add_events(conn, 500, seed=4, start_at=now - 450 * DAY)  # old by the clock, but after the seal
    assert prune_usage(cfg, conn)["pruned"] == 1000
    assert conn.execute("SELECT count(*) FROM usage_events").fetchone()[0] == 500


@pytest.mark.parametrize("keep", [0, 10_000])
def test_keep_zero_or_longer_than_the_history_keeps_everything(cfg, conn, keep):
    now = time.time()
    _old_and_new(conn, now)
    uplink.seal(cfg, conn)
    assert prune_usage(cfg, conn, keep_days=keep)["pruned"] == 0
    assert conn.execute("SELECT count(*) FROM usage_events").fetchone()[0] == 5000


def test_housekeeping_prunes(demo_cfg):
    conn = open_main(demo_cfg)
    now = time.time()
    add_events(conn, 800, seed=5, start_at=now - 800 * DAY)
    uplink.seal(demo_cfg, conn)
    res = run_job(demo_cfg, "housekeeping")
    assert res["state"] == "done" and res["result"]["usage_events_pruned"] == 800
    conn.close()


def test_cli_refuses_a_negative_age_and_changes_nothing(cfg, conn, runner):
    add_events(conn, 100, seed=6, start_at=time.time() - 900 * DAY)
    uplink.seal(cfg, conn)
    res = runner("db", "prune-usage", "--keep-days", "-1")
    assert res.exit_code == 2 and "-1" in res.output
    assert conn.execute("SELECT count(*) FROM usage_events").fetchone()[0] == 100
    res = runner("db", "prune-usage", "--json")
    assert res.exit_code == 0 and '"pruned": 100' in res.output


def _count(conn) -> int:
    return conn.execute("SELECT count(*) FROM usage_events").fetchone()[0]


def _prune_forever(cfg):
    retention.CHUNK = 100  # many small transactions: many moments to be killed between or inside them
    conn = open_main(cfg)
    prune_usage(cfg, conn)
    os._exit(0)


def test_a_kill_at_any_moment_loses_and_doubles_nothing(cfg, conn):
    now = time.time()
    add_events(conn, 30000, seed=7, start_at=now - 700 * DAY)
    uplink.seal(cfg, conn)
    before = _figures(conn, now)
    ctx = multiprocessing.get_context("fork")
    rnd = random.Random(8)
    left = [30000]
    for _ in range(40):
        p = ctx.Process(target=_prune_forever, args=(cfg,))
        p.start()
        # Kill once the child has visibly made progress (so the kill lands mid-work on any machine),
        # after a random extra moment: between transactions or inside one.
        deadline = time.monotonic() + 30
        while p.is_alive() and time.monotonic() < deadline and _count(conn) >= left[-1]:
            time.sleep(0.002)
        time.sleep(rnd.uniform(0, 0.02))
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)
        p.join()
        assert _figures(conn, now) == before  # after every kill: nothing lost, nothing counted twice
        left.append(_count(conn))
        if left[-1] == 0:
            break
    killed_midway = [n for n in left[1:-1] if 0 < n < 30000]
    assert len(killed_midway) >= 3, left  # the kills did land in the middle of the work
    prune_usage(cfg, conn)
    assert conn.execute("SELECT count(*) FROM usage_events").fetchone()[0] == 0
    assert _figures(conn, now) == before


def test_resources_only_viewed_stay_out_of_the_watched_list_after_pruning(cfg, conn):
    now = time.time()
    record(conn, [{"kind": "view", "terminal": "t", "resource_id": "pdf-only", "at": now - 500 * DAY},
                  {"kind": "play_start", "terminal": "t", "resource_id": "video", "at": now - 500 * DAY},
                  {"kind": "progress", "terminal": "t", "resource_id": "video", "seconds": 30, "at": now - 500 * DAY}])
    uplink.seal(cfg, conn)
    before = stats.most_watched(conn, limit=10)
    assert [r["resource_id"] for r in before] == ["video"]
    assert prune_usage(cfg, conn)["pruned"] == 3
    assert stats.most_watched(conn, limit=10) == before
