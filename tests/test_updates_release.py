"""Software releases: signed by a release key only, never unsigned, never older, every file as named.

Real keys, a real trust store (the node's database), the real key-list path from the hub's
keychain, and the CLI a technician or the stick import would use.
"""

from __future__ import annotations

import json

import pytest

from edgenode import __version__
from edgenode.hub import keychain
from edgenode.node.imports import trust
from edgenode.node.updates import state
from edgenode.protocol import minisign
from edgenode.protocol.release import RELEASE_SIG, lock_pins, version_key
from tests.conftest import make_config
from tests.helpers_updates import keys, small_release

NEXT = "0.9.1"


@pytest.fixture
def trusted(tmp_path, conn, cfg):
    """A node enrolled with a county hub whose key list grants a release key ``software``."""
    k = keys(tmp_path / "keys")
    hub_cfg = make_config(tmp_path / "hub")
    keychain.add(hub_cfg, tmp_path / "keys" / "release.pub", ["software"])
    keychain.add(hub_cfg, tmp_path / "keys" / "content.pub", ["sannong"])
    trust.pin_county(conn, keychain.offer(hub_cfg))
    return k, hub_cfg


def test_the_county_key_list_grants_software_to_the_release_key_only(trusted, conn):
    k, hub_cfg = trusted
    assert trust.channels_of(conn, k["release"].key_id_hex) == {"software"}
    assert trust.channels_of(conn, k["content"].key_id_hex) == {"sannong"}
    county = keychain.county_key(hub_cfg).key_id_hex
    assert "software" in trust.channels_of(conn, county) and "sannong" in trust.channels_of(conn, county)


def test_a_release_signed_by_the_release_key_is_staged(trusted, tmp_path, runner, cfg):
    k, _ = trusted
    rel = small_release(tmp_path / "out", k["release"], NEXT)
    r = runner("update", "stage", str(rel), "--json")
    assert r.exit_code == 0, r.output
    (res,) = json.loads(r.output)
    assert res["result"] == "staged" and res["version"] == NEXT
    staged = state.load(cfg)["staged"]
    assert staged["version"] == NEXT and (tmp_path / staged["dir"]).joinpath("release.json").is_file()
    assert json.loads(runner("update", "stage", str(rel), "--json").output)[0]["result"] == "unchanged"


def _hostile(kind, k, hub_cfg, tmp_path):
    out = tmp_path / "out"
    if kind == "content key":
        return small_release(out, k["content"], NEXT)
    if kind == "county key":
        return small_release(out, keychain.county_key(hub_cfg), NEXT)
    if kind == "unknown key":
        return small_release(out, k["stranger"], NEXT)
    if kind == "unsigned":
        rel = small_release(out, k["release"], NEXT)
        (rel / RELEASE_SIG).unlink()
        return rel
    if kind == "older version":
        return small_release(out, k["release"], "0.0.9")
    if kind == "same version":
        return small_release(out, k["release"], __version__)
    if kind == "file changed":
        rel = small_release(out, k["release"], NEXT)
        dep = next((rel / "deps").iterdir())
        dep.write_bytes(b"tampered dependency")
        return rel
    if kind == "manifest changed":
        rel = small_release(out, k["release"], NEXT)
        doc = (rel / "release.json").read_text().replace(NEXT, "0.9.2")
        (rel / "release.json").write_text(doc)
        return rel
    raise AssertionError(kind)


@pytest.mark.parametrize("kind,code", [
    ("content key", "E_RELEASE_KEY"),
    ("county key", "E_RELEASE_KEY"),
    ("unknown key", "E_RELEASE_KEY"),
    ("unsigned", "E_RELEASE_UNSIGNED"),
    ("older version", "E_RELEASE_OLDER"),
    ("same version", "E_RELEASE_OLDER"),
    ("file changed", "E_RELEASE_HASH"),
    ("manifest changed", "E_RELEASE_SIGNATURE"),
])
def test_hostile_releases_are_refused_with_their_code_and_change_nothing(trusted, tmp_path, runner, cfg, kind, code):
    k, hub_cfg = trusted
    rel = _hostile(kind, k, hub_cfg, tmp_path)
    before = state.load(cfg)
    r = runner("update", "stage", str(rel), "--json")
    assert r.exit_code == 1
    (res,) = json.loads(r.output)
    assert res["result"] == "refused" and res["code"] == code, res
    assert res["error_zh"] and "未安装" in res["error_zh"]
    assert state.load(cfg) == before
    assert not (cfg.data_path / "updates" / "staged").exists() or \
        not any(p for p in (cfg.data_path / "updates" / "staged").iterdir() if not p.name.startswith("."))


def test_versions_compare_as_numbers_and_the_lock_is_read_with_its_hashes():
    assert version_key("0.10.0") > version_key("0.9.9") and version_key("1.0") == version_key("1.0.0")
    with pytest.raises(Exception):
        version_key("1.0-rc1")
    pins = lock_pins("a==1 \\\n    --hash=sha256:" + "a" * 64 + " \\\n    --hash=sha256:" + "b" * 64 + "\n"
                     "    # via x\nb-c==2.0 \\\n    --hash=sha256:" + "c" * 64 + "\n")
    assert pins == [("a", "1", {"a" * 64, "b" * 64}), ("b-c", "2.0", {"c" * 64})]


def test_a_release_key_signature_is_minisign_compatible(tmp_path):
    sk = minisign.generate_keypair()
    rel = small_release(tmp_path, sk, NEXT)
    sig = minisign.verify_bytes((rel / "release.json").read_bytes(), (rel / RELEASE_SIG).read_text(), sk.public)
    assert sig.key_id_hex == sk.key_id_hex


