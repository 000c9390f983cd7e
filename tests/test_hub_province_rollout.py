"""Issue 22, the hub side: a province rolls a release out to its counties ring by ring.

Real hub databases throughout: a provincial hub served over loopback HTTP (LoopbackHub), county
hubs that enrol there with kind ``hub`` and send their hourly reports with ``tiers.forward`` (the
real report code path), fetch the release from the province with signed requests and verify it
against their own key chain, then roll it out to their nodes; each county's nodes beat against
the county's real heartbeat endpoint (Flask test client, signed requests).
"""

from __future__ import annotations

import gzip
import json

import pytest
from click.testing import CliRunner

from edgenode.cli import cli
from edgenode.core.errors import EdgenodeError
from edgenode.hub import keychain, registry, releases, rollout, tiers
from edgenode.hub.app import create_hub_app
from edgenode.hub.database import open_hub
from tests.conftest import make_config
from tests.helpers_hub import FlaskNode, LoopbackHub, csrf_from, login
from tests.helpers_updates import keys, small_release

N, N1 = "0.1.0", "0.1.1"
COUNTIES = ("甲县", "乙县", "丙县")


class County:
    """A county hub: its database, its app (its nodes' heartbeats) and its nodes at version N."""

    def __init__(self, tmp_path, name: str, province, release_pub, nodes: int = 2):
        self.name = name
        self.cfg = make_config(tmp_path / name, hub__name=name, hub__rollout_default_rings=["1", "all"])
        self.conn = open_hub(self.cfg)
        keychain.add(self.cfg, release_pub, ["software"])  # its nodes (and so the hub) trust the release key
        keychain.add(self.cfg, release_pub.with_name("content.pub"), ["sannong"])  # and a content key, for content
        self.app = create_hub_app(self.cfg)
        self.app.config["TESTING"] = True
        self.nodes = []
        for i in range(nodes):
            node = FlaskNode(self.app.test_client())
            assert node.enroll(registry.new_code(self.conn), name=f"{name}第{i + 1}村").status_code == 200
            self.nodes.append(node)
        self.beat_all(N)
        self.hub_id = tiers.enroll_upstream(self.conn, self.cfg, province.url, registry.new_code(province.conn))["hub_id"]

    def beat(self, node, version, last=None):
        r = node.heartbeat(version=version, software={"version": version, "last_update": last})
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json().get("update")

    def beat_all(self, version):
        return [self.beat(n, version) for n in self.nodes]

    def update_nodes(self, fail_first: bool = False):
        """What the county's nodes do: install when told, report the outcome; until nobody is told."""
        running = {n.node_id: N for n in self.nodes}
        for _ in range(len(self.nodes) + 1):
            told = [n for n in self.nodes if self.beat(n, running[n.node_id])]
            if not told:
                return
            for n in told:
                if fail_first and n is self.nodes[0]:
                    self.beat(n, N, {"version": N1, "state": "rolled_back", "code": "E_UPDATE_ROLLED_BACK",
                                     "reason": "health gate failed: portal answers 502 through nginx"})
                    return
                running[n.node_id] = N1
                self.beat(n, N1, {"version": N1, "state": "committed"})

    def local_rollouts(self):
        return [dict(r) for r in self.conn.execute("SELECT * FROM hub_rollouts")]

    def close(self):
        self.conn.close()


@pytest.fixture
def world(tmp_path):
    k = keys(tmp_path / "keys")
    pcfg = make_config(tmp_path / "province", hub__name="省级平台")
    province = LoopbackHub(pcfg)
    province.conn = open_hub(pcfg)
    counties = {}
    try:
        for name in COUNTIES:
            counties[name] = County(tmp_path, name, province, tmp_path / "keys" / "release.pub")
        yield province, counties, k, tmp_path
    finally:
        province.close()
        province.conn.close()
        for c in counties.values():
            c.close()


def _publish(province, k, tmp_path, signer="release"):
    src = small_release(tmp_path / f"out-{signer}", k[signer], N1)
    releases.publish(province.cfg, src)


def _ring_of(d, county):
    return next(m["ring"] for m in d["nodes"] if m["node_id"] == county.hub_id)


