"""Township mirrors on loopback, all real: the county hub (gunicorn), rsync daemons, nginx, nodes that
enrol, heartbeat and pull.  Counters per source, the upstream list, fallback, tamper, access."""

from __future__ import annotations

import pytest

from edgenode.core.db import open_main
from tests import helpers_fanout as F


@pytest.fixture
def county(tmp_path):
    c = F.County(tmp_path).start()
    yield c
    c.stop()


@pytest.fixture
def township(tmp_path, county):
    """A mirror of township t1 (rsync daemon up) that has pulled seq 1, and a village below it."""
    county.publish(1)
    m = F.MirrorNode(tmp_path, county, "m1", "t1")
    request_stop = m.stop
    try:
        county.hub.cli("mirror", "set", m.node_id)
        F.heartbeat(m.cfg, county)  # its URLs reach the hub; it learns its clients
        assert F.pull(m.cfg)["state"] == "done"
        m.start_rsyncd()
        v = F.village(tmp_path, county, "v1", "t1")
        F.heartbeat(m.cfg, county)  # the village is now one of its clients
        yield m, v
    finally:
        request_stop()


def _county_report(county) -> list[dict]:
    from edgenode.hub import fanout
    conn = county.hub.db()
    try:
        return fanout.egress_report(conn, county.hub.cfg)
    finally:
        conn.close()


def test_village_pulls_from_its_mirror_and_the_counters_reach_the_hub(tmp_path, county, township):
    m, v = township
    hb = F.heartbeat(v, county)
    assert hb["upstreams"] == 1
    r = F.pull(v)
    assert r["state"] == "done", r
    ch = r["result"]["channels"][0]
    assert ch["via"] == f"mirror:{m.node_id}" and ch["fallbacks"] == []
    assert F.visible(v) == 3
    tv, tm = F.traffic(v), F.traffic(m.cfg)
    assert tv.get("mirror", 0) > 1_000_000 and "county" not in tv
    assert tm.get("county", 0) > 1_000_000 and "mirror" not in tm
    # a second village under the same mirror: the county's egress stays at one copy
    v2 = F.village(tmp_path, county, "v2", "t1")
    F.heartbeat(m.cfg, county)
    F.heartbeat(v2, county)
    assert F.pull(v2)["result"]["channels"][0]["via"] == f"mirror:{m.node_id}"
    for cfg in (m.cfg, v, v2):
        F.heartbeat(cfg, county)
    row = next(r for r in _county_report(county) if r["channel"] == F.CHANNEL)
    assert row["published"] == 3 * 400_000
    assert row["county"] == tm["county"] and row["mirror"] >= 2 * 1_000_000
    assert 1.0 <= row["egress_ratio"] <= 1.2, row
    out = county.hub.cli("fanout")
    assert F.CHANNEL in out and f"{row['egress_ratio']:.2f}" in out
    tree = county.hub.cli("mirror", "tree", "--json")
    import json
    t = json.loads(tree)
    assert t[0]["node_id"] == m.node_id and t[0]["state"] == "serving"
    assert {c["name"] for c in t[0]["children"]} == {"v1", "v2"}
    # the fleet page shows the tree and the ratio to county staff
    from edgenode.hub.app import create_hub_app
    from tests.helpers_hub import login
    app = create_hub_app(county.hub.cfg)
    conn = county.hub.db()
    try:
        page = login(app.test_client(), conn).get("/fleet").get_data(as_text=True)
    finally:
        conn.close()
    assert f'data-mirror="{m.node_id}" data-state="serving"' in page and "正常分发" in page
    assert page.count('data-child="') == 2 and f'data-child="{F.node_id(v)[:8]}"' in page
    assert f'data-channel="{F.CHANNEL}"' in page and f"{row['egress_ratio']:.2f}</td>" in page


def test_mirror_down_or_behind_falls_back_to_the_county(tmp_path, county, township):
    m, v = township
    F.heartbeat(v, county)
    county.publish(2)  # the mirror has not pulled it: behind
    F.heartbeat(v, county)
    r = F.pull(v)
    ch = r["result"]["channels"][0]
    assert r["state"] == "done" and ch["via"] == "county", r
    assert ch["fallbacks"][0]["why"].startswith("behind"), ch
    assert [s for _, s, _ in F.imported_seqs(v)] == [1, 2]
    m.stop()  # the mirror goes down
    assert F.pull(m.cfg)["state"] == "done"  # (its own pull from the county still works)
    county.publish(3)
    F.heartbeat(v, county)
    r = F.pull(v)
    ch = r["result"]["channels"][0]
    assert ch["via"] == "county" and ch["fallbacks"][0]["why"] == "down", ch
    assert [s for _, s, _ in F.imported_seqs(v)] == [1, 2, 3]


