"""The sync commands and the one scheduler process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta

import pytest

from edgenode.core import jobs
from edgenode.core.db import open_main, open_volatile
from edgenode.core.identity import load_or_create
from edgenode.core.scheduler import MISFIRE_GRACE_SECONDS, build, first_run
from tests.helpers_sync import ROOT, Hub, add_events


@pytest.fixture
def hub(tmp_path):
    h = Hub(tmp_path / "hub").start()
    yield h
    h.stop()


def test_not_enrolled_sync_now_skips_cleanly(runner):
    res = runner("sync", "now", "--json")
    assert res.exit_code == 0, res.output
    states = {r["kind"]: (r["state"], r["message"]) for r in json.loads(res.output)}
    assert states["uplink"][0] == states["heartbeat"][0] == states["pull"][0] == "skipped"
    assert "E_NOT_ENROLLED" in states["uplink"][1] and "E_NO_RSYNC_URL" in states["pull"][1]


def test_enroll_sync_now_status_export(cfg, runner, hub, tmp_path):
    assert runner("enroll", hub.url, "--code", hub.new_code()).exit_code == 0
    conn = open_main(cfg)
    add_events(conn, 700)
    conn.close()
    res = runner("sync", "now", "--job", "uplink", "--job", "heartbeat")
    assert res.exit_code == 0, res.output
    assert "uplink: done" in res.output and "heartbeat: done" in res.output
    assert hub.totals(load_or_create(cfg).node_id)["events"] == 700
    st = json.loads(runner("sync", "status", "--json").output)
    assert st["hub_url"] == hub.url and st["outbox"]["batches"] == 0 and st["unsealed_events"] == 0
    assert st["jobs"]["uplink"]["state"] == "done"
    assert "outbox: 0 batches" in runner("sync", "status").output
    stick = tmp_path / "stick"
    stick.mkdir()
    conn = open_main(cfg)
    add_events(conn, 30, seed=9)
    conn.close()
    res = runner("export-logs", str(stick))
    assert res.exit_code == 0 and "1 batches (30 events)" in res.output
    res = runner("export-logs", str(tmp_path / "no-such-stick"))
    assert res.exit_code == 1 and "E_EXPORT_PATH" in res.output


def test_sync_now_local_jobs(demo_cfg, runner):
    from click.testing import CliRunner
    from edgenode.cli import cli
    res = CliRunner().invoke(cli, ["--data-dir", str(demo_cfg.data_path), "sync", "now", "--job", "housekeeping",
                                   "--job", "spool_scan", "--json"], env={"EDGENODE_CONFIG": ""})
    assert res.exit_code == 0, res.output
    hk, spool = json.loads(res.output)[::-1] if json.loads(res.output)[0]["kind"] == "spool_scan" else \
        json.loads(res.output)
    assert hk["kind"] == "housekeeping" and hk["state"] == "done" and hk["result"]["checked"] > 0
    assert hk["result"]["bad"] == 0 and spool["state"] == "done"


def test_scheduler_jobs_are_stable_and_deliberate(cfg):
    cfg = cfg.replace(sync__windows=[{"start": "19:00", "end": "23:00", "days": ["mon", "fri"]}])
    sched = build(cfg, blocking=False)
    sched.start(paused=True)
    try:
        ids = sorted(j.id for j in sched.get_jobs())
        assert {"edgenode-uplink", "edgenode-heartbeat", "edgenode-pull", "edgenode-spool_scan",
                "edgenode-housekeeping", "edgenode-window-0"} <= set(ids)
        for j in sched.get_jobs():
            assert j.coalesce and j.max_instances == 1 and j.misfire_grace_time == MISFIRE_GRACE_SECONDS
        assert "mon,fri" in str(sched.get_job("edgenode-window-0").trigger)
    finally:
        sched.shutdown()
    # a second build (a restart) gives the same ids, never a second copy
    sched2 = build(cfg, blocking=False)
    sched2.start(paused=True)
    assert sorted(j.id for j in sched2.get_jobs()) == ids
    sched2.shutdown()


def test_first_run_follows_the_last_run(cfg):
    v = open_volatile(cfg)
    now = datetime.now()
    assert first_run(v, "uplink", 1800, now) == now + timedelta(seconds=5)
    assert first_run(v, "housekeeping", 86400, now) == now + timedelta(seconds=86400)
    job = jobs.start(v, "pull")
    jobs.finish(v, job, "done")
    assert abs((first_run(v, "pull", 3600, now) - (now + timedelta(seconds=3600))).total_seconds()) < 5
    v.execute("UPDATE jobs SET started_at = ?", (time.time() - 7200,))  # missed while the node was off
    assert first_run(v, "pull", 3600, now) == now + timedelta(seconds=5)
    v.close()


def test_scheduler_process_runs_jobs_and_stops_on_sigterm(cfg):
    env = {**os.environ, "EDGENODE_CONFIG": "", "EDGENODE_DATA_DIR": str(cfg.data_path)}
    p = subprocess.Popen([sys.executable, "-m", "edgenode", "scheduler"], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        rows = []
        while time.monotonic() < deadline and not rows:
            time.sleep(0.5)
            if cfg.volatile_db_path.exists():
                v = open_volatile(cfg)
                rows = jobs.recent(v, "uplink")
                v.close()
        assert rows and rows[0]["state"] == "skipped" and "E_NOT_ENROLLED" in rows[0]["message"]
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0, p.stderr.read().decode()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_a_second_stop_signal_is_harmless(cfg):
    """Ctrl-C twice, or `timeout` passing its SIGTERM on after systemd's: no SchedulerNotRunningError."""
    from edgenode.core import jobproc
    from edgenode.core.scheduler import stopper
    sched = build(cfg, blocking=False)
    sched.start(paused=True)
    stop = stopper(sched)
    try:
        stop(signal.SIGTERM, None)
        stop(signal.SIGTERM, None)
        assert not sched.running
    finally:
        for t in threading.enumerate():
            if t.name == "stop-jobs":
                t.join(30)
        jobproc._stopping.clear()  # this process goes on running other tests' jobs