def test_rings_of_counties_open_in_order_as_each_county_finishes(world):
    province, counties, k, tmp_path = world
    _publish(province, k, tmp_path)
    a, b, c = (counties[n] for n in COUNTIES)
    r = rollout.start(province.conn, N1, ["1", "1", "all"], kind="hub", pilots=[b.hub_id])
    assert _ring_of(r, b) == 0 and sorted(m["ring"] for m in r["nodes"]) == [0, 1, 2]
    order = sorted(counties.values(), key=lambda x: _ring_of(r, x))
    assert order[0] is b
    for i, county in enumerate(order):
        # Only the open ring's county finds the offer in its report's answer; the later ones hear nothing.
        for later in order[i + 1:]:
            assert "update" not in tiers.forward(later.conn, later.cfg), later.name
            assert later.local_rollouts() == []
        out = tiers.forward(county.conn, county.cfg)
        assert out["update"]["state"] == "started", out
        assert N1 in releases.published(county.cfg)  # fetched, verified, in its rsync tree for its nodes
        (local,) = county.local_rollouts()
        assert (local["version"], local["upstream_id"], local["kind"]) == (N1, r["id"], "node")
        assert county.beat_all(N) == [{"version": N1, "rollout": local["id"]}, None]  # its own rings: 1, then all
        county.update_nodes()
        assert rollout.describe(county.conn, local["id"])["state"] == "done"
        assert tiers.forward(county.conn, county.cfg)["status"] == "stored"  # the section changed: sent at once
    d = rollout.describe(province.conn, r["id"])
    assert d["state"] == "done" and {m["state"] for m in d["nodes"]} == {"updated"}
    opened = [(x["ring"], x["at"]) for x in d["log"] if x["event"] == "ring_open"]
    assert [ring for ring, _ in opened] == [0, 1, 2] and opened == sorted(opened, key=lambda x: x[1])
    updated = {x["node_id"]: x["at"] for x in d["log"] if x["event"] == "node_updated"}
    assert updated[order[0].hub_id] <= opened[1][1] and updated[order[1].hub_id] <= opened[2][1]
    # The province sees each county's own version and its fleet's versions.
    from edgenode.hub import tier_software
    for county in counties.values():
        sw = tier_software.latest(province.conn, county.hub_id)
        assert sw["version"] and sw["fleet"] == {N1: 2} and sw["rollout"]["state"] == "done"
    client = login(province.app.test_client(), province.conn, username="省平台")
    html = client.get("/province/").get_data(as_text=True)
    assert html.count(f'<td class="county-version">{sw["version"]}</td>') == 3
    r2 = CliRunner().invoke(cli, ["--data-dir", str(province.cfg.data_path), "hub", "rollout", "show", str(r["id"])],
                            env={"EDGENODE_CONFIG": ""})
    assert r2.exit_code == 0 and r2.output.count("county: done") == 3, r2.output


def test_a_pilot_county_that_halts_halts_the_province_before_ring_two(world):
    province, counties, k, tmp_path = world
    _publish(province, k, tmp_path)
    a, b, c = (counties[n] for n in COUNTIES)
    r = rollout.start(province.conn, N1, ["1", "all"], kind="hub", pilots=[a.hub_id], max_fail_share=0.3)
    assert tiers.forward(a.conn, a.cfg)["update"]["state"] == "started"
    a.update_nodes(fail_first=True)  # the pilot node rolls back: the county's own rollout halts
    (local,) = a.local_rollouts()
    assert local["state"] == "halted"
    assert "update" not in tiers.forward(a.conn, a.cfg)
    d = rollout.describe(province.conn, r["id"])
    assert d["state"] == "halted" and d["state_zh"] == "已自动暂停"
    assert "全省更新已自动暂停" in d["reason_zh"] and "甲县" in d["reason_zh"]
    assert "portal answers 502" in d["reason_zh"] and "自动回退" in d["reason_zh"]  # the county's own words
    assert [m["state"] for m in d["nodes"] if m["node_id"] != a.hub_id] == ["waiting", "waiting"]
    for other in (b, c):  # never told: no release fetched, no rollout, its nodes never offered anything
        assert "update" not in tiers.forward(other.conn, other.cfg)
        assert other.local_rollouts() == [] and releases.published(other.cfg) == []
        assert other.beat_all(N) == [None, None]
    assert a.beat(a.nodes[1], N) is None  # the county's second ring never opened either
    # Province staff read why on the province pages, in Chinese.
    client = login(province.app.test_client(), province.conn, username="省平台")
    page = client.get(f"/province/rollouts/{r['id']}").get_data(as_text=True)
    assert "已自动暂停" in page and "全省更新已自动暂停" in page and "县内已自动暂停" in page
    assert "portal answers 502" in page


