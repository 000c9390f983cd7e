"""A node updates itself for real: release venvs, nginx + gunicorn + scheduler, the health gate.

The node runs as installed (``current`` → a release venv built from a signed release) under
``tests/node_supervisor.py``, a stand-in for systemd only.  Real wheels: edgenode's own, built
once per session, and N+1 by a version bump of the same source; dependencies from the cached
wheelhouse (tests/helpers_provisioning.wheelhouse).

Default run: the update and four kill points (power cuts on a disk image that loses what had not
reached it, tests/helpers_disk.py, and SIGKILLs of the updater).  ``-m slow`` adds the portal that
refuses to start, the stick for a node never online, and thirty kill points.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import time

import pytest

from edgenode.protocol.release import build_release
from tests import helpers_disk
from tests import helpers_provisioning as hp
from tests.helpers_sync import free_port
from tests.helpers_updates import NodeUnderTest, bumped_wheel, dpkg_status, keys, tiny_deb

pytestmark = pytest.mark.timeout(600)
N, N1 = "0.1.0", "0.1.1"
PKG = f"u22node-tiny-{os.getpid()}"


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """Release key, and the signed releases N and N+1 (real wheels)."""
    from edgenode import __version__
    assert __version__ == N
    work = tmp_path_factory.mktemp("releases")
    k = keys(work / "keys")
    wheelhouse = hp.wheelhouse()
    lock = hp.REPO / "requirements" / "node.lock"

    wheel_n = hp.build_edgenode_wheel(work / "w-n")  # the one real build; the others are version bumps of it

    def release(version, edit=None, debs=()):
        wheel = wheel_n if version == N else bumped_wheel(wheel_n, version, work / f"w-{version}", edit)
        return build_release(work / "out", k["release"], wheel=wheel, lock=lock, wheelhouse=wheelhouse, debs=debs)

    # N+1 carries a Debian package (into each node's scratch dpkg root: helpers_updates.NodeUnderTest)
    return {"keys": k, "pub": work / "keys" / "release.pub", "release": release, "work": work,
            "N": release(N), "N1": release(N1, debs=[tiny_deb(work / "debs", PKG, "1.0")])}


def _installed(root, kit) -> NodeUnderTest:
    """A node at N with the villagers' usage, booted."""
    import subprocess
    n = NodeUnderTest(root, free_port(), kit["pub"])
    deps = next(iter(sorted(kit["work"].glob("deps-cache/deps-*"))), None)
    n.install(kit["N"], deps_cache=deps)
    if deps is None:  # the first node's dependency tree serves the others (hard links where they can)
        (kit["work"] / "deps-cache").mkdir(exist_ok=True)
        built = next((root / "releases").glob("deps-*"))
        same = built.stat().st_dev == kit["work"].stat().st_dev
        subprocess.run(["cp", "-al" if same else "-a", str(built), str(kit["work"] / "deps-cache" / built.name)],
                       check=True)
    _usage(n, 25)
    n.boot()
    return n


@pytest.fixture
def node(tmp_path, kit):
    n = _installed(tmp_path / "n", kit)
    yield n
    n.power_cut()


@pytest.fixture
def disk_node(tmp_path, kit):
    """A node whose whole root (data, ``current``, the release directories) is on a disk whose power
    can be cut (tests/helpers_disk.py)."""
    why = helpers_disk.why_not()
    if why:
        pytest.skip(why)
    disk = helpers_disk.CutDisk(tmp_path / "disk", tmp_path / "n")
    n = None
    try:
        n = _installed(tmp_path / "n", kit)
        n.disk = disk
        yield n
    finally:
        if n is not None:
            n.power_cut()
        disk.close()


def _usage(node, n, seed=0, start_at=1000000000.0):
    """Usage a villager made: page views in the database, as the portal records them (committed)."""
    from edgenode.core.db import open_main
    from tests.helpers_sync import add_events
    conn = open_main(node.cfg)
    try:
        add_events(conn, n, seed=seed, start_at=start_at)
    finally:
        conn.close()


def _counts(node) -> tuple:
    """(the villagers' usage rows, quick_check); the portal's probes add page views of their own, stamped
    now, so only ours, stamped in 2001-2002, are counted."""
    db = sqlite3.connect(node.cfg.db_path)
    try:
        return (db.execute("SELECT count(*) FROM usage_events WHERE at < 1040000000").fetchone()[0],
                db.execute("PRAGMA quick_check").fetchone()[0])
    finally:
        db.close()


def test_a_staged_release_installs_passes_the_gate_and_keeps_data_and_config(node, kit):
    before, config = _counts(node), node.config.read_bytes()
    r = node.edgenode("update", "stage", str(kit["N1"]), "--json")
    assert json.loads(r.stdout)[0]["result"] == "staged"
    r = node.edgenode("update", "apply", "--json", check=False)
    last = json.loads(r.stdout)
    assert r.returncode == 0 and last["state"] == "committed", r.stdout + r.stderr
    assert node.running_version() == N1 and node.portal_status() == 200
    assert set(last["checks"].values()) == {"ok"} and last["seconds_down"] < 30
    alive = json.loads((node.data / "updates" / "scheduler-alive").read_text())
    assert alive["version"] == N1
    assert _counts(node) == before and node.config.read_bytes() == config
    status = json.loads(node.edgenode("update", "status", "--json").stdout)
    assert status["version"] == N1 and status["last_update"]["state"] == "committed"
    # the Debian package N+1 carries, installed before the switch (into the node's scratch dpkg root)
    assert last["debs"] == [f"{PKG}_1.0_all.deb"] and dpkg_status(node.dpkg_root, PKG) == "install ok installed\t1.0"


