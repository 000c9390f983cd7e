"""The acceptance run: a county hub and nodes in network namespaces, a rollout of N+1 in rings.

Real processes throughout: ``edgenode hub serve`` and an rsync daemon in the root namespace,
each node in its own network namespace (``i22<pid>n<i>``, a veth pair to the hub) running
nginx, gunicorn and the scheduler from its ``current`` release under tests/node_supervisor.py
(systemd's stand-in).  The release key reaches the nodes through the county's key list at
enrolment; the release travels by the hub's rsync; the nodes learn their turn from the
heartbeat answer.  The test fires each node's heartbeat and ``update check`` (the scheduler's
two jobs) every few seconds instead of waiting the scheduler's minutes.

Default run: 3 nodes, rings of 1 and 2.  ``-m slow``: 6 nodes, rings of 1, 2 and 3.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgenode.protocol.release import build_release
from tests import helpers_provisioning as hp
from tests.helpers_sync import free_port, wait_port
from tests.helpers_updates import NodeUnderTest, bumped_wheel, keys

pytestmark = [pytest.mark.root, pytest.mark.timeout(900),
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2")]
N, N1, BAD = "0.1.0", "0.1.1", "0.1.2"
TAG = f"i22{os.getpid()}"
NET = 100 + os.getpid() % 100  # 10.NET.<node>.1 (hub side) / .2 (node side)


def _ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _hours() -> str:
    t = time.localtime(time.time() - 3600)
    return f"{t.tm_hour:02d}:00-{(t.tm_hour + 4) % 24:02d}:00"


class County:
    def __init__(self, work: Path, n: int):
        self.work, self.n = work, n
        self.hub_dir = work / "hub"
        self.hub_port, self.rsync_port = free_port(), free_port()
        self.procs: list[subprocess.Popen] = []
        self.nodes: list[NodeUnderTest] = []
        self.netns: list[str] = []

    def hub_cli(self, *args) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGENODE_")}
        r = subprocess.run([sys.executable, "-m", "edgenode", "--data-dir", str(self.hub_dir), *args], env=env,
                           capture_output=True, text=True, timeout=120, cwd=hp.REPO)
        if r.returncode:
            raise RuntimeError(f"{args}: {r.stderr or r.stdout}")
        return r.stdout

    def start_hub(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGENODE_")}
        self.procs.append(subprocess.Popen(
            [sys.executable, "-m", "edgenode", "--data-dir", str(self.hub_dir), "hub", "serve", "--host", "0.0.0.0",
             "--port", str(self.hub_port), "--workers", "2"], env=env, cwd=hp.REPO, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(self.hub_port, 60, self.procs[-1])
        root = self.hub_dir / "rsync"
        (root / "channels").mkdir(parents=True, exist_ok=True)
        conf = self.work / "rsyncd.conf"
        conf.write_text(f"pid file = {self.work}/rsyncd.pid\nuse chroot = no\nread only = yes\n"
                        f"[edgenode]\n    path = {root}\n    uid = root\n    gid = root\n")
        self.procs.append(subprocess.Popen(["rsync", "--daemon", "--no-detach", f"--config={conf}",
                                            f"--port={self.rsync_port}", "--address=0.0.0.0"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(self.rsync_port, 20, self.procs[-1])

    def add_node(self, i: int, install_release: Path, deps: Path | None) -> NodeUnderTest:
        ns, host_if, ns_if = f"{TAG}n{i}", f"{TAG}h{i}", f"{TAG}v{i}"
        hub_ip, node_ip = f"10.{NET}.{i}.1", f"10.{NET}.{i}.2"
        _ip("netns", "add", ns)
        self.netns.append(ns)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", ns)
        _ip("addr", "add", f"{hub_ip}/24", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", ns, "addr", "add", f"{node_ip}/24", "dev", ns_if)
        _ip("-n", ns, "link", "set", ns_if, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        extra = (f'[sync]\nrsync_url = "rsync://{hub_ip}:{self.rsync_port}/edgenode"\n'
                 f'heartbeat_minutes = 60\npull_minutes = 600\nuplink_minutes = 600\n')
        node = NodeUnderTest(self.work / f"node{i}", 8080, None, hours=_hours(), extra=extra, netns=ns,
                             host=node_ip)
        node.install(install_release, deps_cache=deps)
        code = json.loads(self.hub_cli("hub", "enroll-code", "--township", "河口镇", "--json"))["code"]
        node.edgenode("enroll", f"http://{hub_ip}:{self.hub_port}", "--code", code)
        self.nodes.append(node)
        return node

    def close(self) -> None:
        for node in self.nodes:
            node.power_cut()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for ns in self.netns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for i in range(len(self.netns)):
            subprocess.run(["ip", "link", "del", f"{TAG}h{i}"], capture_output=True)

    def hub_db(self):
        db = sqlite3.connect(self.hub_dir / "hub.db")
        db.row_factory = sqlite3.Row
        return db

    def drive(self, rollout_id: int, timeout: float = 420) -> dict:
        """Each node's heartbeat and update check, as its scheduler would run them, until the rollout ends."""
        from concurrent.futures import ThreadPoolExecutor

        def jobs(node):
            node.edgenode("sync", "now", "--job", "heartbeat", check=False, timeout=120)
            node.edgenode("update", "check", check=False, timeout=300)

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with ThreadPoolExecutor(len(self.nodes)) as pool:  # each node's scheduler runs on its own
                list(pool.map(jobs, self.nodes))
            r = json.loads(self.hub_cli("hub", "rollout", "show", str(rollout_id), "--json"))
            if r["state"] != "running":
                return r
            time.sleep(1)
        raise TimeoutError(json.dumps(r, ensure_ascii=False, indent=1))