def test_a_release_the_county_nodes_would_refuse_is_refused_by_the_county_and_halts(world):
    """Signed by a content key its nodes trust for content: the county checks it as its nodes would, reports
    E_RELEASE_KEY, fetches nothing more."""
    province, counties, k, tmp_path = world
    _publish(province, k, tmp_path, signer="content")
    a = counties["甲县"]
    r = rollout.start(province.conn, N1, ["1", "all"], kind="hub", pilots=[a.hub_id])
    out = tiers.forward(a.conn, a.cfg)["update"]
    assert (out["state"], out["code"]) == ("failed", "E_RELEASE_KEY")
    assert a.local_rollouts() == [] and releases.published(a.cfg) == []
    assert not list((a.cfg.data_path / "rsync" / ".fetch").rglob("*.whl"))  # stopped before the files
    tiers.forward(a.conn, a.cfg)
    d = rollout.describe(province.conn, r["id"])
    assert d["state"] == "halted" and "E_RELEASE_KEY" in d["reason_zh"]
    # The county's staff see it too: on their 软件更新 page and with `hub rollout upstream`.
    page = login(a.app.test_client(), a.conn).get("/rollouts/").get_data(as_text=True)
    assert "上级平台要求的更新" in page and "已拒收" in page and "软件发布密钥" in page
    shown = _cli(a.cfg, "upstream")
    assert shown.exit_code == 0 and f"{r['id']} {N1}" in " ".join(shown.output.split()) and "E_RELEASE_KEY" in shown.output


@pytest.mark.parametrize("offer", [
    "0.1.1", {"version": "../../etc", "rollout": 1}, {"version": N1, "rollout": "1"}, {"version": N1, "rollout": True},
    {"version": N1}, {"version": ["0.1.1"], "rollout": 1}, {"version": N1, "rollout": -3},
])
def test_a_hostile_offer_in_an_answer_is_ignored_and_logged(tmp_path, offer):
    from edgenode.hub import tier_release
    cfg = make_config(tmp_path / "county")
    conn = open_hub(cfg)
    try:
        assert tier_release.on_offer(conn, cfg, "http://127.0.0.1:9", None, offer) == {"state": "ignored",
                                                                                        "code": "E_UPDATE_OFFER"}
        assert tier_release.upstream_requests(conn) == [] and rollout.listing(conn) == []
        assert conn.execute("SELECT count(*) FROM hub_log WHERE code = 'E_UPDATE_OFFER'").fetchone()[0] == 1
    finally:
        conn.close()


def test_province_staff_start_a_county_rollout_on_the_page_with_csrf(world):
    province, counties, k, tmp_path = world
    _publish(province, k, tmp_path)
    client = login(province.app.test_client(), province.conn, username="省平台")
    html = client.get("/province/rollouts/").get_data(as_text=True)
    assert "向各县分批更新软件" in html and "乙县" in html
    form = {"version": N1, "rings": "1,30%,all", "pilots": "乙县", "max_fail_share": "0.1"}
    assert client.post("/province/rollouts/", data=form).status_code == 400  # no CSRF token
    assert rollout.listing(province.conn, kind="hub") == []
    bad = client.post("/province/rollouts/", data={**form, "rings": "x", "csrf_token": csrf_from(html)})
    assert bad.status_code == 400 and "每批的数量格式不正确" in bad.get_data(as_text=True)
    ok = client.post("/province/rollouts/", data={**form, "csrf_token": csrf_from(html)})
    assert ok.status_code == 302
    (r,) = rollout.listing(province.conn, kind="hub")
    d = rollout.describe(province.conn, r["id"])
    assert [m["ring"] for m in d["nodes"] if m["node_id"] == counties["乙县"].hub_id] == [0]
    assert sorted(m["ring"] for m in d["nodes"]) == [0, 1, 2]
    anon = province.app.test_client().get(f"/province/rollouts/{r['id']}")
    assert anon.status_code == 302 and "/login" in anon.headers["Location"]


