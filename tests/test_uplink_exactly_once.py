"""Exactly once: SIGKILL the node's uplink at random points (and at every named step between two
durable writes), kill the hub mid-ingest, and the hub's total per node still equals N."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from edgenode.core.db import open_main
from edgenode.core.identity import load_or_create
from edgenode.node.sync import outbox
from edgenode.node.sync.runner import run_job
from tests.helpers_sync import ROOT, Hub, add_events, enrolled_node

NAMED = ["seal:before_write", "seal:after_batch", "seal:after_sig", "seal:after_commit",
         "send:before_post", "send:after_ack", "ack:after_unlink", "send:after_delete"]


def _fork_uplink(cfg, crash_at: str | None = None) -> int:
    pid = os.fork()
    if pid == 0:  # the child is the node's uplink process, exactly as the scheduler runs it
        code = 0
        try:
            if crash_at:
                os.environ["EDGENODE_CRASH_AT"] = crash_at
            run_job(cfg, "uplink", ignore_windows=True)
        except BaseException:
            code = 1
        os._exit(code)
    return pid


def _reap(pid: int) -> bool:
    """True when the child died by SIGKILL."""
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def _settle(cfg, node_id, hub) -> None:
    """Uplink without interference until everything is sealed and acknowledged."""
    for _ in range(10):
        r = run_job(cfg, "uplink", ignore_windows=True)
        conn = open_main(cfg)
        left = outbox.unsealed_events(conn)
        conn.close()
        if r["state"] == "done" and not outbox.batch_files(cfg) and not left:
            return
        time.sleep(0.2)
    raise AssertionError(f"outbox did not drain: {r}")


def _kill_rounds(tmp_path, kills_wanted: int, hub_kills_wanted: int, *, spawn, seed: int,
                 max_rounds: int = 1000) -> dict:
    """Add events, start an uplink, SIGKILL it at a random moment (or let it kill itself at a named
    step); now and then SIGKILL the hub too.  Repeat until enough kills landed mid-run."""
    hub = Hub(tmp_path / "hub").start()
    try:
        cfg = enrolled_node(tmp_path, hub, sync__batch_max_events=40)
        node_id = load_or_create(cfg).node_id
        rnd = random.Random(seed)
        n = kills = hub_kills = rounds = 0
        conn = open_main(cfg)
        add_events(conn, 80, seed=seed)
        n += 80
        conn.close()
        t0 = time.monotonic()
        spawn(cfg, None).wait()
        span = time.monotonic() - t0  # one undisturbed run: random kills land anywhere inside such a run
        while (kills < kills_wanted or hub_kills < hub_kills_wanted) and rounds < max_rounds:
            conn = open_main(cfg)
            k = rnd.randrange(0, 160)
            add_events(conn, k, seed=seed * 1000 + rounds, start_at=1764000000.0 + n)
            n += k
            conn.close()
            named = NAMED[rounds % len(NAMED)] if rounds % 3 == 0 else None
            proc = spawn(cfg, named)
            if named is None:
                time.sleep(rnd.uniform(0, span * 1.1))
                if rounds % 20 == 7 and hub_kills < hub_kills_wanted:  # the hub dies mid-ingest now and then
                    hub.kill()
                    hub_kills += 1
                proc.kill()
            proc.wait()
            kills += proc.killed
            if hub.proc.poll() is not None:
                hub.start()
            rounds += 1
        _settle(cfg, node_id, hub)
        conn = open_main(cfg)
        last_batch_no = outbox.state(conn)["last_batch_no"]
        conn.close()
        return {"n": n, "kills": kills, "hub_kills": hub_kills, "rounds": rounds, "totals": hub.totals(node_id),
                "last_batch_no": last_batch_no}
    finally:
        hub.stop()


class _Forked:
    def __init__(self, cfg, crash_at):
        self.pid, self.killed, self._rc = _fork_uplink(cfg, crash_at), False, None

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self):
        if self._rc is None:
            self.killed = _reap(self.pid)
            self._rc = 1 if self.killed else 0
        return self._rc


class _Cli:
    """``edgenode sync now --job uplink`` as its own process (the long form)."""

    def __init__(self, cfg, crash_at):
        env = {**os.environ, "EDGENODE_CONFIG": "", "EDGENODE_DATA_DIR": str(cfg.data_path),
               "EDGENODE_SYNC_BATCH_MAX_EVENTS": str(cfg["sync.batch_max_events"])}
        env.pop("EDGENODE_CRASH_AT", None)
        if crash_at:
            env["EDGENODE_CRASH_AT"] = crash_at
        self.p = subprocess.Popen([sys.executable, "-m", "edgenode", "sync", "now", "--job", "uplink"], cwd=ROOT,
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.killed = False

    def kill(self):
        self.p.send_signal(signal.SIGKILL)

    def wait(self):
        rc = self.p.wait()
        self.killed = rc == -signal.SIGKILL
        return rc


def _check(result):
    t = result["totals"]
    print(f"\nexactly-once: N={result['n']} events, {result['rounds']} runs, {result['kills']} uplink SIGKILLs, "
          f"{result['hub_kills']} hub SIGKILLs; hub counts {t['events']} events in {t['batches']} batches "
          f"(daily sum {t['daily_n']})")
    assert t["events"] == result["n"], "lost or doubled events"
    assert t["daily_n"] == result["n"] and t["batch_events"] == result["n"]
    assert t["contiguous"] == t["batches"] == result["last_batch_no"], "a gap in the batch numbers"


def test_exactly_once_under_sigkill(tmp_path):
    result = _kill_rounds(tmp_path, 110, 3, spawn=_Forked, seed=1)
    assert result["kills"] >= 100 and result["hub_kills"] >= 3
    _check(result)


@pytest.mark.slow
def test_exactly_once_under_sigkill_cli_long(tmp_path):
    result = _kill_rounds(tmp_path, 300, 10, spawn=_Cli, seed=2)
    assert result["kills"] >= 300 and result["hub_kills"] >= 10
    _check(result)


def _crash_child(fn, crash_at: str) -> None:
    pid = os.fork()
    if pid == 0:
        os.environ["EDGENODE_CRASH_AT"] = crash_at
        try:
            fn()
        finally:
            os._exit(0)
    assert _reap(pid), f"the child did not die at {crash_at}"


def test_batch_written_but_not_committed_is_adopted_not_resealed(cfg):
    from edgenode.node.sync import uplink
    conn = open_main(cfg)
    add_events(conn, 90)
    ident = load_or_create(cfg)
    _crash_child(lambda: uplink.seal(cfg, open_main(cfg), ident), "seal:after_sig")
    (no, path), = outbox.batch_files(cfg)
    data = path.read_bytes()
    assert outbox.state(conn)["sealed_upto"] == 0  # the commit never happened
    assert outbox.recover(cfg, conn, ident)["adopted"] == 1
    assert outbox.state(conn)["sealed_upto"] == 90 and outbox.state(conn)["last_batch_no"] == no
    assert uplink.seal(cfg, conn, ident)["sealed_batches"] == 0  # nothing sealed twice
    assert path.read_bytes() == data
    conn.close()


def test_crash_between_summary_and_its_signature_is_repaired(cfg):
    from edgenode.protocol import usage_batch as B
    from edgenode.node.sync import uplink
    conn = open_main(cfg)
    add_events(conn, 300)
    ident = load_or_create(cfg)
    uplink.seal(cfg, conn, ident)
    _crash_child(lambda: outbox.enforce_cap(cfg, open_main(cfg), ident, cap_bytes=1), "cap:after_batch")
    (no, path), = outbox.batch_files(cfg)
    assert outbox.read_header(path)["kind"] == "daily"
    assert not B.verify_batch(ident.public_b64(), ident.node_id, no, path.read_bytes(),
                              outbox.sig_path(path).read_text())  # the old signature: stale
    assert outbox.recover(cfg, conn, ident)["resigned"] == 1
    assert B.verify_batch(ident.public_b64(), ident.node_id, no, path.read_bytes(), outbox.sig_path(path).read_text())
    header, lines = B.read_batch(path.read_bytes())
    assert header["count"] == sum(a["n"] for a in lines) == 300
    conn.close()


def test_hub_killed_while_batches_are_in_flight(tmp_path):
    """Deterministic 'mid-ingest': SIGKILL the hub once it has stored some but not all of a
    stream of batches, while the node still has requests in flight."""
    hub = Hub(tmp_path / "hub").start()
    try:
        cfg = enrolled_node(tmp_path, hub, sync__batch_max_events=2000)
        node_id = load_or_create(cfg).node_id
        conn = open_main(cfg)
        add_events(conn, 60000, seed=11)
        conn.close()
        proc = _Forked(cfg, None)
        deadline = time.monotonic() + 60
        while hub.totals(node_id)["batches"] < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        stored_before = hub.totals(node_id)["batches"]
        hub.kill()
        proc.wait()
        assert 3 <= stored_before < 30, "the kill must land mid-stream"
        assert outbox.backlog(cfg)["batches"] > 0  # the rest waits on the node
        hub.start()
        _settle(cfg, node_id, hub)
        t = hub.totals(node_id)
        assert t["events"] == t["daily_n"] == 60000 and t["contiguous"] == t["batches"] == 30
    finally:
        hub.stop()
