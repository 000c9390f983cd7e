"""No link: hub unreachable, or no default route (a network namespace with only loopback).
Jobs skip cleanly, back off with a bounded delay, and nothing grows without bound."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from datetime import datetime

import pytest

from edgenode.core import jobs
from edgenode.core.db import open_main, open_volatile
from edgenode.core.identity import load_or_create
from edgenode.node.sync import outbox, probe, uplink
from edgenode.node.sync.runner import run_job
from tests.conftest import make_config
from tests.helpers_sync import ROOT, Hub, add_events, enrolled_node, free_port


def _rows(cfg, kind):
    v = open_volatile(cfg)
    try:
        return jobs.recent(v, kind, limit=1000)
    finally:
        v.close()


def test_unreachable_hub_skips_with_bounded_backoff(tmp_path):
    cfg = make_config(tmp_path / "node", sync__hub_url=f"http://127.0.0.1:{free_port()}",
                      sync__backoff_initial_seconds=10, sync__backoff_max_seconds=300)
    conn = open_main(cfg)
    add_events(conn, 100)
    r = run_job(cfg, "uplink")
    assert r["state"] == "skipped" and r["message"] == "no link (refused)"
    # the events were sealed anyway (safe on disk, ready for export-logs) and are kept
    assert outbox.backlog(cfg)["batches"] == 1 and outbox.unsealed_events(conn) == 0
    assert probe.waiting(conn, "hub") == pytest.approx(10, abs=1)
    r = run_job(cfg, "heartbeat")
    assert r["state"] == "skipped" and "backing off" in r["message"]
    # many failed tries: the delay stops at the cap, the counter stops growing, one job row per kind
    for _ in range(60):
        probe.failed(cfg, conn, "hub", "refused")
        run_job(cfg, "uplink")
        run_job(cfg, "heartbeat", ignore_windows=True)
    link, = probe.link_state(conn)
    assert link["failures"] == probe.MAX_FAILURES
    assert probe.waiting(conn, "hub") <= 300
    assert len(_rows(cfg, "uplink")) == 1 and len(_rows(cfg, "heartbeat")) == 1
    assert outbox.backlog(cfg)["batches"] == 1
    conn.close()


def test_backoff_delay_is_capped():
    assert [probe.delay(n, 60, 3600) for n in (0, 1, 2, 3, 7, 8, 1000)] == [0, 60, 120, 240, 3600, 3600, 3600]


def test_link_comes_back_and_backoff_resets(tmp_path):
    hub = Hub(tmp_path / "hub")
    try:
        hub.start()
        cfg = enrolled_node(tmp_path, hub, sync__backoff_initial_seconds=3600)
        hub.stop()
        conn = open_main(cfg)
        add_events(conn, 50)
        assert run_job(cfg, "uplink")["state"] == "skipped"
        assert run_job(cfg, "uplink")["message"] == "backing off after link failures"
        hub.start()
        # the scheduler waits out the back-off (or the next window); `sync now` goes at once
        r = run_job(cfg, "uplink", ignore_windows=True)
        assert r["state"] == "done" and r["result"]["sent"] == 1
        assert probe.waiting(conn, "hub") == 0
        assert hub.totals(load_or_create(cfg).node_id)["events"] == 50
        conn.close()
    finally:
        hub.stop()


def test_outside_every_window_nothing_touches_the_link(tmp_path):
    now = datetime.now()
    closed = [{"start": f"{(now.hour + 2) % 24:02d}:00", "end": f"{(now.hour + 3) % 24:02d}:00"}]
    cfg = make_config(tmp_path / "node", sync__hub_url=f"http://127.0.0.1:{free_port()}", sync__windows=closed)
    r = run_job(cfg, "uplink")
    assert r["state"] == "skipped" and r["message"].startswith("outside every window")
    conn = open_main(cfg)
    assert probe.link_state(conn) == []  # not even probed
    conn.close()


def test_outbox_cap_summarises_instead_of_dropping(tmp_path):
    hub = Hub(tmp_path / "hub").start()
    try:
        cfg = enrolled_node(tmp_path, hub, sync__batch_max_events=500)
        node = load_or_create(cfg)
        conn = open_main(cfg)
        total_seconds = add_events(conn, 3000)
        uplink.seal(cfg, conn, node)
        before = outbox.backlog(cfg)
        assert before["batches"] == 6
        cap = before["bytes"] // 2
        result = outbox.enforce_cap(cfg, conn, node, cap_bytes=cap)
        after = outbox.backlog(cfg)
        assert result["summarised"] >= 1 and after["bytes"] <= cap and after["batches"] == 6
        r = uplink.send(cfg, conn, hub.url, node)
        assert r["sent"] == 6
        t = hub.totals(node.node_id)
        assert t["events"] == t["daily_n"] == 3000 and t["daily_seconds"] == pytest.approx(total_seconds)
        conn.close()
    finally:
        hub.stop()


def test_summary_of_a_batch_the_hub_already_has_is_dropped_not_doubled(tmp_path):
    hub = Hub(tmp_path / "hub").start()
    try:
        cfg = enrolled_node(tmp_path, hub)
        node = load_or_create(cfg)
        conn = open_main(cfg)
        add_events(conn, 400)
        uplink.seal(cfg, conn, node)
        (_, path), = outbox.batch_files(cfg)
        kept = path.read_bytes(), outbox.sig_path(path).read_bytes()
        uplink.send(cfg, conn, hub.url, node)
        path.write_bytes(kept[0])  # the ack was lost ...
        outbox.sig_path(path).write_bytes(kept[1])
        outbox.enforce_cap(cfg, conn, node, cap_bytes=1)  # ... and the cap summarised the batch
        assert outbox.read_header(path)["kind"] == "daily"
        assert uplink.send(cfg, conn, hub.url, node)["sent"] == 0
        assert outbox.backlog(cfg)["batches"] == 0
        assert hub.totals(node.node_id)["events"] == 400
        conn.close()
    finally:
        hub.stop()


NS_SCRIPT = """
import json, sys
from tests.conftest import make_config
from edgenode.node.sync.runner import run_job
cfg = make_config(sys.argv[1], sync__hub_url=sys.argv[2])
print(json.dumps([run_job(cfg, "uplink"), run_job(cfg, "heartbeat")]))
"""


@pytest.mark.root
@pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2")
def test_no_default_route_in_a_network_namespace(tmp_path):
    import json
    ns = f"ensync{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
    except (subprocess.CalledProcessError, PermissionError):
        pytest.skip("cannot create a network namespace")
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        data = tmp_path / "node"
        conn = open_main(make_config(data))
        add_events(conn, 30)
        conn.close()
        out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", NS_SCRIPT, str(data),
                              "http://10.254.0.1:8090"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        up, hb = json.loads(out.stdout.strip().splitlines()[-1])
        assert up["state"] == "skipped" and up["message"] == "no link (no_route)"
        assert hb["state"] == "skipped" and "backing off" in hb["message"]
        cfg = make_config(data)
        conn = open_main(cfg)
        link, = probe.link_state(conn)
        assert "no default route" in link["last_error"] and link["failures"] == 1
        assert outbox.backlog(cfg)["batches"] == 1
        conn.close()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_old_job_rows_are_pruned_but_the_latest_kept(cfg):
    from edgenode.node.sync.runner import prune_jobs
    v = open_volatile(cfg)
    for i in range(50):
        jid = jobs.start(v, "uplink")
        jobs.finish(v, jid, "done" if i % 5 else "failed")
    other = jobs.start(v, "import")  # another area's rows are not ours to prune
    jobs.finish(v, other, "done")
    v.execute("UPDATE jobs SET started_at = started_at - 90 * 86400, finished_at = finished_at - 90 * 86400")
    fresh = jobs.start(v, "uplink")
    jobs.finish(v, fresh, "done")
    assert prune_jobs(v) == 49  # 40 old successes (a newer one exists) and 9 of the 10 old failures
    left = {(r["kind"], r["state"]) for r in jobs.recent(v, limit=100)}
    assert left == {("uplink", "done"), ("uplink", "failed"), ("import", "done")}
    assert len(jobs.recent(v, "uplink")) == 2 and jobs.recent(v, "uplink")[0]["id"] == fresh
    v.close()