def _cli(cfg, *args):
    return CliRunner().invoke(cli, ["--data-dir", str(cfg.data_path), "hub", "rollout", *args],
                              env={"EDGENODE_CONFIG": ""})


@pytest.mark.parametrize("args, code", [
    (["start", "9.9.9", "--counties", "--ring", "1"], "E_RELEASE_UNKNOWN"),
    (["start", N1, "--counties", "--ring", "x"], "E_ROLLOUT_RINGS"),
    (["start", N1, "--counties", "--ring", "all", "--ring", "1"], "E_ROLLOUT_RINGS"),
    (["start", N1, "--counties", "--ring", "1", "--pilot", "不存在县"], "E_ROLLOUT_NODE"),
    (["start", N1, "--counties", "--ring", "1", "--max-fail", "2"], "E_ROLLOUT_SHARE"),
    (["show", "999"], "E_ROLLOUT_UNKNOWN"),
    (["cancel", "999"], "E_ROLLOUT_UNKNOWN"),
])
def test_the_cli_refuses_bad_province_rollouts_with_codes(world, args, code):
    province, counties, k, tmp_path = world
    _publish(province, k, tmp_path)
    r = _cli(province.cfg, *args)
    assert r.exit_code != 0 and code in r.output, r.output
    assert rollout.listing(province.conn) == []


def test_the_cli_starts_shows_and_cancels_a_province_rollout(world):
    province, counties, k, tmp_path = world
    _publish(province, k, tmp_path)
    r = _cli(province.cfg, "start", N1, "--counties", "--ring", "1", "--ring", "all", "--pilot", "丙县", "--json")
    assert r.exit_code == 0, r.output
    rid = json.loads(r.output)["id"]
    again = _cli(province.cfg, "start", N1, "--counties", "--ring", "all")
    assert again.exit_code != 0 and "E_ROLLOUT_RUNNING" in again.output
    shown = _cli(province.cfg, "show", str(rid), "--json")
    d = json.loads(shown.output)
    assert [c["name"] for c in d["counties"] if c["ring"] == 0] == ["丙县"]
    listed = _cli(province.cfg, "show", "--counties").output.split()
    assert listed[:4] == [str(rid), "hub", N1, "running"], listed
    assert _cli(province.cfg, "cancel", str(rid)).output.strip() == "cancelled"
    c = counties["丙县"]
    assert "update" not in tiers.forward(c.conn, c.cfg)  # a cancelled rollout offers nothing


def _good_section(county):
    return {"version": N, "fleet": {N: 2}, "rollout": None}


HOSTILE = {
    "not a dict": [1, 2],
    "extra key": {"version": N, "fleet": {}, "rollout": None, "shell": "rm -rf /"},
    "bogus version": {"version": "1.0; DROP TABLE hub_nodes", "fleet": {}, "rollout": None},
    "version of wrong type": {"version": 10, "fleet": {}, "rollout": None},
    "huge version": {"version": "1." + "9" * 5000, "fleet": {}, "rollout": None},
    "fleet names a path": {"version": N, "fleet": {"../../etc/passwd": 1}, "rollout": None},
    "fleet negative": {"version": N, "fleet": {N: -5}, "rollout": None},
    "fleet boolean": {"version": N, "fleet": {N: True}, "rollout": None},
    "fleet text": {"version": N, "fleet": {N: "many"}, "rollout": None},
    "fleet too many": {"version": N, "fleet": {f"0.{i}.0": 1 for i in range(101)}, "rollout": None},
    "fleet a list": {"version": N, "fleet": [N], "rollout": None},
    "rollout huge reason": "REASON",
    "rollout bad state": "STATE",
    "rollout id as text": "UPSTREAM",
    "rollout bad code": "CODE",
    "rollout missing keys": "MISSING",
}


