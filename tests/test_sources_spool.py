"""The satellite spool: complete bundles import, incomplete ones wait, stale ones are reported, junk ignored."""

from __future__ import annotations

import os
import shutil
import sys
import time

import pytest

from edgenode.node.imports.history import recent
from edgenode.core.db import open_main
from edgenode.node.sources.satellite import scan_spool
from edgenode.core.store import open_store
from tests.conftest import make_config
from tests.helpers_bundles import check_consistent, make_bundle, new_key, trust_key


@pytest.fixture
def node(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()

    def make(**over):
        cfg = make_config(tmp_path / "data", spool__dir=str(spool), store__free_space_floor_mb=0, **over)
        return cfg, open_main(cfg), open_store(cfg)

    sk = new_key(tmp_path)
    cfg, conn, store = make()
    trust_key(conn, sk, "sannong")
    yield {"make": make, "cfg": cfg, "conn": conn, "store": store, "sk": sk, "spool": spool, "tmp": tmp_path}
    conn.close()


def test_bundle_arriving_out_of_order_waits_then_imports(node):
    cfg, conn, store, spool = node["cfg"], node["conn"], node["store"], node["spool"]
    built = make_bundle(node["tmp"], node["sk"], seq=1, n=3, size=20_000)
    target = spool / built.name
    (target / "files").mkdir(parents=True)
    (spool / "readme.txt").write_text("not a bundle")
    (spool / "Thumbs.db").write_bytes(b"junk")
    (spool / "just-a-folder").mkdir()

    def scan():
        return scan_spool(cfg, conn, store)

    # Payload first, out of order, one file still growing.
    files = sorted((built / "files").iterdir())
    shutil.copy(files[2], target / "files")
    (target / "files" / files[0].name).write_bytes(files[0].read_bytes()[:5000])
    out = scan()
    assert out["waiting"] == [] and "readme.txt" in out["ignored"] and "just-a-folder" in out["ignored"]
    shutil.copy(built / "manifest.json", target)  # manifest arrives, signature not yet
    out = scan()
    assert out["waiting"][0]["reason"] == "signature not yet received"
    shutil.copy(built / "manifest.json.minisig", target)
    out = scan()
    assert out["waiting"] and "not yet complete" in out["waiting"][0]["reason"]
    shutil.copy(files[0], target / "files")
    # Right size, wrong bytes (a sparse file filled out of order): still waiting, not refused.
    (target / "files" / files[1].name).write_bytes(b"\0" * files[1].stat().st_size)
    out = scan()
    assert "content does not match yet" in out["waiting"][0]["reason"]
    assert conn.execute("SELECT count(*) FROM resources").fetchone()[0] == 0
    shutil.copy(files[1], target / "files")

    out = scan()
    assert [x["bundle"] for x in out["imported"]] == [built.name]
    assert out["imported"][0]["summary"].startswith("导入完成：3 个资源")
    assert not target.exists() and (spool / ".imported" / built.name / "manifest.json").exists()
    assert (spool / "readme.txt").exists()  # non-bundle files are left alone
    check_consistent(conn, store)
    assert recent(conn, 1)[0]["source"] == "spool"


def test_stale_bundle_is_reported_once_and_never_deleted(node):
    cfg, conn, store, spool = node["cfg"], node["conn"], node["store"], node["spool"]
    built = make_bundle(node["tmp"], node["sk"], seq=1, n=2)
    target = spool / built.name
    shutil.copytree(built, target)
    victim = next((target / "files").iterdir())
    victim.unlink()
    old = time.time() - 3 * 24 * 3600
    for dirpath, dirs, names in os.walk(target):
        for n in dirs + names:
            os.utime(os.path.join(dirpath, n), (old, old))
    os.utime(target, (old, old))

    out = scan_spool(cfg, conn, store)
    assert out["stale"][0]["bundle"] == built.name and out["stale"][0]["idle_hours"] >= 48
    assert target.exists() and (target / "manifest.json").exists()
    rows = [r for r in recent(conn) if r["result"] == "stale"]
    assert len(rows) == 1 and rows[0]["error_code"] == "E_SPOOL_STALE"
    scan_spool(cfg, conn, store)
    assert len([r for r in recent(conn) if r["result"] == "stale"]) == 1  # reported once
    # The missing file finally arrives: it imports after all.
    shutil.copy(built / "files" / victim.name, victim)
    assert scan_spool(cfg, conn, store)["imported"]


def test_refused_bundle_is_set_aside_and_hook_runs(node, tmp_path):
    spool = node["spool"]
    hook_out = tmp_path / "hook.txt"
    script = tmp_path / "hook.py"
    script.write_text("import os\nopen(%r, 'a', encoding='utf-8').write(os.environ['EDGENODE_IMPORT_RESULT'] + ' ' "
                      "+ os.environ['EDGENODE_IMPORT_SUMMARY'] + '\\n')\n" % str(hook_out))
    cfg, conn, store = node["make"](spool__after_import="remove",
                                    bundles__hook_command=f"{sys.executable} {script}")
    from edgenode.protocol import minisign
    stranger = minisign.generate_keypair()
    bad = make_bundle(tmp_path / "bad", stranger, seq=1, n=1)
    good = make_bundle(tmp_path / "good", node["sk"], seq=2, n=1, seed=4)
    shutil.copytree(bad, spool / "a-bad")
    shutil.copytree(good, spool / "b-good")

    out = scan_spool(cfg, conn, store)
    assert out["rejected"][0]["code"] == "E_SIG_UNTRUSTED"
    assert (spool / ".rejected" / "a-bad" / "manifest.json").exists()
    assert out["imported"][0]["bundle"] == "b-good" and not (spool / "b-good").exists()
    assert not (spool / ".imported").exists()  # after_import = remove
    line = hook_out.read_text(encoding="utf-8")
    assert line.startswith("failed ") and "导入完成：1 个资源" in line
    conn.close()


@pytest.mark.parametrize("fault", ["SQLITE_BUSY", "SQLITE_FULL", "SQLITE_IOERR"])
def test_a_failure_of_the_node_leaves_the_bundle_in_the_spool_for_the_next_scan(node, fault):
    """Busy, full or failing database: the bundle is not the problem, so it is not set aside."""
    from tests.helpers_faults import FaultyConnection

    spool, cfg, conn, store = node["spool"], node["cfg"], node["conn"], node["store"]
    shutil.copytree(make_bundle(node["tmp"] / "b", node["sk"], seq=1, n=2), spool / "a-bundle")
    # Fail the first COMMIT of the scan: the import's catalogue transaction.
    faulty = FaultyConnection(conn, fault=fault, fail_on="COMMIT")
    out = scan_spool(cfg, faulty, store)
    assert faulty.fired, "the import never reached a commit"
    assert out["rejected"] == [] and out["waiting"][0]["bundle"] == "a-bundle", out
    assert (spool / "a-bundle" / "manifest.json").exists()
    assert not (spool / ".rejected").exists()
    out = scan_spool(cfg, conn, store)
    assert out["imported"][0]["bundle"] == "a-bundle", out


def test_after_a_node_failure_the_channels_later_bundles_wait_their_turn(node):
    """Seq 2 imported while seq 1 waits would make seq 1 a rollback, refused for ever."""
    from tests.helpers_faults import FaultyConnection

    spool, cfg, conn, store = node["spool"], node["cfg"], node["conn"], node["store"]
    # Names sort the other way round: the spool goes by sequence, not by name.
    shutil.copytree(make_bundle(node["tmp"] / "one", node["sk"], seq=1, n=1, seed=1), spool / "z-first")
    shutil.copytree(make_bundle(node["tmp"] / "two", node["sk"], seq=2, n=1, seed=2), spool / "a-second")
    faulty = FaultyConnection(conn, fault="SQLITE_BUSY", fail_on="COMMIT")
    out = scan_spool(cfg, faulty, store)
    assert out["imported"] == [] and out["rejected"] == []
    assert [w["bundle"] for w in out["waiting"]] == ["z-first", "a-second"], out["waiting"]
    out = scan_spool(cfg, conn, store)
    assert [i["bundle"] for i in out["imported"]] == ["z-first", "a-second"], out
    assert out["rejected"] == []
