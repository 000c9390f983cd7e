"""The fan-out topology as network namespaces (tests/test_fanout_netns.py and bench/bench_fanout.py):
a county, township mirrors and villages on shaped links, measured on the county's interface counters."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from edgenode.core.db import open_main
from tests import helpers_fanout as F
from tests.conftest import make_config
from tests.helpers_netns import Net, rsyncd_conf, wait_tcp
from tests.helpers_sync import ROOT, Hub

MIRROR_PORT = 8731


def _enrol(tmp: Path, hub: Hub, name: str, township: str, **overrides):
    from edgenode.hub import registry
    from edgenode.node.sync.enroll import enroll
    conn = hub.db()
    try:
        code = registry.new_code(conn, township=township)
    finally:
        conn.close()
    cfg = make_config(tmp / name, node__township=township, node__name=name, sync__channels=[F.CHANNEL], **overrides)
    conn = open_main(cfg)
    try:
        enroll(cfg, conn, hub.url, code)
    finally:
        conn.close()
    return cfg


def _trusting(tmp: Path, hub: Hub, name: str):
    """A node that trusts the county key but was never enrolled: today's direct pull."""
    from edgenode.hub.keychain import county_public_key_path
    from edgenode.node.imports import trust
    from edgenode.protocol import minisign
    cfg = make_config(tmp / name)
    conn = open_main(cfg)
    try:
        trust.add_key(conn, minisign.load_public_key(county_public_key_path(hub.cfg)), [F.CHANNEL])
    finally:
        conn.close()
    return cfg


def _pull_all(net: Net, nodes: dict, county_url: str) -> dict:
    """`edgenode sync now --job pull` in every node's namespace at once; returns each node's result."""
    env = {**os.environ, "EDGENODE_CONFIG": "", "EDGENODE_SYNC_RSYNC_URL": county_url,
           "EDGENODE_SYNC_CHANNELS": json.dumps([F.CHANNEL]), "EDGENODE_SYNC_RSYNC_RETRIES": "0",
           "PYTHONPATH": str(ROOT)}
    procs = {name: net.popen(name, [sys.executable, "-m", "edgenode", "--data-dir", str(cfg.data_path), "sync", "now",
                                    "--job", "pull", "--json"], cwd=ROOT, env=env, stdout=-1, stderr=-1)
             for name, cfg in nodes.items()}
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=3600)
        assert p.returncode == 0, stderr.decode()[-2000:]
        out[name] = json.loads(stdout)[0]
        assert out[name]["state"] == "done", out[name]
    return out


def _whole(cfg, files: int) -> None:
    from edgenode.core.store import open_store
    assert F.visible(cfg) == files
    assert F.imported_seqs(cfg) == [(F.CHANNEL, 1, "imported")]
    assert open_store(cfg).verify()["bad"] == []


def _started_county(tmp: Path, hub) -> "F.County":
    """helpers_fanout's County around ``hub`` (a hub in a namespace here, not the County's own): the
    county key made, the hub started."""
    from edgenode.hub.keychain import county_key
    county_key(hub.cfg)
    hub.start()
    county = F.County.__new__(F.County)
    county.tmp, county.hub = tmp, hub
    return county


def run_topology(tmp: Path, *, townships: int, per_township: int, files: int, file_size: int, rate_mbit: float):
    """Returns the figures: bundle bytes, county egress and time to full delivery, with mirrors and direct."""
    net, hub = Net(), Hub(tmp / "county")
    try:
        from edgenode.hub import fanout
        county = _started_county(tmp, hub)
        published = county.publish(1, n=files, size=file_size)
        bundle_bytes = sum(p.stat().st_size for p in Path(published["bundle"]).rglob("*") if p.is_file())
        net.host("c", 1)  # the county's uplink is not the bottleneck here; its counters are the figure
        net.popen("c", ["rsync", "--daemon", "--no-detach", f"--config={rsyncd_conf(hub.data_dir / 'rsync', tmp / 'crsyncd')}",
                        f"--address={net.ip('c')}", "--port=873"])
        wait_tcp(net, "c", net.ip("c"), 873)
        county_url = f"rsync://{net.ip('c')}/edgenode"
        mirrors, villages = {}, {}
        for t in range(townships):
            name = f"m{t}"
            net.host(name, 10 + t)
            mirrors[name] = _enrol(tmp, hub, name, f"t{t}", mirror__enabled=True, sync__rsync_url=county_url,
                                   mirror__rsync_url=f"rsync://{net.ip(name)}:{MIRROR_PORT}")
            conn = hub.db()
            fanout.set_mirror(conn, F.node_id(mirrors[name]))
            conn.close()
            for v in range(per_township):
                vn = f"v{t}{v}"
                net.host(vn, 100 + t * 10 + v, rate_mbit=rate_mbit)
                villages[vn] = _enrol(tmp, hub, vn, f"t{t}", sync__rsync_url=county_url)
        direct = {}
        for i, vn in enumerate(villages):
            dn = f"d{vn[1:]}"
            net.host(dn, 200 + i, rate_mbit=rate_mbit)
            direct[dn] = _trusting(tmp, hub, dn)

        # with township mirrors: the mirrors pull, open their doors, the villages learn their upstreams
        start_tx, t0 = net.tx_bytes("c"), time.monotonic()
        _pull_all(net, mirrors, county_url)
        for name, cfg in mirrors.items():
            F.heartbeat(cfg, county)
            from edgenode.node.sources import mirror
            conf = mirror.mirror_dir(cfg) / "rsyncd.conf"
            conf.write_text(mirror.rsyncd_conf(cfg.replace(mirror__rsync_port=MIRROR_PORT), address=net.ip(name)))
            net.popen(name, mirror.rsyncd_command(cfg.replace(mirror__rsync_port=MIRROR_PORT), conf,
                                                  address=net.ip(name)))
            wait_tcp(net, name, net.ip(name), MIRROR_PORT)
        for cfg in villages.values():
            assert F.heartbeat(cfg, county)["upstreams"] == 1
        results = _pull_all(net, villages, county_url)
        mirrored = {"egress": net.tx_bytes("c") - start_tx, "seconds": time.monotonic() - t0}
        for name, r in results.items():
            assert r["result"]["channels"][0]["via"].startswith("mirror:"), r
            _whole(villages[name], files)

        # today's design: every village pulls from the county
        start_tx, t0 = net.tx_bytes("c"), time.monotonic()
        _pull_all(net, direct, county_url)
        straight = {"egress": net.tx_bytes("c") - start_tx, "seconds": time.monotonic() - t0}
        for cfg in direct.values():
            _whole(cfg, files)
        n = townships * per_township
        return {"villages": n, "townships": townships, "bundle_bytes": bundle_bytes,
                "mirrored": {**mirrored, "ratio": mirrored["egress"] / bundle_bytes},
                "direct": {**straight, "ratio": straight["egress"] / bundle_bytes}}
    finally:
        net.close()
        hub.stop()


