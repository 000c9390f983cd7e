"""Node backups (edgenode/core/backup.py) and the installer's config writer (edgenode/node/sync/provision.py)."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from edgenode.core import backup
from edgenode.node.sync import provision
from edgenode.core.config import load_config
from edgenode.core.errors import ConfigError, EdgenodeError
from edgenode.core.identity import load_or_create
from tests.conftest import make_config


def test_backup_db_is_a_checked_copy_while_writers_run(cfg, conn):
    conn.execute("CREATE TABLE t (x INTEGER)")
    stop = threading.Event()

    def writer():
        c = sqlite3.connect(cfg.db_path, timeout=10)
        i = 0
        while not stop.is_set():
            c.execute("INSERT INTO t VALUES (?)", (i,))
            c.commit()
            i += 1
        c.close()

    t = threading.Thread(target=writer)
    t.start()
    try:
        paths = [backup.backup_db(cfg.db_path, cfg.data_path / "backups") for _ in range(3)]
    finally:
        stop.set()
        t.join()
    for p in paths:
        b = sqlite3.connect(p)
        assert b.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert b.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] > 0
        b.close()
        assert oct(p.stat().st_mode & 0o777) == "0o600"
    assert len(set(paths)) == 3 and not list((cfg.data_path / "backups").glob("*.tmp"))
    assert len(backup.prune(cfg.data_path / "backups", keep=1)) == 2


@pytest.mark.skipif(__import__("os").geteuid() != 0, reason="needs root: the updater runs as root")
def test_a_backup_made_as_root_belongs_to_the_database_owner(cfg, conn, tmp_path):
    """The updater (root) makes the first backup; the service user's backup job must still write
    and prune there afterwards."""
    import os
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.commit()
    os.chown(cfg.db_path, 65534, 65534)  # the service user
    made = backup.backup_db(cfg.db_path, tmp_path / "backups")
    assert (made.stat().st_uid, made.parent.stat().st_uid) == (65534, 65534)
    assert made.stat().st_mode & 0o777 == 0o600 and made.parent.stat().st_mode & 0o777 == 0o700


def test_backup_without_database_is_refused(cfg, tmp_path):
    with pytest.raises(EdgenodeError) as e:
        backup.backup_db(cfg.db_path, tmp_path / "b")
    assert e.value.code == "E_BACKUP_NO_DB"


def test_node_backup_moves_identity_and_data_to_a_new_machine(cfg, conn, tmp_path):
    conn.execute("CREATE TABLE kept (x TEXT)")
    conn.execute("INSERT INTO kept VALUES ('统计')")
    old = load_or_create(cfg)
    toml = tmp_path / "edgenode.toml"
    toml.write_text('[node]\nname = "某某村"\n')
    saved = backup.create(cfg, tmp_path / "usb", toml)

    new_cfg = make_config(tmp_path / "new-pc")
    fresh = load_or_create(new_cfg)  # the replacement's own install made another identity
    with pytest.raises(EdgenodeError) as e:
        backup.restore(new_cfg, saved, tmp_path / "new.toml")
    assert e.value.code == "E_BACKUP_IDENTITY"
    assert load_or_create(new_cfg).node_id == fresh.node_id  # refused: nothing changed

    result = backup.restore(new_cfg, saved, tmp_path / "new.toml", force=True)
    assert result["node_id"] == old.node_id
    restored = load_or_create(new_cfg)
    assert restored.node_id == old.node_id and restored.public_b64() == old.public_b64()
    assert (tmp_path / "new.toml").read_text() == toml.read_text()
    c = sqlite3.connect(new_cfg.db_path)
    assert c.execute("SELECT x FROM kept").fetchone()[0] == "统计"
    c.close()


@pytest.mark.parametrize("damage", ["flip", "missing", "manifest", "traversal"])
def test_damaged_backup_restores_nothing(cfg, conn, tmp_path, damage):
    load_or_create(cfg)
    saved = backup.create(cfg, tmp_path / "usb")
    if damage == "flip":
        key = saved / "identity" / "node.key"
        key.write_bytes(key.read_bytes()[:-2] + b"x\n")
    elif damage == "missing":
        (saved / "edgenode.db").unlink()
    elif damage == "manifest":
        (saved / "manifest.json").write_text("{not json")
    else:
        m = json.loads((saved / "manifest.json").read_text())
        m["files"]["../../etc/passwd"] = "0" * 64
        (saved / "manifest.json").write_text(json.dumps(m))
    target = make_config(tmp_path / "target")
    with pytest.raises(EdgenodeError) as e:
        backup.restore(target, saved, force=True)
    assert e.value.code == "E_BACKUP_BAD"
    assert not target.data_path.exists() or not any(target.data_path.iterdir())


def test_write_config_merges_validates_and_is_idempotent(tmp_path):
    path = tmp_path / "edgenode.toml"
    assert provision.write_config(path, {"node.name": "某某村", "web.accel_redirect": True})
    first = path.read_bytes()
    assert not provision.write_config(path, {"node.name": "某某村"})  # same value: file untouched
    assert path.read_bytes() == first
    path.write_text(path.read_text() + "\n[store]\nfree_space_floor_mb = 500\n")
    assert provision.write_config(path, {"node.township": "某某镇"})
    cfg = load_config(path, env={})
    assert (cfg["node.name"], cfg["node.township"], cfg["store.free_space_floor_mb"]) == ("某某村", "某某镇", 500)
    assert oct(path.stat().st_mode & 0o777) == "0o640"


@pytest.mark.parametrize("values, reason", [
    ({"node.nmae": "x"}, "unknown setting"),
    ({"web.port": 70000}, "TCP port"),
    ({"log.level": "LOUD"}, "one of"),
    ({"web.page_size": "20"}, "must be int"),
])
def test_write_config_refuses_bad_keys_and_changes_nothing(tmp_path, values, reason):
    path = tmp_path / "edgenode.toml"
    provision.write_config(path, {"node.name": "某某村"})
    before = path.read_bytes()
    with pytest.raises(ConfigError) as e:
        provision.write_config(path, values)
    assert reason in e.value.message and str(path) in e.value.message
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["edgenode.toml"]


def test_pending_enrolment_marker(cfg):
    assert provision.read_pending(cfg) is None
    with pytest.raises(EdgenodeError):
        provision.write_pending(cfg, "ftp://hub", "CODE")
    p = provision.write_pending(cfg, "https://hub.example:8443", " K7QM-2XPD-9RTA ")
    assert oct(p.stat().st_mode & 0o777) == "0o600"
    assert provision.read_pending(cfg)["code"] == "K7QM-2XPD-9RTA"
    p.write_text("{")
    with pytest.raises(EdgenodeError) as e:
        provision.read_pending(cfg)
    assert e.value.code == "E_PENDING_ENROLL"
    assert provision.clear_pending(cfg) and provision.read_pending(cfg) is None


def test_retry_pending_waits_while_hub_unreachable_and_sets_aside_a_refused_code(cfg, conn, monkeypatch):
    provision.write_pending(cfg, "http://127.0.0.1:9", "K7QM")  # nothing listens on port 9
    r = provision.retry_pending(cfg, conn)
    assert r["status"] == "waiting" and provision.read_pending(cfg) is not None

    import edgenode.node.sync.enroll as enroll_mod

    def refuse(*a, **k):
        raise EdgenodeError("E_ENROLL_CODE", "the enrolment code is unknown, used, expired or revoked")
    monkeypatch.setattr(enroll_mod, "enroll", refuse)
    r = provision.retry_pending(cfg, conn)
    assert r["status"] == "refused" and provision.read_pending(cfg) is None
    assert (cfg.data_path / "enroll-pending.refused").exists()
