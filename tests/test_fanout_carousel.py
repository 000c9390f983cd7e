"""The satellite carousel: a bundle whose files arrive over three passes with gaps and restarts; when a
link appears, only the missing files are fetched (a real rsync daemon).  And the byte counters of the
satellite and stick sources."""

from __future__ import annotations

import shutil

import pytest

from edgenode.core.db import open_main
from edgenode.core.store import open_store
from edgenode.node.sources.satellite import scan_spool
from edgenode.node.sync.runner import run_job
from tests.conftest import make_config
from tests.helpers_bundles import new_key, trust_key
from tests.helpers_sync import Rsyncd, publish_bundle

SIZE = 300_000


@pytest.fixture
def setup(tmp_path):
    sk = new_key(tmp_path)
    county = tmp_path / "county" / "rsync"
    built = publish_bundle(tmp_path / "pub", county / "channels" / "sannong", sk, "sannong", 1, n=6, size=SIZE, seed=4)
    spool = tmp_path / "spool"
    spool.mkdir()
    cfg = make_config(tmp_path / "node", spool__dir=str(spool), store__free_space_floor_mb=0, sync__channels=[])
    conn = open_main(cfg)
    trust_key(conn, sk, "sannong")
    conn.close()
    daemon = Rsyncd(county, tmp_path / "rsyncd")
    yield {"cfg": cfg, "built": built, "spool": spool, "daemon": daemon, "sk": sk, "tmp": tmp_path}
    daemon.stop()


def _scan(cfg):
    """A fresh connection each time: the node may restart between passes."""
    conn = open_main(cfg)
    try:
        return scan_spool(cfg, conn, open_store(cfg))
    finally:
        conn.close()


def _missing(out) -> dict:
    return {m["path"].rsplit("/", 1)[-1]: m["state"] for m in out["waiting"][0]["missing"]}


def test_three_passes_with_gaps_and_restarts_then_only_the_missing_files_are_fetched(setup):
    cfg, built, spool = setup["cfg"], setup["built"], setup["spool"]
    target = spool / "carousel-0001"  # the receiver's own name for it
    files = sorted(p for p in built.rglob("doc*.pdf"))
    rel = {f.name: f.relative_to(built) for f in files}

    def put(name, data=None):
        dest = target / rel[name]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((built / rel[name]).read_bytes() if data is None else data)

    # pass 1: the manifest and its signature, two files whole, the third cut off half way
    target.mkdir()
    for side in ("manifest.json", "manifest.json.minisig"):
        shutil.copy(built / side, target / side)
    put("doc000.pdf")
    put("doc001.pdf")
    put("doc002.pdf", (built / rel["doc002.pdf"]).read_bytes()[:SIZE // 2])
    out = _scan(cfg)
    assert _missing(out) == {"doc002.pdf": "partial", "doc003.pdf": "absent", "doc004.pdf": "absent",
                             "doc005.pdf": "absent"}
    # the receiver restarts: it truncates one finished file and scribbles over another
    put("doc000.pdf", b"")
    put("doc001.pdf", b"\0" * SIZE)
    # pass 2: two more files whole
    put("doc002.pdf")
    put("doc003.pdf")
    out = _scan(cfg)
    assert _missing(out) == {"doc004.pdf": "absent", "doc005.pdf": "absent"}  # 000, 001 were kept
    # pass 3: a gap again: doc004 only in part
    put("doc004.pdf", (built / rel["doc004.pdf"]).read_bytes()[:SIZE // 3])
    out = _scan(cfg)
    assert _missing(out) == {"doc004.pdf": "partial", "doc005.pdf": "absent"}
    assert out["imported"] == []
    # a link appears: the pull asks the county for the two missing files only
    setup["daemon"].start()
    link = cfg.replace(sync__rsync_url=setup["daemon"].url)
    r = run_job(link, "pull", ignore_windows=True)
    assert r["state"] == "done", r
    fetched = r["result"]["carousel"]
    assert len(fetched) == 1 and fetched[0]["via"] == "county" and fetched[0]["files"] == 2
    assert sorted(a.rsplit("/", 1)[-1] for a in fetched[0]["asked"]) == ["doc004.pdf", "doc005.pdf"]
    assert 2 * SIZE <= fetched[0]["received"] < 2 * SIZE + 50_000
    out = _scan(cfg)
    assert [x["bundle"] for x in out["imported"]] == ["carousel-0001"]
    conn = open_main(cfg)
    try:
        assert conn.execute("SELECT count(*) FROM resources WHERE visible = 1").fetchone()[0] == 6
        from edgenode.node.sources import fanout
        by = {(t["source"], t["channel"]): t["rx"] for t in fanout.traffic(conn)}
    finally:
        conn.close()
    assert open_store(cfg).verify()["bad"] == []
    assert not (cfg.data_path / "spool-hold").exists() or not any((cfg.data_path / "spool-hold").iterdir())
    # counted once per source: four files from the satellite, two (plus rsync's overhead) from the county
    assert by[("satellite", "sannong")] == 4 * SIZE
    assert 2 * SIZE <= by[("county", "sannong")] < 2 * SIZE + 50_000


def test_a_stick_and_a_whole_spool_bundle_are_counted(setup, tmp_path):
    from edgenode.node.sources import fanout
    from edgenode.node.sources.usb import import_mount
    from tests.helpers_bundles import make_bundle
    cfg = setup["cfg"]
    shutil.copytree(setup["built"], setup["spool"] / setup["built"].name)
    _scan(cfg)
    stick = tmp_path / "stick" / "edgenode-bundles"
    b = make_bundle(tmp_path / "mk", setup["sk"], seq=2, n=2, size=50_000, seed=9)
    shutil.copytree(b, stick / b.name)
    conn = open_main(cfg)
    try:
        results = import_mount(cfg, conn, open_store(cfg), tmp_path / "stick", source="usb:test")
        assert [r.result for r in results] == ["imported"]
        by = {t["source"]: t["rx"] for t in fanout.traffic(conn)}
    finally:
        conn.close()
    assert by == {"satellite": 6 * SIZE, "stick": 2 * 50_000}