def _usage(node) -> int:
    from edgenode.core.db import open_main
    from tests.helpers_sync import add_events
    conn = open_main(node.cfg)
    try:
        add_events(conn, 20)
    finally:
        conn.close()


def _first_rows(node) -> tuple:
    db = sqlite3.connect(node.cfg.db_path)
    try:
        return tuple(db.execute("SELECT * FROM usage_events ORDER BY rowid LIMIT 20").fetchall())
    finally:
        db.close()


def _rollout(county, n: int, rings: list[str], bad_release: Path, good_release: Path):
    county.hub_cli("hub", "release", "publish", str(bad_release))
    county.hub_cli("hub", "release", "publish", str(good_release))
    data = {i: (_first_rows(node), node.config.read_bytes()) for i, node in enumerate(county.nodes)}

    # 1. A release whose migration fails: the pilot rolls back, the rollout halts before ring 2.
    args = [a for r in rings for a in ("--ring", r)]
    bad = json.loads(county.hub_cli("hub", "rollout", "start", BAD, *args, "--max-fail", "0.1", "--json"))
    pilot = bad["nodes"][0]["node_id"]
    r = county.drive(bad["id"])
    assert r["state"] == "halted", r
    failed = [m for m in r["nodes"] if m["state"] == "failed"]
    assert [m["node_id"] for m in failed] == [pilot] and "migration" in failed[0]["detail"]
    assert failed[0]["code"] == "E_UPDATE_ROLLED_BACK" and "自动回退" in r["reason_zh"]
    assert {m["state"] for m in r["nodes"] if m["node_id"] != pilot} == {"waiting"}
    for i, node in enumerate(county.nodes):
        assert node.running_version() == N and _first_rows(node) == data[i][0]
        assert node.config.read_bytes() == data[i][1]
        state = node.state()
        if node.edgenode("identity", "show").stdout.find(pilot) < 0:
            assert "staged" not in state and "last" not in state, state  # never told, never changed

    # 2. N+1 in rings: every node ends at N+1, ring after ring.
    good = json.loads(county.hub_cli("hub", "rollout", "start", N1, *args, "--max-fail", "0.1", "--json"))
    r = county.drive(good["id"])
    assert r["state"] == "done", r
    assert {m["state"] for m in r["nodes"]} == {"updated"}
    for i, node in enumerate(county.nodes):
        assert node.running_version() == N1 and node.portal_status() == 200
        assert _first_rows(node) == data[i][0] and node.config.read_bytes() == data[i][1]
    opened = {x["ring"]: x["at"] for x in r["log"] if x["event"] == "ring_open"}
    updated = {}
    for x in r["log"]:
        if x["event"] == "node_updated":
            updated.setdefault(x["ring"], []).append(x["at"])
    assert sorted(opened) == list(range(len(rings)))
    for ring in range(1, len(rings)):
        assert max(updated[ring - 1]) <= opened[ring] <= min(updated[ring])
    assert [len(updated[k]) for k in sorted(updated)] == [int(x) for x in rings]


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    work = tmp_path_factory.mktemp("rel")
    k = keys(work / "keys")
    lock, wheelhouse = hp.REPO / "requirements" / "node.lock", hp.wheelhouse()

    wheel_n = hp.build_edgenode_wheel(work / "w-n")  # the one real build; the others are version bumps of it

    def build(version, edit=None):
        wheel = wheel_n if version == N else bumped_wheel(wheel_n, version, work / f"w-{version}", edit)
        return build_release(work / "out", k["release"], wheel=wheel, lock=lock, wheelhouse=wheelhouse)

    def broken_migration(name, text):
        if name != "edgenode/node/usage/schema.py":
            return text
        return text + '\nMIGRATIONS += [(9001, "broken_step", "CREATE TABLE broken (")]\n'

    return {"pub": work / "keys" / "release.pub", "N": build(N), "N1": build(N1),
            "BAD": build(BAD, broken_migration), "work": work}


@pytest.mark.parametrize("n,rings", [pytest.param(3, ["1", "2"], id="3-nodes"),
                                     pytest.param(6, ["1", "2", "3"], id="6-nodes", marks=pytest.mark.slow)])
def test_rollout_in_rings_halts_on_a_failed_pilot_then_reaches_every_node(tmp_path, releases, n, rings):
    county = County(tmp_path, n)
    try:
        county.start_hub()
        county.hub_cli("hub", "keys", "add", str(releases["pub"]), "--channel", "software")
        deps = None
        for i in range(n):
            node = county.add_node(i, releases["N"], deps)
            if deps is None:
                built = next((node.root / "releases").glob("deps-*"))
                deps = tmp_path / "deps-cache" / built.name
                deps.parent.mkdir()
                subprocess.run(["cp", "-al", str(built), str(deps)], check=True)
            _usage(node)
            node.boot()
        _rollout(county, n, rings, releases["BAD"], releases["N1"])
    finally:
        county.close()
