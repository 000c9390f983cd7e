"""A node updates itself for real: release venvs, nginx + gunicorn + scheduler, the health gate.

The node runs as installed (``current`` → a release venv built from a signed release) under
``tests/node_supervisor.py``, a stand-in for systemd only.  Real wheels: edgenode's own, built
once per session, and N+1 by a version bump of the same source; dependencies from the cached
wheelhouse (tests/helpers_provisioning.wheelhouse).

Default run: the update and two kill points.  ``-m slow`` adds the portal that refuses to start,
the stick for a node never online, and thirty kill points.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time

import pytest

from edgenode.protocol.release import build_release
from tests import helpers_provisioning as hp
from tests.helpers_sync import free_port
from tests.helpers_updates import NodeUnderTest, bumped_wheel, keys

pytestmark = pytest.mark.timeout(600)
N, N1 = "0.1.0", "0.1.1"


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

    def release(version, edit=None):
        wheel = wheel_n if version == N else bumped_wheel(wheel_n, version, work / f"w-{version}", edit)
        return build_release(work / "out", k["release"], wheel=wheel, lock=lock, wheelhouse=wheelhouse)

    return {"keys": k, "pub": work / "keys" / "release.pub", "release": release, "work": work,
            "N": release(N), "N1": release(N1)}


@pytest.fixture
def node(tmp_path, kit):
    n = NodeUnderTest(tmp_path / "n", free_port(), kit["pub"])
    deps = next(iter(sorted(kit["work"].glob("deps-cache/deps-*"))), None)
    n.install(kit["N"], deps_cache=deps)
    if deps is None:  # the first node's dependency tree serves the others (hard links)
        import subprocess
        (kit["work"] / "deps-cache").mkdir(exist_ok=True)
        built = next((tmp_path / "n" / "releases").glob("deps-*"))
        subprocess.run(["cp", "-al", str(built), str(kit["work"] / "deps-cache" / built.name)], check=True)
    _usage(n, 25)
    n.boot()
    yield n
    n.power_cut()


def _usage(node, n):
    """Usage a villager made: page views in the database, as the portal records them."""
    from edgenode.core.db import open_main
    from tests.helpers_sync import add_events
    conn = open_main(node.cfg)
    try:
        add_events(conn, n)
    finally:
        conn.close()


def _counts(node) -> tuple:
    """(the villagers' usage rows made before any update, quick_check); the portal probes add page views of
    their own, so only the first rows are compared."""
    db = sqlite3.connect(node.cfg.db_path)
    try:
        return (db.execute("SELECT count(*) FROM (SELECT 1 FROM usage_events ORDER BY rowid LIMIT 25)").fetchone()[0],
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


@pytest.mark.parametrize("rounds", [pytest.param(2, id="2-points"), pytest.param(30, id="30-points",
                                                                                   marks=pytest.mark.slow)])
def test_power_cut_or_killed_updater_at_random_points_leaves_n_or_n1_with_data(node, kit, rounds):
    rng = random.Random(22)
    for i in range(rounds):
        before = _counts(node)
        node.edgenode("update", "stage", str(kit["N1"]))
        import subprocess
        upd_proc = subprocess.Popen([str(node.root / "current" / "bin" / "edgenode"), "update", "apply"],
                                    env=node.env, start_new_session=True, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, 6.0))
        if rng.random() < 0.5:
            node.power_cut()  # the whole node: supervisor, nginx, portal, scheduler, updater
            upd_proc.wait()
            node.boot()       # boot: recovery first, then the services
        else:
            import os
            import signal
            try:
                os.killpg(upd_proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            upd_proc.wait()
            node.edgenode("update", "recover", "--stop", "--start")  # the update unit's ExecStopPost
            node.wait_portal(60)
        assert node.running_version() in (N, N1)
        assert _counts(node) == before and before[1] == "ok"
        assert "attempt" not in node.state()
        from edgenode.node.updates import releases, state
        if node.running_version() == N1:  # back to N for the next round, as a fresh install of N would be
            node.power_cut()
            releases.switch(node.cfg, next(p for p in (node.root / "releases").iterdir()
                                           if p.name.startswith(N + "-")))
            state.set_keys(node.cfg, last=None, failed=None, staged=None)
            node.boot()
        else:  # rolled back (a gate too slow on a loaded machine is a real rollback) or interrupted
            state.set_keys(node.cfg, last=None, failed=None, staged=None)


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