def test_restoring_the_backup_is_one_transaction_and_leaves_the_files_to_the_owner(tmp_path):
    """The rollback's database step: the backup's content comes back whole; run as root, SQLite's side
    files are handed to the database's owner (the portal runs as that user)."""
    import os
    import sqlite3

    from edgenode.core.backup import backup_db
    from edgenode.node.updates import db_queries

    db = tmp_path / "edgenode.db"
    c = sqlite3.connect(db)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE t (x)")
    c.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    c.commit()
    backup = backup_db(db, tmp_path / "backups")
    c.execute("CREATE TABLE made_by_a_migration (y)")
    c.execute("DELETE FROM t WHERE x < 50")
    c.commit()
    c.close()
    if os.geteuid() == 0:
        os.chown(db, 4242, 4242)
    db_queries.restore(db, backup)
    c = sqlite3.connect(db)
    assert c.execute("SELECT count(*) FROM t").fetchone()[0] == 100
    assert not c.execute("SELECT 1 FROM sqlite_master WHERE name = 'made_by_a_migration'").fetchone()
    assert c.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    c.close()
    if os.geteuid() == 0:
        assert {p.stat().st_uid for p in tmp_path.glob("edgenode.db*")} == {4242}


def test_a_release_in_the_satellite_spool_or_beside_a_sticks_bundles_is_staged(trusted, tmp_path, cfg, conn, store):
    """The same release through two more transports: the spool scan and the stick import."""
    from edgenode.node.imports.pipeline import import_tree
    from edgenode.node.sources.satellite import scan_spool

    k, _ = trusted
    spool = tmp_path / "spool"
    small_release(spool, k["release"], NEXT)
    out = scan_spool(cfg.replace(spool__dir=str(spool)), conn, store)
    assert [r["result"] for r in out["releases"]] == ["staged"] and state.load(cfg)["staged"]["version"] == NEXT

    stick = tmp_path / "stick" / "edgenode-bundles" / "software"
    small_release(stick, k["release"], "0.9.2")
    assert import_tree(cfg, conn, store, tmp_path / "stick", source="usb") == []  # no content, no error
    assert state.load(cfg)["staged"]["version"] == "0.9.2"


@pytest.mark.skipif(__import__("os").geteuid() != 0, reason="needs root: the boot recovery unit runs as root")
def test_recovery_as_root_leaves_the_journal_to_the_service_user(tmp_path):
    """edgenode-update-recover.service runs as root before the scheduler, which runs as the service user
    and must still take the journal's locks and rewrite it."""
    import os

    from edgenode.node.updates import apply
    cfg = make_config(tmp_path / "node")
    cfg.data_path.mkdir(parents=True, exist_ok=True)
    os.chown(cfg.data_path, 65534, 65534)  # the service user's data directory
    assert apply.recover(cfg) == {"state": "clean"}
    state.set_keys(cfg, go={"version": NEXT})
    for p in (cfg.data_path / "updates").iterdir():
        assert p.stat().st_uid == 65534, p
    assert (cfg.data_path / "updates").stat().st_uid == 65534
    assert {p.name for p in (cfg.data_path / "updates").iterdir()} >= {".updater.lock", ".state.lock", "state.json"}


def test_the_scheduler_s_request_starts_the_updater_once_and_a_stale_one_is_withdrawn(tmp_path, runner, cfg):
    """launcher "path" (the default): the update job writes updates/apply-now for edgenode-update.path;
    `update apply --requested` (the unit's ExecStart) consumes it; boot recovery withdraws a leftover."""
    from edgenode.node.updates import apply, jobs
    assert cfg["updates.launcher"] == "path"
    assert jobs.launch(cfg, NEXT) == ["request", str(cfg.data_path / "updates" / jobs.REQUEST)]
    assert json.loads((cfg.data_path / "updates" / jobs.REQUEST).read_text())["version"] == NEXT
    r = runner("update", "apply", "--requested", "--json")
    assert r.exit_code != 0 and "E_UPDATE_NOTHING" in r.output and NEXT in r.output  # asked for NEXT; none staged
    assert not (cfg.data_path / "updates" / jobs.REQUEST).exists()
    r = runner("update", "apply", "--requested", "--json")  # started again with no request: nothing
    assert r.exit_code == 0 and json.loads(r.output) == {"state": "not requested"}
    jobs.launch(cfg, NEXT)
    apply.recover(cfg)  # at boot, after a power cut before the unit consumed it
    assert not (cfg.data_path / "updates" / jobs.REQUEST).exists()


def test_a_staged_copy_damaged_since_staging_is_dropped_not_installed(trusted, tmp_path, runner, cfg):
    """What a power cut did to a copy that was never synced (the real cut: test_updates_node.py): the updater
    refuses it with its code and forgets it, so the next stick or pull stages the release afresh."""
    from pathlib import Path
    k, _ = trusted
    rel = small_release(tmp_path / "out", k["release"], NEXT)
    assert runner("update", "stage", str(rel)).exit_code == 0
    staged = Path(state.load(cfg)["staged"]["dir"])
    (staged / RELEASE_SIG).write_bytes(b"")  # as ext4 leaves a file whose data never reached the disk
    r = runner("update", "apply")
    assert r.exit_code != 0 and "E_UPDATE_STAGED_BAD" in r.output and "E_RELEASE_SIGNATURE" in r.output, r.output
    assert "staged" not in state.load(cfg) and not staged.exists()
    assert json.loads(runner("update", "stage", str(rel), "--json").output)[0]["result"] == "staged"
