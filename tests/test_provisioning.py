"""provisioning/install.sh and upgrade.sh, run for real in a chroot.

Every test runs on two kinds of Debian 12 root (the ``base`` fixture):

* ``host`` (every CI run): a copy-on-write overlay of this machine's own Debian 12,
  so no download is needed;
* ``debootstrap`` (``pytest -m slow``): a Debian 12 minbase root made by debootstrap,
  cached under /var/cache/edgenode-test keyed by a hash of its inputs (built on first
  use in about two minutes; prebuild with ``.venv/bin/python tests/helpers_provisioning.py``).
  minisign is left out of it, so the installer's package step really runs apt-get.

The installer, the checks and the tree checksums are the same in both.  Full command:

    sudo .venv/bin/python -m pytest -m "slow or not slow" tests/test_provisioning.py tests/test_firstboot.py
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests import helpers_provisioning as hp

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for overlay mounts and chroot"),
    pytest.mark.timeout(600),
]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    """(edgenode wheel, wheelhouse of its dependencies), built on the host: the chroot never sees PyPI."""
    return hp.build_edgenode_wheel(tmp_path_factory.mktemp("dist")), hp.wheelhouse()


@pytest.fixture(scope="module", params=hp.base_param())
def base(request):
    """The Debian 12 the roots are made of: this machine (fast) or a debootstrap root (slow)."""
    return request.param


@pytest.fixture(scope="module")
def installed(tmp_path_factory, wheels, base):
    """One install on a fresh root, then a second run: the tree of changes after each."""
    work = tmp_path_factory.mktemp("installed")
    root = hp.new_root(base, work / "r", keep_upper=True)
    try:
        with root:
            opts = hp.prepare(root, *wheels)
            first = root.run(hp.INSTALLER, *hp.INSTALL_ARGS, *opts)
            digest1 = hp.tree_digest(root.upper, skip=["srv/"])
            facts = hp.check_installed(root, work / "look")
            password = hp.printed_password(first.stdout)
            password_ok = password is not None and hp.admin_password_works(root, work / "look", password)
            second = root.run(hp.INSTALLER, *hp.INSTALL_ARGS, *opts)
            digest2 = hp.tree_digest(root.upper, skip=["srv/"])
        yield {"upper": root.upper, "first": first, "second": second, "digest1": digest1, "digest2": digest2,
               "facts": facts, "password_ok": password_ok, "base": base}
    finally:
        root.discard()


def test_first_run_makes_user_dirs_config_identity_units(installed):
    out = installed["first"].stdout
    assert installed["facts"]["node_id"] in out
    assert "the scheduler will retry" in out  # hub unreachable: a pending enrolment, not a failure
    assert installed["password_ok"], "the printed admin password does not log in"


def test_second_run_changes_nothing(installed):
    d1, d2 = installed["digest1"], installed["digest2"]
    assert len(d1) > 1000  # the venv, units, config, data: a real tree, not an empty one
    assert {k for k in d1.keys() | d2.keys() if d1.get(k) != d2.get(k)} == set()
    assert hp.printed_password(installed["second"].stdout) is None, "the password is printed only once"


@pytest.mark.parametrize("kill_point", ["pip-install", pytest.param("after-config", marks=pytest.mark.slow)])
def test_interrupted_install_completes_on_rerun(tmp_path, wheels, installed, kill_point):
    base = installed["base"]
    ready = {
        # half-way through building the venv
        "pip-install": lambda up: any(up.glob("opt/edgenode-releases/*/lib/python3.11/site-packages/flask")),
        # program and config in place, database/identity/password/units not yet
        "after-config": lambda up: (up / "etc/edgenode/edgenode.toml").exists(),
    }[kill_point]
    with hp.new_root(base, tmp_path / "r") as root:
        opts = hp.prepare(root, *wheels)
        proc = root.popen(hp.INSTALLER, *hp.INSTALL_ARGS, *opts)
        hp.kill_when(proc, lambda: ready(root.upper))
        state = root.path / "etc/edgenode/install-state"
        assert not (state.exists() and "complete" in state.read_text()), "killed too late to prove anything"

        rerun = root.run(hp.INSTALLER, *hp.INSTALL_ARGS, *opts)
        facts = hp.check_installed(root, tmp_path / "look")
        password = hp.printed_password(rerun.stdout)
        if password:  # killed before the password step: the re-run makes and prints it
            assert hp.admin_password_works(root, tmp_path / "look", password)
        assert facts["admin_hash"]
        # Same files as an uninterrupted install (contents of random secrets aside).
        after = hp.tree_digest(root.upper, skip=["srv/"])
        random_parts = ("var/lib/edgenode/", "etc/shadow", "etc/gshadow", "etc/ssh/")
        assert {k for k in after if not k.startswith(random_parts)} == \
               {k for k in installed["digest1"] if not k.startswith(random_parts)}
        # And nothing half-built is left behind.
        assert len(list((root.path / "opt/edgenode-releases").iterdir())) == 1
        if base == "debootstrap":
            assert "install ok installed" in root.run("dpkg-query", "-W", "-f=${Status}", "minisign").stdout


@pytest.mark.parametrize("args", [
    ["--hub", "ftp://hub.example", "--code", "X"],
    ["--hub", "https://hub.example"],
    ["--code", "ABC"],
    ["--purge"],
    ["--bogus"],
    [],  # first install without --name
])
def test_bad_arguments_are_refused_and_change_nothing(tmp_path, args):
    with hp.Root(Path("/"), tmp_path / "r") as root:  # refused before touching anything: one base is enough
        root.bind(hp.checkout_snapshot(tmp_path / "checkout"), "/srv/edgenode-src")
        res = root.run(hp.INSTALLER, *args, check=False)
        assert res.returncode != 0 and "edgenode: error:" in res.stderr
        assert hp.tree_digest(root.upper, skip=["srv/"]) == {}


def test_upgrade_keeps_data_and_config_backs_up_first_and_migrates(tmp_path, wheels, installed):
    wheel, wheelhouse = wheels
    nxt = hp.build_edgenode_wheel(tmp_path / "next", patch=hp.add_migration(
        [(9001, "upgrade_probe", "CREATE TABLE upgrade_probe (x INTEGER)")]))
    with hp.new_root(installed["base"], tmp_path / "r", over=installed["upper"]) as root:
        hp.prepare(root, wheel, wheelhouse)
        root.bind(nxt.parent, "/srv/next")
        r = root.path
        # A technician's own edit, and data made by use.
        cfg = r / "etc/edgenode/edgenode.toml"
        cfg.write_text(cfg.read_text() + "\n[store]\nfree_space_floor_mb = 500\n")
        config_before = cfg.read_bytes()
        root.run("runuser", "-u", "edgenode", "--", "/opt/edgenode/bin/edgenode", "admin", "set-password",
                 "--password-stdin", input="correct horse battery\n")
        old_release = os.readlink(r / "opt/edgenode")
        node_id = (r / "var/lib/edgenode/identity/node_id").read_text()

        up = root.run("/srv/edgenode-src/provisioning/upgrade.sh", "--wheel", f"/srv/next/{nxt.name}",
                      "--wheelhouse", "/srv/wheelhouse")
        assert "database backed up to" in up.stdout

        new_release = os.readlink(r / "opt/edgenode")
        assert new_release != old_release and (r / old_release.lstrip("/")).is_dir()  # previous kept for rollback
        assert cfg.read_bytes() == config_before
        assert (r / "var/lib/edgenode/identity/node_id").read_text() == node_id
        assert hp.admin_password_works(root, tmp_path / "live", "correct horse battery")
        live = hp.read_db(root, tmp_path / "live")
        assert live.execute("SELECT 1 FROM schema_migrations WHERE area='usage' AND version=9001").fetchone()
        live.close()

        (backup,) = (r / "var/lib/edgenode/backups").glob("edgenode-*.db")
        assert oct(backup.stat().st_mode & 0o777) == "0o600"
        b = sqlite3.connect(backup)
        assert b.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        # Taken before the migration ran, with the data of the old release.
        assert not b.execute("SELECT 1 FROM schema_migrations WHERE version=9001").fetchone()
        assert b.execute("SELECT count(*) FROM admin_accounts").fetchone()[0] == 1
        b.close()
        hp.check_installed(root, tmp_path / "look")


@pytest.mark.slow
def test_failed_migration_rolls_back_release_and_database(tmp_path, wheels, installed):
    wheel, wheelhouse = wheels
    bad = hp.build_edgenode_wheel(tmp_path / "bad", patch=hp.add_migration(
        [(9001, "good_step", "CREATE TABLE half_done (x INTEGER)"),
         (9002, "broken_step", "CREATE TABLE broken (")]))
    with hp.new_root(installed["base"], tmp_path / "r", over=installed["upper"]) as root:
        hp.prepare(root, wheel, wheelhouse)
        root.bind(bad.parent, "/srv/bad")
        old_release = os.readlink(root.path / "opt/edgenode")
        res = root.run("/srv/edgenode-src/provisioning/upgrade.sh", "--wheel", f"/srv/bad/{bad.name}",
                       "--wheelhouse", "/srv/wheelhouse", check=False)
        assert res.returncode != 0 and "upgrade failed" in res.stderr
        assert os.readlink(root.path / "opt/edgenode") == old_release
        db = hp.read_db(root, tmp_path / "db")
        assert not db.execute("SELECT 1 FROM sqlite_master WHERE name='half_done'").fetchone()
        assert db.execute("SELECT count(*) FROM admin_accounts").fetchone()[0] == 1
        db.close()


def test_uninstall_keeps_data_purge_removes_it(tmp_path, installed):
    with hp.new_root(installed["base"], tmp_path / "r", over=installed["upper"]) as root:
        root.bind(hp.checkout_snapshot(tmp_path / "checkout"), "/srv/edgenode-src")
        r = root.path
        node_id = (r / "var/lib/edgenode/identity/node_id").read_text()
        root.run(hp.INSTALLER, "--uninstall")
        assert not (r / "opt/edgenode").exists() and not (r / "opt/edgenode-releases").exists()
        assert not (r / "etc/systemd/system/edgenode-web.service").exists()
        assert not (r / "etc/systemd/system/multi-user.target.wants/edgenode-web.service").exists()
        assert (r / "var/lib/edgenode/identity/node_id").read_text() == node_id
        assert (r / "etc/edgenode/edgenode.toml").exists() and (r / "var/lib/edgenode/edgenode.db").exists()
        root.run(hp.INSTALLER, "--uninstall", "--purge")
        assert not (r / "var/lib/edgenode").exists() and not (r / "etc/edgenode").exists()
        assert hp.passwd_entry(root, "edgenode") is None


def test_package_step_installs_what_is_missing(installed):
    """In the debootstrap root minisign was left out on purpose: the installer must apt-get it."""
    if installed["base"] != "debootstrap":
        pytest.skip("the host already has every package; the debootstrap form proves this")
    assert "installing system packages: minisign" in installed["first"].stdout


def test_enrols_with_a_reachable_hub_else_the_scheduler_enrols_later(tmp_path, wheels, installed):
    """A real hub (`edgenode hub serve`) on loopback, which the chroot shares with the host."""
    from tests.helpers_sync import Hub

    hub = Hub(tmp_path / "hub")
    code_now, code_later = hub.new_code(), hub.new_code()

    def hub_knows(node_id: str) -> bool:
        conn = hub.db()
        try:
            return conn.execute("SELECT 1 FROM hub_nodes WHERE node_id = ?", (node_id,)).fetchone() is not None
        finally:
            conn.close()

    try:
        hub.start()
        with hp.new_root(installed["base"], tmp_path / "a", over=installed["upper"]) as root:
            opts = hp.prepare(root, *wheels)
            out = root.run(hp.INSTALLER, "--hub", hub.url, "--code", code_now, *opts).stdout
            assert f"enrolled with {hub.url}" in out
            assert not (root.path / "var/lib/edgenode/enroll-pending.json").exists()
            assert hub_knows((root.path / "var/lib/edgenode/identity/node_id").read_text().strip())

        hub.stop()  # the county's link is down during the install ...
        with hp.new_root(installed["base"], tmp_path / "b", over=installed["upper"]) as root:
            opts = hp.prepare(root, *wheels)
            as_edgenode = ["runuser", "-u", "edgenode", "--", "/opt/edgenode/bin/edgenode"]
            root.run(*as_edgenode, "identity", "reset", "--yes")  # another PC, not a clone of the first
            node_id = (root.path / "var/lib/edgenode/identity/node_id").read_text().strip()
            out = root.run(hp.INSTALLER, "--hub", hub.url, "--code", code_later, *opts).stdout
            assert "the scheduler will retry" in out
            pending = root.path / "var/lib/edgenode/enroll-pending.json"
            assert pending.exists() and hub.url in pending.read_text()

            hub.start()  # ... and comes back: the scheduler's next hub job enrols first
            root.run(*as_edgenode, "sync", "now", "--job", "heartbeat")
            assert not pending.exists()
            assert hub_knows(node_id)
    finally:
        hub.stop()


def test_a_node_installed_and_enrolled_imports_the_countys_stick_with_no_trust_step(tmp_path, wheels, installed):
    """install.sh --hub --code pins the county key; the county's stick then just imports (issue 15)."""
    import json
    import shutil

    from tests.helpers_bundles import make_source
    from tests.helpers_sync import Hub

    hub = Hub(tmp_path / "hub")
    try:
        hub.start()
        code = hub.new_code()
        hub.cli("publish", str(make_source(tmp_path / "src", n=2)), "--channel", "sannong")
        hub.cli("usb-tree", str(tmp_path / "stick"))
        with hp.new_root(installed["base"], tmp_path / "r", over=installed["upper"]) as root:
            opts = hp.prepare(root, *wheels)
            root.run(hp.INSTALLER, "--hub", hub.url, "--code", code, *opts)
            shutil.copytree(tmp_path / "stick", root.path / "media/stick")
            as_edgenode = ["runuser", "-u", "edgenode", "--", "/opt/edgenode/bin/edgenode"]
            out = root.run(*as_edgenode, "import", "--json", "/media/stick").stdout
            assert [r["result"] for r in json.loads(out)] == ["imported"], out
    finally:
        hub.stop()


def test_rerun_hands_root_owned_leftovers_back_to_the_service_user(tmp_path, wheels, installed):
    """`sudo edgenode ...` run as root can leave root-owned files that lock the services out."""
    with hp.new_root(installed["base"], tmp_path / "r", over=installed["upper"]) as root:
        opts = hp.prepare(root, *wheels)
        data = root.path / "var/lib/edgenode"
        (data / "backups").mkdir(exist_ok=True)
        (data / "backups" / "by-root.db").write_bytes(b"x")
        os.chown(data / "edgenode.db", 0, 0)
        as_edgenode = ["runuser", "-u", "edgenode", "--", "/opt/edgenode/bin/edgenode"]
        locked = root.run(*as_edgenode, "admin", "set-password", "--password-stdin", input="another password 1\n",
                          check=False)
        assert locked.returncode != 0  # the service user cannot write a root-owned database
        root.run(hp.INSTALLER, *hp.INSTALL_ARGS, *opts)
        uid = int(hp.passwd_entry(root, "edgenode")[2])
        assert {p.stat().st_uid for p in data.rglob("*")} == {uid}
        root.run(*as_edgenode, "admin", "set-password", "--password-stdin", input="another password 1\n")