def test_a_release_whose_debian_package_cannot_install_is_not_started(node, kit):
    """A package that dpkg refuses (here: a dependency the point lacks, and no network) stops the update
    before anything stops: E_UPDATE_ROLLED_BACK with E_UPDATE_DEB, N still serving, not tried again."""
    bad = kit["release"]("0.1.2", debs=[tiny_deb(kit["work"] / "bad-debs", PKG + "-bad", "1.0",
                                                 depends=PKG + "-absent")])
    before = _counts(node)
    node.edgenode("update", "stage", str(bad))
    r = node.edgenode("update", "apply", "--json", check=False)
    last = json.loads(r.stdout)
    assert r.returncode == 1 and last["state"] == "rolled_back" and last["code"] == "E_UPDATE_ROLLED_BACK"
    assert last["reason"].startswith("E_UPDATE_DEB: dpkg --install failed") and "dependency" in last["reason"]
    assert "seconds_down" not in last  # the services never stopped
    assert node.running_version() == N and node.portal_status() == 200 and _counts(node) == before
    assert "0.1.2" in json.loads(node.edgenode("update", "status", "--json").stdout)["failed"]


@pytest.mark.slow  # the default run shows a rollback by a failed migration (test_updates_rollout.py)
def test_a_release_whose_portal_refuses_to_start_rolls_back_by_itself(node, kit):
    def broken_portal(name, text):
        return "raise SystemExit('this test build refuses to start')\n" + text if name == "edgenode/node/wsgi.py" else text
    bad = kit["release"]("0.1.2", broken_portal)
    before = _counts(node)
    node.edgenode("update", "stage", str(bad))
    r = node.edgenode("update", "apply", "--json", check=False)
    last = json.loads(r.stdout)
    assert r.returncode == 1 and last["state"] == "rolled_back" and last["code"] == "E_UPDATE_ROLLED_BACK"
    assert "health gate failed" in last["reason"] and "portal" in last["reason"]
    assert node.running_version() == N
    node.wait_portal(30)
    assert _counts(node) == before
    section = json.loads(node.edgenode("update", "status", "--json").stdout)
    assert section["last_update"]["code"] == "E_UPDATE_ROLLED_BACK" and "0.1.2" in section["failed"]


PHASES = ["start", "building", "packages", "stopping", "switched", "migrating", "gate", "done"]


def _at_phase(node, upd, target: str, timeout: float = 300) -> None:
    """Wait until the updater is in ``target`` (or past it), reading its journal as it goes."""
    want, end = PHASES.index(target), time.monotonic() + timeout
    while time.monotonic() < end and upd.poll() is None:
        attempt = node.state().get("attempt")
        phase = attempt.get("phase") if attempt else ("start" if "last" not in node.state() else "done")
        if PHASES.index(phase if phase in PHASES else "gate") >= want:
            return
        time.sleep(0.02)


def _recovery_started(node, timeout: float = 60) -> None:
    """Wait until the boot's ``edgenode update recover`` runs."""
    from tests.helpers_updates import node_pids
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for pid in node_pids(str(node.root)):
            with contextlib.suppress(OSError):
                if b"update\0recover" in open(f"/proc/{pid}/cmdline", "rb").read():
                    return
        time.sleep(0.02)


def _cut_point(node) -> str:
    """Where the cut found the update, as the journal on the disk says."""
    doc = node.state()
    if doc.get("attempt"):
        return doc["attempt"].get("phase", "?")
    return (doc.get("last") or {}).get("state", "not started")


@pytest.mark.parametrize("rounds", [pytest.param(4, id="4-points"), pytest.param(30, id="30-points",
                                                                                   marks=pytest.mark.slow)])
