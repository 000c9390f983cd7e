"""Tiers: two county hubs forward signed aggregates to a provincial hub over loopback HTTP."""

from __future__ import annotations

import gzip
import json

import pytest

from edgenode.core.errors import EdgenodeError
from edgenode.hub import registry, stats, tiers
from edgenode.hub.database import open_hub
from edgenode.hub.ingest import ingest_batch
from tests.conftest import make_config
from tests.helpers_hub import LoopbackHub, make_events, new_identity, seal

FIELDS = ("visits", "plays", "events", "watch_hours")


def _county(tmp_path, name, nodes, batches, seed):
    cfg = make_config(tmp_path / name, hub__name=name)
    conn = open_hub(cfg)
    sent = []
    for i in range(nodes):
        sent += _node_with_batches(conn, f"{name}-村{i}", f"{name}-镇{i % 2}", batches, seed + i * 7)
    return cfg, conn, sent


def _node_with_batches(conn, name, township, batches, seed, start=1761955200.0):
    ident = new_identity()
    registry.enroll(conn, code=registry.new_code(conn, township=township), node_id=ident.node_id,
                    public_key=ident.public_b64(), name=name)
    node = registry.get_node(conn, ident.node_id)
    sent = []
    for b in range(batches):
        data, sig = seal(ident, b + 1, make_events(40, first_seq=1 + 40 * b, seed=seed + b,
                                                   start=start + b * 86400 * 9))
        assert ingest_batch(conn, node, b + 1, data, sig)["status"] == "stored"
        sent.append((ident, node, b + 1, data, sig))
    return sent


def _sum(*totals):
    return {f: round(sum(t[f] for t in totals), 2) for f in FIELDS}


def _assert_matches(province, counties):
    assert stats.totals(province) == _sum(*(stats.totals(c) for c in counties))
    for group, key in (("township", "township"), ("node", "node_id"), ("month", "month"), ("column", "column_key")):
        top = {r[key]: r for r in stats.table(province, group)}
        below: dict = {}
        for c in counties:
            for r in stats.table(c, group):
                agg = below.setdefault(r[key], {"visits": 0, "plays": 0, "unique_terminals": 0})
                for f in agg:
                    agg[f] += r[f]
        assert set(top) == set(below), group
        for k, v in below.items():
            assert {f: top[k][f] for f in v} == v, (group, k)


@pytest.fixture
def province(tmp_path):
    cfg = make_config(tmp_path / "province", hub__name="省级平台")
    hub = LoopbackHub(cfg)
    conn = open_hub(cfg)
    yield cfg, conn, hub
    hub.close()
    conn.close()


def test_provincial_totals_equal_the_counties_even_after_redelivery(tmp_path, province):
    pcfg, pconn, phub = province
    a_cfg, a, a_sent = _county(tmp_path, "甲县", 3, 2, seed=1)
    b_cfg, b, _ = _county(tmp_path, "乙县", 2, 3, seed=100)
    for cfg, conn in ((a_cfg, a), (b_cfg, b)):
        r = tiers.enroll_upstream(conn, cfg, phub.url, registry.new_code(pconn))
        assert r["upstream_name"] == "省级平台"
        assert registry.get_node(pconn, r["hub_id"])["kind"] == "hub"
        assert tiers.forward(conn, cfg)["status"] == "stored"
    _assert_matches(pconn, [a, b])

    # Redelivery at every level: nodes resend batches to their county, counties resend everything.
    for _ident, node, no, data, sig in a_sent:
        assert ingest_batch(a, node, no, data, sig)["status"] == "duplicate"
    # Rows touched in the last OVERLAP_SECONDS are sent again on purpose: absolute values, replaced.
    assert tiers.forward(a, a_cfg)["status"] == "stored"
    _assert_matches(pconn, [a, b])
    a.execute("UPDATE hub_upstream SET cutoff = 0")  # forget what was acknowledged: a full resend
    assert tiers.forward(a, a_cfg)["status"] == "stored"
    _assert_matches(pconn, [a, b])

    # New usage on days that already have figures, and a new node: values are replaced, not added.
    _node_with_batches(a, "迟到村", "甲县-镇0", 1, seed=999)
    ident, node = a_sent[0][:2]
    extra = make_events(25, first_seq=5000, seed=998, start=1761955200.0)
    assert ingest_batch(a, node, 3, *seal(ident, 3, extra))["status"] == "stored"
    assert tiers.forward(a, a_cfg)["status"] == "stored"
    _assert_matches(pconn, [a, b])
    a.close()
    b.close()


