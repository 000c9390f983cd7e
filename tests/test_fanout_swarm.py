"""The swarm, all real: the hub's tree as web seed through nginx (rate-limited, as a county uplink would
be), libtorrent in every node (`edgenode swarm fetch` processes on loopback), and a peer that serves
corrupt pieces.  Blobs land through the one import pipeline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgenode.core.db import open_main
from edgenode.core.store import open_store
from tests.conftest import make_config
from tests.helpers_bundles import new_key, trust_key
from tests.helpers_sync import ROOT, free_port, publish_bundle, wait_port


@pytest.fixture
def county(tmp_path):
    """A published bundle, its .torrent, and nginx serving the tree as the web seed."""
    from edgenode.hub.swarm import make_torrent

    def start(n: int, size: int, rate: str):
        sk = new_key(tmp_path)
        tree = tmp_path / "hub" / "rsync"
        bundle = publish_bundle(tmp_path / "pub", tree / "channels" / "sannong", sk, "sannong", 1, n=n, size=size,
                                seed=3)
        port, log = _web_seed(tmp_path, tree, rate, procs, name="nginx")
        hub = make_config(tmp_path / "hub", hub__web_seed_url=f"http://127.0.0.1:{port}/edgenode/")
        torrent = make_torrent(hub, "sannong", bundle)
        size_on_disk = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
        return {"sk": sk, "bundle": bundle, "torrent": torrent, "log": log,
                "bytes": size_on_disk}

    procs: list = []
    yield start
    for p in procs:
        os.killpg(p.pid, 9)
        p.wait(5)


def _node(tmp_path, name, sk):
    cfg = make_config(tmp_path / name, swarm__listen_address="127.0.0.1")
    conn = open_main(cfg)
    trust_key(conn, sk, "sannong")
    conn.close()
    return cfg


def _web_seed_bytes(log: Path) -> int:
    """What the county's web server sent: the access log's body bytes."""
    return sum(int(m.group(2)) for m in re.finditer(r'" (\d{3}) (\d+) ', log.read_text()) if m.group(1) in ("200", "206"))


def _visible(cfg) -> int:
    conn = open_main(cfg)
    try:
        return conn.execute("SELECT count(*) FROM resources WHERE visible = 1").fetchone()[0]
    finally:
        conn.close()


def test_torrent_is_private_with_the_hubs_web_seed(county):
    import libtorrent as lt
    c = county(2, 100_000, "0")
    ti = lt.torrent_info(str(c["torrent"]))
    assert ti.priv() and ti.name() == c["bundle"].name
    data = lt.bdecode(c["torrent"].read_bytes())
    assert data[b"url-list"].decode().endswith("/edgenode/channels/sannong/")
    assert b"piece layers" in data and b"pieces" in data[b"info"]  # v2 and v1: hybrid


def _web_seed(tmp_path, tree: Path, rate: str, procs: list, name: str = "nginx-ws") -> tuple[int, Path]:
    """nginx serving ``tree`` at /edgenode/ at ``rate`` (the county's web seed); (port, its access log)."""
    from edgenode.node.stack import nginx_main_conf
    port = free_port()
    work = tmp_path / name
    work.mkdir()
    site = work / "site.conf"
    site.write_text(f"server {{ listen 127.0.0.1:{port}; location /edgenode/ {{ alias {tree}/; limit_rate {rate}; }} }}\n")
    conf = work / "nginx.conf"
    conf.write_text(nginx_main_conf(work, site, user="root root", access_log=True))
    proc = subprocess.Popen(["nginx", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    procs.append(proc)
    wait_port(port, proc=proc)
    return port, work / "logs" / "access.log"


@pytest.mark.slow  # the pull-job test below and tests/test_fanout_netns.py cover this in the default run
def test_four_villages_share_the_bundle_and_the_county_sends_it_about_once(tmp_path):
    """Enrolled nodes advertise their swarm in the heartbeat; the hub answers each with the others and its
    rank; `edgenode swarm fetch` uses that list.  The county's web server log is the egress figure."""
    from edgenode.hub import publish
    from tests import helpers_fanout as F
    county, procs = F.County(tmp_path).start(), []
    try:
        port, log = _web_seed(tmp_path, county.hub.data_dir / "rsync", "200k", procs)
        hub_cfg = county.hub.cfg.replace(hub__web_seed_url=f"http://127.0.0.1:{port}/edgenode/")
        conn = county.hub.db()
        try:
            out = publish.publish(conn, hub_cfg, F.make_source(tmp_path / "src", 1, 4, 500_000), F.CHANNEL)
        finally:
            conn.close()
        bundle, torrent = Path(out["bundle"]), Path(out["torrent"])
        size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
        nodes = {}
        for i in range(4):
            p = free_port()
            nodes[f"v{i}"] = (F.village(tmp_path, county, f"v{i}", "t1", swarm__advertise=f"127.0.0.1:{p}"), p)
        for cfg, _ in nodes.values():
            F.heartbeat(cfg, county)
        answers = {name: F.heartbeat(cfg, county) for name, (cfg, _) in nodes.items()}
        assert all(a["swarm_peers"] == 3 for a in answers.values())
        env = {**os.environ, "EDGENODE_CONFIG": "", "EDGENODE_SWARM_LISTEN_ADDRESS": "127.0.0.1",
               "EDGENODE_SWARM_WEB_SEED_AFTER_SECONDS": "3"}
        running = {name: subprocess.Popen([sys.executable, "-m", "edgenode", "--data-dir", str(cfg.data_path), "swarm",
                                           "fetch", str(torrent), "--port", str(p), "--seconds", "180",
                                           "--seed-seconds", "4", "--json"], cwd=ROOT, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                   for name, (cfg, p) in nodes.items()}
        results = {}
        for name, proc in running.items():
            stdout, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err.decode()[-2000:]
            results[name] = json.loads(stdout)
        for name, (cfg, _) in nodes.items():
            r = results[name]
            assert r["state"] == "done" and [i["result"] for i in r["imports"]] == ["imported"], r
            assert _visible(cfg) == 4 and open_store(cfg).verify()["bad"] == []
            assert F.traffic(cfg).get("peer", 0) + F.traffic(cfg).get("county", 0) >= size - 10_000
        egress = _web_seed_bytes(log)
        from_peers = sum(r["from_peers"] for r in results.values())
        print(f"\nweb seed sent {egress} bytes for a {size}-byte bundle to 4 villages "
              f"({egress / size:.2f}x); the villages exchanged {from_peers} bytes")
        assert egress <= 2 * size and from_peers >= 1.5 * size
    finally:
        for proc in procs:
            os.killpg(proc.pid, 9)
            proc.wait(5)
        county.stop()


def test_a_peer_serving_corrupt_pieces_is_banned_and_nothing_corrupt_is_imported(tmp_path, county):
    import shutil

    import libtorrent as lt
    from edgenode.node.sources import fanout, swarm
    c = county(2, 400_000, "200k")
    # the bad peer: a good copy that libtorrent checks, then every payload byte changed in place under it
    bad = tmp_path / "bad"
    shutil.copytree(c["bundle"], bad / c["bundle"].name)
    bad_port = free_port()
    ses = swarm.session(make_config(tmp_path / "badcfg", swarm__listen_address="127.0.0.1"), port=bad_port)
    atp = lt.add_torrent_params()
    atp.ti, atp.save_path = lt.torrent_info(str(c["torrent"])), str(bad)
    bh = ses.add_torrent(atp)
    from tests.helpers_fanout import wait_for
    wait_for(lambda: bh.status().is_seeding, timeout=30)
    for f in (bad / c["bundle"].name).rglob("*.pdf"):
        data = f.read_bytes()
        with open(f, "r+b") as fh:
            fh.write(bytes(b ^ 0x5A for b in data))
    cfg = _node(tmp_path, "v", c["sk"]).replace(swarm__web_seed_after_seconds=2)
    conn = open_main(cfg)
    try:
        r = swarm.fetch(cfg, conn, open_store(cfg), c["torrent"], peers=[("127.0.0.1", bad_port)], seconds=90,
                        seed_seconds=0, port=free_port())
        assert r["state"] == "done" and [i["result"] for i in r["imports"]] == ["imported"], r
        assert r["hash_failures"] >= 1 and f"127.0.0.1:{bad_port}" in r["banned"], r
        assert _visible(cfg) == 2 and open_store(cfg).verify()["bad"] == []
        reports = fanout.pending_reports(conn)  # to the hub with the next heartbeat
        assert [x["mirror"] for x in reports] == [f"peer:127.0.0.1:{bad_port}"]
        assert reports[0]["code"] == "E_PEER_CORRUPT"
    finally:
        conn.close()
        del ses


def test_publishing_with_a_web_seed_writes_the_torrent_beside_the_bundle(tmp_path):
    import libtorrent as lt
    from edgenode.hub import publish, swarm
    from edgenode.hub.database import open_hub
    from tests.helpers_fanout import make_source
    hub = make_config(tmp_path / "hub", hub__web_seed_url="http://hub.example/edgenode/")
    conn = open_hub(hub)
    try:
        out = publish.publish(conn, hub, make_source(tmp_path, 1, 2, 50_000), "sannong")
        t = Path(out["torrent"])
        assert t == publish.rsync_root(hub) / "torrents" / "sannong" / f"{Path(out['bundle']).name}.torrent"
        ti = lt.torrent_info(str(t))
        assert ti.priv() and ti.total_size() >= 100_000
        t.unlink()
        assert swarm.make_missing(conn, hub, publish.rsync_root(hub)) == [str(t)] and t.exists()
        assert swarm.make_missing(conn, hub, publish.rsync_root(hub)) == []
        with pytest.raises(Exception, match="E_NO_WEB_SEED"):
            swarm.make_torrent(make_config(tmp_path / "other"), "sannong", Path(out["bundle"]))
    finally:
        conn.close()


def test_the_pull_job_takes_a_big_bundle_by_swarm_and_rsync_leaves_it_alone(tmp_path):
    """swarm.min_bundle_mb: the scheduled pull fetches the channel's torrents, brings the big bundle by
    swarm (peers and rank from the hub), imports it, and its rsync step moves only the metadata."""
    from edgenode.hub import publish
    from tests import helpers_fanout as F
    county, procs = F.County(tmp_path).start(), []
    try:
        port, log = _web_seed(tmp_path, county.hub.data_dir / "rsync", "200k", procs)
        conn = county.hub.db()
        try:
            out = publish.publish(conn, county.hub.cfg.replace(hub__web_seed_url=f"http://127.0.0.1:{port}/edgenode/"),
                                  F.make_source(tmp_path / "src", 1, 3, 500_000), F.CHANNEL)
        finally:
            conn.close()
        size = sum(p.stat().st_size for p in Path(out["bundle"]).rglob("*") if p.is_file())
        nodes = {}
        for i in range(3):
            p = free_port()
            nodes[f"v{i}"] = (F.village(tmp_path, county, f"v{i}", "t1", swarm__advertise=f"127.0.0.1:{p}"), p)
        for _ in range(2):
            for cfg, _ in nodes.values():
                F.heartbeat(cfg, county)
        base = {**os.environ, "EDGENODE_CONFIG": "", "EDGENODE_SYNC_RSYNC_URL": county.rsyncd.url,
                "EDGENODE_SYNC_CHANNELS": json.dumps([F.CHANNEL]), "EDGENODE_SWARM_MIN_BUNDLE_MB": "1",
                "EDGENODE_SWARM_LISTEN_ADDRESS": "127.0.0.1", "EDGENODE_SWARM_WEB_SEED_AFTER_SECONDS": "10",
                "EDGENODE_SWARM_SEED_MINUTES": "0.1"}
        running = {name: subprocess.Popen([sys.executable, "-m", "edgenode", "--data-dir", str(cfg.data_path), "sync",
                                           "now", "--job", "pull", "--json"], cwd=ROOT,
                                          env={**base, "EDGENODE_SWARM_LISTEN_PORT": str(p)},
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                   for name, (cfg, p) in nodes.items()}
        for name, proc in running.items():
            stdout, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err.decode()[-2000:]
            r = json.loads(stdout)[0]
            ch = r["result"]["channels"][0]
            assert r["state"] == "done" and ch["swarm"]["delivered"] == [Path(out["bundle"]).name], r
            assert ch["swarm"]["results"][0]["imports"][0]["result"] == "imported"
            assert ch["rx_bytes"] < 0.05 * size, ch  # rsync brought the metadata, not the bundle again
            cfg = nodes[name][0]
            assert _visible(cfg) == 3 and open_store(cfg).verify()["bad"] == []
        assert _web_seed_bytes(log) <= 2 * size
    finally:
        for proc in procs:
            os.killpg(proc.pid, 9)
            proc.wait(5)
        county.stop()