def test_power_cut_or_killed_updater_at_random_points_leaves_n_or_n1_with_data(disk_node, kit, rounds):
    """Each round: villagers' usage committed, N+1 staged, the updater started, and at a random point
    (a random phase of its journal, then a random delay) either the updater alone is SIGKILLed (the
    update unit's ExecStopPost then runs ``update recover``) or the power goes: every process of the
    node SIGKILLed and its disk cut and remounted (tests/helpers_disk.py: only what had reached the
    disk survives; some power cuts strike again while the boot's recovery runs).  The node must come
    back on N or N+1, serving, its usage and config intact; after all the cuts an update left alone
    still commits (nothing the cuts left behind blocks it)."""
    import shutil
    import signal
    import subprocess
    from collections import Counter

    from edgenode.node.updates import releases, state
    node, rng, config, hits = disk_node, random.Random(22), disk_node.config.read_bytes(), Counter()
    kinds = [(power, phase) for phase in PHASES for power in (True, False)]  # "done": just after the commit
    rng.shuffle(kinds)  # every phase, both ways, before any repeats; the delay inside it is random
    for i in range(rounds):
        power, phase = kinds[i % len(kinds)]
        _usage(node, 5, seed=i, start_at=1000000000.0 + 100000 * (i + 1))
        before = _counts(node)
        node.edgenode("update", "stage", str(kit["N1"]))
        upd = subprocess.Popen([str(node.root / "current" / "bin" / "edgenode"), "update", "apply"],
                               env=node.env, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        _at_phase(node, upd, phase)
        time.sleep(rng.uniform(0.0, {"building": 4.0, "packages": 0.1}.get(phase, 0.6)))  # about each phase's length
        if power:
            node.power_cut()  # the whole node: supervisor, nginx, portal, scheduler, updater
            upd.wait()
            node.disk.cut()   # and the disk keeps only what had reached it
            hits["power cut during " + _cut_point(node)] += 1
            if node.state().get("attempt") and rng.random() < 0.5:  # and again while the boot's recovery
                node.boot(wait=False)                                 # runs: it must run again, the same
                _recovery_started(node)
                time.sleep(rng.uniform(0.0, 0.4))
                node.power_cut()
                node.disk.cut()
                hits["and again during its recovery (journal then: " + _cut_point(node) + ")"] += 1
            node.boot(120)    # boot: recovery first, then the services
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(upd.pid, signal.SIGKILL)
            upd.wait()
            hits["SIGKILL during " + _cut_point(node)] += 1
            node.edgenode("update", "recover", "--stop", "--start")  # the update unit's ExecStopPost
            node.wait_portal(60)
        assert node.running_version() in (N, N1), f"round {i}"
        assert _counts(node) == before and before[1] == "ok", f"round {i}"
        assert node.config.read_bytes() == config and "attempt" not in node.state()
        hits["came back on " + node.running_version()] += 1
        if node.running_version() == N1:  # back to N for the next round, as a fresh install of N would be
            node.power_cut()
            releases.switch(node.cfg, next(p for p in (node.root / "releases").iterdir()
                                           if p.name.startswith(N + "-")))
            node.boot()
        # and without N+1's release directory and package, so each round builds and installs for real
        for d in (node.root / "releases").glob(N1 + "-*"):
            shutil.rmtree(d)
        subprocess.run(["dpkg", f"--root={node.dpkg_root}", "--purge", PKG], capture_output=True, check=True)
        # a rollback (a gate too slow on a loaded machine is a real one) or three interruptions mark N+1
        # failed; forget it, as the county would by publishing a fresh N+1
        state.set_keys(node.cfg, last=None, failed=None)
    print(f"\n{rounds} points: {dict(sorted(hits.items()))}")
    node.edgenode("update", "stage", str(kit["N1"]))
    r = node.edgenode("update", "apply", "--json", check=False)
    assert json.loads(r.stdout or "{}").get("state") == "committed", r.stdout + r.stderr
    assert node.running_version() == N1 and _counts(node)[0] == 25 + 5 * rounds
    assert dpkg_status(node.dpkg_root, PKG) == "install ok installed\t1.0"


@pytest.mark.slow
def test_a_stick_carrying_n1_updates_a_node_that_was_never_online(tmp_path, kit):
    """The county writes the stick with `hub usb-tree`; the node imports it and its update job installs it."""
    import subprocess
    import sys

    hub = tmp_path / "hub"
    for args in (["hub", "release", "publish", str(kit["N1"])], ["hub", "usb-tree", str(tmp_path / "stick")]):
        subprocess.run([sys.executable, "-m", "edgenode", "--data-dir", str(hub), *args], check=True,
                       capture_output=True, cwd=hp.REPO, env={"PATH": "/usr/bin:/bin"})
    assert (tmp_path / "stick" / "edgenode-bundles" / "software" / f"edgenode-{N1}" / "release.json").is_file()
    t = time.localtime(time.time() - 3600)
    node = NodeUnderTest(tmp_path / "n", free_port(), kit["pub"],
                         hours=f"{t.tm_hour:02d}:00-{(t.tm_hour + 3) % 24:02d}:00")
    deps = next(iter(sorted(kit["work"].glob("deps-cache/deps-*"))), None)
    node.install(kit["N"], deps_cache=deps)
    _usage(node, 25)
    node.boot()
    try:
        before = _counts(node)
        node.edgenode("import", str(tmp_path / "stick"))  # what the stick watcher runs
        assert node.state()["staged"]["version"] == N1
        r = json.loads(node.edgenode("update", "check", "--json").stdout)  # the scheduler's update job
        assert r["state"] in ("started", "waiting"), r
        end = time.monotonic() + 600  # a loaded 2-core machine builds the release slowly
        while time.monotonic() < end and (node.state().get("last") or {}).get("state") != "committed":
            time.sleep(1)
        assert node.state()["last"]["state"] == "committed" and node.running_version() == N1
        assert node.portal_status() == 200 and _counts(node) == before
    finally:
        node.power_cut()