def run_swarm(tmp: Path, *, villages: int, files: int, file_size: int, rate_mbit: float, after: float = 3.0) -> dict:
    """The county's nginx as web seed (in the county's namespace), villages on shaped links fetching with
    `edgenode swarm fetch` from the peers the hub listed; county egress from its interface counters."""
    from edgenode.hub import publish
    from edgenode.node.stack import nginx_main_conf
    net, hub = Net(), Hub(tmp / "county")
    try:
        county = _started_county(tmp, hub)
        net.host("c", 1)
        from types import SimpleNamespace
        county.rsyncd = SimpleNamespace(url=f"rsync://{net.ip('c')}/edgenode")  # (no pull in this run)
        work = tmp / "county-nginx"
        work.mkdir()
        site = work / "site.conf"
        site.write_text(f"server {{ listen {net.ip('c')}:80; location /edgenode/ {{ alias {hub.data_dir / 'rsync'}/; }} }}\n")
        (work / "nginx.conf").write_text(nginx_main_conf(work, site, user="root root", access_log=True))
        net.popen("c", ["nginx", "-c", str(work / "nginx.conf")])
        wait_tcp(net, "c", net.ip("c"), 80)
        conn = hub.db()
        try:
            out = publish.publish(conn, hub.cfg.replace(hub__web_seed_url=f"http://{net.ip('c')}/edgenode/"),
                                  F.make_source(tmp / "src", 1, files, file_size), F.CHANNEL)
        finally:
            conn.close()
        bundle, torrent = Path(out["bundle"]), Path(out["torrent"])
        size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
        nodes = {}
        for i in range(villages):
            name = f"s{i}"
            net.host(name, 100 + i, rate_mbit=rate_mbit)
            nodes[name] = F.village(tmp, county, name, "t1", swarm__advertise=f"{net.ip(name)}:6881")
        for _ in range(2):  # the first round makes every endpoint known, the second hands out the lists
            for cfg in nodes.values():
                F.heartbeat(cfg, county)
        env = {**os.environ, "EDGENODE_CONFIG": "", "EDGENODE_SWARM_LISTEN_ADDRESS": "0.0.0.0",
               "EDGENODE_SWARM_WEB_SEED_AFTER_SECONDS": str(after), "PYTHONPATH": str(ROOT)}
        start_tx, t0 = net.tx_bytes("c"), time.monotonic()
        procs = {name: net.popen(name, [sys.executable, "-m", "edgenode", "--data-dir", str(cfg.data_path), "swarm",
                                        "fetch", str(torrent), "--port", "6881", "--seconds", "3000",
                                        "--seed-seconds", str(max(5.0, after * 2)), "--json"],
                                 cwd=ROOT, env=env, stdout=-1, stderr=-1)
                 for name, cfg in nodes.items()}
        results = {}
        for name, p in procs.items():
            stdout, stderr = p.communicate(timeout=3600)
            assert p.returncode == 0, stderr.decode()[-2000:]
            results[name] = json.loads(stdout)
        egress, seconds = net.tx_bytes("c") - start_tx, time.monotonic() - t0
        for name, cfg in nodes.items():
            assert results[name]["state"] == "done", results[name]
            _whole(cfg, files)
        return {"villages": villages, "bundle_bytes": size, "egress": egress, "ratio": egress / size,
                "seconds": seconds, "from_peers": sum(r["from_peers"] for r in results.values())}
    finally:
        net.close()
        hub.stop()