def test_a_lost_answer_resends_the_same_bytes_and_a_changed_report_is_refused(tmp_path, province, monkeypatch):
    pcfg, pconn, phub = province
    cfg, conn, _ = _county(tmp_path, "丙县", 2, 1, seed=7)
    tiers.enroll_upstream(conn, cfg, phub.url, registry.new_code(pconn))
    real_post = tiers._post

    def delivered_but_answer_lost(url, body, headers, timeout=60.0):
        real_post(url, body, headers, timeout)
        raise EdgenodeError("E_UPSTREAM_UNREACHABLE", "connection reset", status=502)

    monkeypatch.setattr(tiers, "_post", delivered_but_answer_lost)
    with pytest.raises(EdgenodeError):
        tiers.forward(conn, cfg)
    monkeypatch.setattr(tiers, "_post", real_post)
    assert conn.execute("SELECT pending_no FROM hub_upstream").fetchone()[0] == 1
    r = tiers.forward(conn, cfg)
    assert (r["status"], r["report_no"]) == ("duplicate", 1)
    assert conn.execute("SELECT pending_no, last_report_no FROM hub_upstream").fetchone()[:] == (None, 1)
    _assert_matches(pconn, [conn])
    # The same number with other content (a buggy or malicious county) is refused and raises an alert.
    from edgenode.core.identity import load_or_create
    fake = gzip.compress(json.dumps({"v": 1, "hub_id": load_or_create(cfg).node_id, "report_no": 1, "nodes": [],
                                     "daily": [["x", "y", "2026-11-01", "", "view", 10 ** 6, 0.0]],
                                     "terminals": []}).encode())
    conn.execute("UPDATE hub_upstream SET pending_no = 1, pending_body = ?, pending_cutoff = 0", (fake,))
    with pytest.raises(EdgenodeError) as e:
        tiers.forward(conn, cfg)
    assert e.value.code == "E_REPORT_CONFLICT"
    assert pconn.execute("SELECT count(*) FROM hub_alerts WHERE rule = 'conflict'").fetchone()[0] == 1
    _assert_matches(pconn, [conn])
    conn.close()


def test_only_enrolled_hubs_may_send_aggregates(tmp_path, province):
    pcfg, pconn, phub = province
    cfg, conn, _ = _county(tmp_path, "戊县", 1, 1, seed=3)
    conn.execute("INSERT INTO hub_upstream (id, url, enrolled_at) VALUES (1, ?, 0)", (phub.url,))
    with pytest.raises(EdgenodeError) as e:  # never enrolled upstream
        tiers.forward(conn, cfg)
    assert e.value.code == "E_NODE_UNKNOWN"
    from edgenode.core.identity import load_or_create
    ident = load_or_create(cfg)  # enrolled, but as a village node, not as a hub
    registry.enroll(pconn, code=registry.new_code(pconn), node_id=ident.node_id, public_key=ident.public_b64())
    with pytest.raises(EdgenodeError) as e:
        tiers.forward(conn, cfg)
    assert e.value.code == "E_NOT_A_HUB"
    registry.revoke(pconn, ident.node_id)
    with pytest.raises(EdgenodeError) as e:
        tiers.forward(conn, cfg)
    assert e.value.code == "E_NODE_REVOKED"
    assert stats.totals(pconn)["events"] == 0
    conn.close()


def test_housekeeping_evaluates_alerts_and_forwards_upstream(tmp_path, province):
    from click.testing import CliRunner
    from edgenode.cli import cli
    pcfg, pconn, phub = province
    cfg, conn, _ = _county(tmp_path, "己县", 2, 1, seed=11)
    tiers.enroll_upstream(conn, cfg, phub.url, registry.new_code(pconn))
    r = CliRunner().invoke(cli, ["--data-dir", str(cfg.data_path), "hub", "housekeeping", "--json"],
                           env={"EDGENODE_CONFIG": ""})
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["upstream"]["status"] == "stored" and out["alerts"]["opened"] == 0
    _assert_matches(pconn, [conn])
    phub.close()  # the upstream goes away: housekeeping still runs, the failure is logged
    _node_with_batches(conn, "新村", "己县-镇0", 1, seed=12)
    r = CliRunner().invoke(cli, ["--data-dir", str(cfg.data_path), "hub", "housekeeping", "--json"],
                           env={"EDGENODE_CONFIG": ""})
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["upstream"] == {"status": "failed", "code": "E_UPSTREAM_UNREACHABLE"}
    assert conn.execute("SELECT pending_no FROM hub_upstream").fetchone()[0] is not None
    conn.close()


def test_two_copies_of_a_report_arriving_at_once_meet_as_a_duplicate(tmp_path):
    """The duplicate check and the insert share one transaction (a retry racing its original)."""
    import threading

    cfg = make_config(tmp_path / "province")
    conn = open_hub(cfg)
    ident = new_identity()
    registry.enroll(conn, code=registry.new_code(conn), node_id=ident.node_id, public_key=ident.public_b64(),
                    name="某县", kind="hub")
    node = registry.get_node(conn, ident.node_id)
    conn.close()
    body = gzip.compress(json.dumps({"v": 1, "hub_id": ident.node_id, "report_no": 1, "nodes": [],
                                     "daily": [["o", "n", "2026-11-01", "sannong", "play", 3, 60.0]] * 1,
                                     "terminals": []}).encode())
    outcomes, errors, start = [], [], threading.Barrier(4)

    def send():
        c = open_hub(cfg)
        try:
            start.wait()
            outcomes.append(tiers.receive_report(c, node, body)["status"])
        except Exception as e:  # a 500 in production
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(outcomes) == ["duplicate", "duplicate", "duplicate", "stored"]