def test_a_tampered_mirror_is_caught_reported_and_skipped(tmp_path, county, township):
    from edgenode.node.sources import pull as pullmod
    m, v = township
    bundle = next((pullmod.staging_root(m.cfg) / F.CHANNEL).glob("sannong-*"))
    victim = next(bundle.rglob("d1.pdf"))
    evil = victim.with_name(".evil")
    evil.write_bytes(b"%PDF-1.4\n" + b"\x00" * (victim.stat().st_size - 9))  # same size, other bytes
    st = victim.stat()
    import os
    os.utime(evil, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(evil, victim)  # a new inode: the mirror's own store keeps the good blob
    F.heartbeat(v, county)
    r = F.pull(v)
    ch = r["result"]["channels"][0]
    assert r["result"]["channels"][0]["via"] == "county", r
    assert ch["fallbacks"] == [{"upstream": f"mirror:{m.node_id}", "why": "tampered (E_HASH_MISMATCH)"}]
    assert F.visible(v) == 3 and [s for _, s, _ in F.imported_seqs(v)] == [1]
    from edgenode.core.store import open_store
    assert open_store(v).verify()["bad"] == []
    # reported to the hub with the next heartbeat; the hub stops assigning the mirror
    hb = F.heartbeat(v, county)
    assert hb["upstreams"] == 0
    log = county.hub.log(m.node_id)
    assert any(e["code"] == "E_MIRROR_TAMPERED" for e in log)
    assert "suspended" in county.hub.cli("mirror", "tree")
    # and skipped from then on, even if the hub's list still named it
    conn = open_main(v)
    from edgenode.node.sources import fanout
    fanout.apply_answer(conn, {"upstreams": [{"kind": "mirror", "node_id": m.node_id, "rsync_url": m.cfg["mirror.rsync_url"],
                                              "username": "x", "password": "y"}]})
    assert all(u["kind"] == "county" for u in fanout.upstreams(v, conn))
    conn.close()


def test_a_mirror_killed_mid_transfer_leaves_nothing_half_or_twice(tmp_path, county):
    county.publish(1, n=4, size=1_000_000)
    m = F.MirrorNode(tmp_path, county, "m1", "t1", mirror__bwlimit_kbps=300)
    try:
        county.hub.cli("mirror", "set", m.node_id)
        F.heartbeat(m.cfg, county)
        assert F.pull(m.cfg)["state"] == "done"
        villages = [F.village(tmp_path, county, f"v{i}", "t1") for i in range(2)]
        F.heartbeat(m.cfg, county)
        m.start_rsyncd()
        import threading
        results = {}
        for v in villages:
            F.heartbeat(v, county)
        threads = [threading.Thread(target=lambda v=v: results.__setitem__(str(v.data_path), F.pull(v)))
                   for v in villages]
        for t in threads:
            t.start()
        from edgenode.node.sources.pull import staging_root

        def arrived(v) -> int:
            return sum(p.stat().st_size for p in staging_root(v).rglob("*") if p.is_file())
        # at 300 KiB/s the 4 MB take 13 s: kill once both villages have a part of them
        F.wait_for(lambda: all(arrived(v) > 300_000 for v in villages), timeout=60, step=0.1)
        assert all(t.is_alive() for t in threads)
        m.kill_rsyncd()
        for t in threads:
            t.join(120)
        for v in villages:
            r = results[str(v.data_path)]
            ch = r["result"]["channels"][0]
            assert r["state"] == "done" and ch["via"] == "county", r
            assert ch["fallbacks"][0]["upstream"] == f"mirror:{m.node_id}"
            assert F.imported_seqs(v) == [(F.CHANNEL, 1, "imported")]  # once, and whole
            assert F.visible(v) == 4
            from edgenode.core.store import open_store
            assert open_store(v).verify()["bad"] == []
            assert F.traffic(v)["mirror"] > 0 and F.traffic(v)["county"] > 0
    finally:
        m.stop()



def _rsync_list(m, user: str, password: str | None) -> int:
    import subprocess
    from edgenode.node.sources.pull import rsync_env, with_user
    url = with_user(m.cfg["mirror.rsync_url"], user) + "/channels/sannong/"
    p = subprocess.run(["rsync", "--list-only", "--contimeout=10", url], env=rsync_env(password or ""),
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    return p.returncode


def _http(m, path: str, user: str | None, password: str | None, range_: str | None = None):
    import base64
    import urllib.error
    import urllib.request
    req = urllib.request.Request(f"http://127.0.0.1:{m.http_port}/edgenode/channels/sannong/{path}")
    if user is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    if range_:
        req.add_header("Range", range_)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def test_mirror_doors_open_only_to_enrolled_unrevoked_nodes_inside_windows(tmp_path, county, township):
    from datetime import datetime
    from edgenode.node.sources import fanout, mirror
    from edgenode.node.sources import pull as pullmod
    m, v = township
    m.start_nginx()
    F.heartbeat(v, county)
    conn = open_main(v)
    up = fanout.upstreams(v, conn)[0]
    conn.close()
    user, pw = up["username"], up["password"]
    assert user == F.node_id(v) and len(pw) == 40
    bundle = next((pullmod.staging_root(m.cfg) / F.CHANNEL).glob("sannong-*"))
    f = next(bundle.rglob("d0.pdf"))
    rel = f.relative_to(bundle.parent).as_posix()
    # the village, with the hub's credential: rsync lists, HTTP serves a Range
    assert _rsync_list(m, user, pw) == 0
    status, body = _http(m, rel, user, pw, "bytes=100-199")
    assert status == 206 and body == f.read_bytes()[100:200]
    assert _http(m, f"{bundle.name}/manifest.json", user, pw)[0] == 200
    # strangers: no credential, a guessed one, another node's name with this password
    stranger = "0123456789abcdef0123456789abcdef"
    for u, p in ((stranger, None), (stranger, pw), (user, "0" * 40), (F.node_id(m.cfg), pw)):
        assert _rsync_list(m, u, p) != 0, (u, p)
        assert _http(m, rel, u, p)[0] == 401, (u, p)
    assert _http(m, rel, None, None)[0] == 401
    # the pull's bookkeeping is never served, even to a client
    assert _http(m, "../.edgenode-staging", user, pw)[0] in (400, 404)
    assert _http(m, ".exclude-sannong", user, pw)[0] == 404
    # revoked at the hub: gone from both doors at the mirror's next heartbeat
    county.hub.cli("revoke", user)
    F.heartbeat(m.cfg, county)
    assert _rsync_list(m, user, pw) != 0
    assert _http(m, rel, user, pw)[0] == 401
    # outside the mirror's windows nobody gets in; inside, the clients do again
    v2 = F.village(tmp_path, county, "v2", "t1")
    F.heartbeat(m.cfg, county)
    F.heartbeat(v2, county)
    conn = open_main(v2)
    pw2 = fanout.upstreams(v2, conn)[0]["password"]
    conn.close()
    windowed = m.cfg.replace(mirror__windows=[{"start": "02:00", "end": "04:00"}])
    mconn = open_main(m.cfg)
    try:
        assert mirror.write_access(windowed, mconn, now=datetime(2026, 12, 7, 12, 0)) == {"open": False, "clients": 0}
        assert _rsync_list(m, F.node_id(v2), pw2) != 0 and _http(m, rel, F.node_id(v2), pw2)[0] == 401
        assert mirror.write_access(windowed, mconn, now=datetime(2026, 12, 7, 3, 0))["open"] is True
        assert _rsync_list(m, F.node_id(v2), pw2) == 0 and _http(m, rel, F.node_id(v2), pw2)[0] == 200
    finally:
        mconn.close()


def test_the_production_stack_runs_the_mirror_when_the_role_is_on(tmp_path):
    """`make run` (edgenode stack): the mirror's server block joins nginx's site and its rsync daemon the
    processes; nginx accepts the whole configuration."""
    import subprocess
    from edgenode.node import stack
    from tests.conftest import make_config
    from tests.helpers_sync import free_port
    cfg = make_config(tmp_path / "n", mirror__enabled=True, mirror__http_port=free_port(),
                      mirror__rsync_port=free_port())
    open_main(cfg).close()
    plan = stack.prepare(cfg, host="127.0.0.1", port=free_port())
    assert "--daemon" in plan["processes"]["mirror-rsyncd"] and "mirror-rsyncd:" in plan["procfile"].read_text()
    assert "auth_basic_user_file" in (plan["work"] / "site.conf").read_text()
    check = subprocess.run(["nginx", "-t", "-c", str(plan["nginx_conf"])], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    off = stack.prepare(make_config(tmp_path / "m"), host="127.0.0.1", port=free_port())
    assert "mirror-rsyncd" not in off["processes"]