def _hostile_rollout(kind, rid):
    good = {"upstream": rid, "version": N1, "state": "done", "code": "", "reason": "", "reason_zh": "",
            "nodes": 2, "updated": 2, "failed": 0}
    bad = {"REASON": {"reason_zh": "好" * 100_000}, "STATE": {"state": "exploded"}, "UPSTREAM": {"upstream": str(rid)},
           "CODE": {"code": "rm -rf /"}}.get(kind)
    if kind == "MISSING":
        return {"version": N, "fleet": {N: 2}, "rollout": {"upstream": rid, "state": "done"}}
    return {"version": N, "fleet": {N: 2}, "rollout": {**good, **bad}}


def _province_state(conn):
    tables = ("hub_tier_reports", "hub_tier_software", "hub_tier_fleet", "hub_rollouts", "hub_rollout_nodes",
              "hub_rollout_log", "hub_tier_daily")
    out = {t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2")] for t in tables}
    out["hub_nodes"] = [tuple(r) for r in conn.execute("SELECT node_id, version, last_batch_at, batches FROM hub_nodes")]
    return out


def test_hostile_software_sections_are_refused_and_change_nothing(world):
    province, counties, k, tmp_path = world
    _publish(province, k, tmp_path)
    a = counties["甲县"]
    assert tiers.forward(a.conn, a.cfg)["status"] == "stored"  # report 1: an honest section
    r = rollout.start(province.conn, N1, ["1", "all"], kind="hub", pilots=[a.hub_id])
    before = _province_state(province.conn)
    no = a.conn.execute("SELECT last_report_no FROM hub_upstream").fetchone()[0] + 1
    for name, section in HOSTILE.items():
        if isinstance(section, str):
            section = _hostile_rollout(section, r["id"])
        report = tiers.build_report(a.conn, a.hub_id, a.name, no, 0.0, software=section)
        body = gzip.compress(json.dumps(report, ensure_ascii=False).encode())
        a.conn.execute("UPDATE hub_upstream SET pending_no = ?, pending_body = ?, pending_cutoff = 0", (no, body))
        a.conn.commit()
        with pytest.raises(EdgenodeError) as e:
            tiers.forward(a.conn, a.cfg)
        assert e.value.code == "E_REPORT_SOFTWARE", name
        assert _province_state(province.conn) == before, name
    # The same report number with an honest section is then stored: nothing was kept under it.
    a.conn.execute("UPDATE hub_upstream SET pending_no = NULL, pending_body = NULL")
    a.conn.commit()
    out = tiers.forward(a.conn, a.cfg)
    assert (out["status"], out["report_no"]) == ("stored", no) and out["update"]["state"] == "started"
    events = [x[0] for x in province.conn.execute("SELECT code FROM hub_log WHERE code = 'E_REPORT_SOFTWARE'")]
    assert len(events) == len(HOSTILE)


def test_only_a_county_hub_fetches_release_files_and_only_inside_a_release(world):
    import time
    import urllib.error
    import urllib.request

    from edgenode.hub.signing import sign_headers
    from tests.helpers_hub import new_identity
    province, counties, k, tmp_path = world
    _publish(province, k, tmp_path)
    from edgenode.core.identity import load_or_create
    county = load_or_create(counties["甲县"].cfg)
    village = new_identity()
    registry.enroll(province.conn, code=registry.new_code(province.conn), node_id=village.node_id,
                    public_key=village.public_b64())

    def get(ident, path, signed=None):  # signed: the path as the server decodes it
        headers = sign_headers(ident, "GET", signed or path, b"", int(time.time())) if ident else {}
        req = urllib.request.Request(province.url + path, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    status, body = get(county, f"/api/v1/releases/{N1}/release.json")
    assert status == 200 and json.loads(body)["version"] == N1
    assert get(village, f"/api/v1/releases/{N1}/release.json")[0] == 403  # a village node is not a hub
    assert get(None, f"/api/v1/releases/{N1}/release.json")[0] == 401
    (province.cfg.data_path / "rsync" / "channels" / "software" / f"edgenode-{N1}" / "link").symlink_to(
        province.cfg.data_path / "hub.db")
    for path, signed in ((f"/api/v1/releases/{N1}/%2e%2e/%2e%2e/%2e%2e/hub.db", f"/api/v1/releases/{N1}/../../../hub.db"),
                         (f"/api/v1/releases/{N1}/link", None),
                         ("/api/v1/releases/9.9.9/release.json", None), ("/api/v1/releases/abc/release.json", None)):
        status, body = get(county, path, signed)
        assert status in (400, 404) and not body.startswith(b"SQLite"), (path, status)


def test_a_crash_between_storing_a_report_and_moving_the_rollout_is_made_up_by_the_resend(world, monkeypatch):
    """The province stores a county's report, then dies before moving its rollout: the county gets no
    answer, resends the same bytes, and the duplicate moves the rollout from what was stored."""
    from edgenode.hub import tier_software
    province, counties, k, tmp_path = world
    _publish(province, k, tmp_path)
    a, b = counties["甲县"], counties["乙县"]
    r = rollout.start(province.conn, N1, ["1", "all"], kind="hub", pilots=[a.hub_id])
    assert tiers.forward(a.conn, a.cfg)["update"]["state"] == "started"
    a.update_nodes()
    real = tier_software.advance

    def crash(conn, via, now=None):
        raise RuntimeError("power cut after the report's commit")

    monkeypatch.setattr(tier_software, "advance", crash)  # the province runs in this process (LoopbackHub)
    with pytest.raises(EdgenodeError):
        tiers.forward(a.conn, a.cfg)
    assert tier_software.latest(province.conn, a.hub_id)["rollout"]["state"] == "done"  # stored, committed
    assert rollout.describe(province.conn, r["id"])["ring"] == 0  # but not acted on
    monkeypatch.setattr(tier_software, "advance", real)
    assert tiers.forward(a.conn, a.cfg)["status"] == "duplicate"
    d = rollout.describe(province.conn, r["id"])
    assert d["ring"] == 1 and {m["node_id"]: m["state"] for m in d["nodes"]}[a.hub_id] == "updated"
    assert tiers.forward(b.conn, b.cfg)["update"]["state"] == "started"  # ring 2 is told


def test_a_broken_link_during_the_fetch_is_retried_and_resumes(world, monkeypatch):
    from edgenode.hub import tier_release, tier_software
    province, counties, k, tmp_path = world
    _publish(province, k, tmp_path)
    a = counties["甲县"]
    r = rollout.start(province.conn, N1, ["1", "all"], kind="hub", pilots=[a.hub_id])
    real, fetched = tier_release._get, []

    def flaky(url, ident, path, dest, max_bytes, timeout=60.0):
        if path.endswith(".whl") and "deps/" in path and not any("deps/" in p for p in fetched):
            fetched.append(path)
            raise EdgenodeError("E_UPSTREAM_UNREACHABLE", "connection reset", status=502)
        fetched.append(path)
        return real(url, ident, path, dest, max_bytes, timeout)

    monkeypatch.setattr(tier_release, "_get", flaky)
    out = tiers.forward(a.conn, a.cfg)["update"]
    assert (out["state"], out["code"]) == ("waiting", "E_UPSTREAM_UNREACHABLE") and a.local_rollouts() == []
    # The next report says "waiting" and its answer offers again: the fetch resumes.
    assert tiers.forward(a.conn, a.cfg)["update"]["state"] == "started"
    assert tier_software.latest(province.conn, a.hub_id)["rollout"]["state"] == "waiting"
    assert rollout.describe(province.conn, r["id"])["state"] == "running"
    wheels = [p for p in fetched if "/wheel/" in p]
    deps = [p for p in fetched if "/deps/" in p]
    assert len(wheels) == 1 and len(deps) == 2  # the intact wheel was not fetched twice; the broken one was
    assert N1 in releases.published(a.cfg) and len(a.local_rollouts()) == 1
