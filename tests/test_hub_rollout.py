"""Rollouts at the hub: rings open in order, a failure halts before the next ring, staff read why.

The real hub database and the real heartbeat endpoint (Flask test client, signed requests);
the nodes' heartbeats carry the ``software`` section as the node's updates area writes it.
"""

from __future__ import annotations

import pytest

from edgenode.core.errors import EdgenodeError
from edgenode.hub import registry, rollout
from edgenode.hub.app import create_hub_app
from tests.helpers_hub import FlaskNode, login

N, N1 = "0.1.0", "0.1.1"


@pytest.fixture
def hub(cfg):
    app = create_hub_app(cfg)
    app.config["TESTING"] = True
    return app


def _nodes(hub, n):
    out = []
    with hub.app_context():
        from edgenode.hub.web.context import get_db
        db = get_db()
        for i in range(n):
            node = FlaskNode(hub.test_client())
            node.enroll(registry.new_code(db, township="河口镇"), name=f"第{i + 1}村")
            out.append(node)
    return out


def _beat(node, version, last=None):
    r = node.heartbeat(software={"version": version, "last_update": last})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json().get("update")


def test_ring_sizes():
    assert rollout.ring_sizes(["1", "2", "3"], 6) == [1, 2, 3]
    assert rollout.ring_sizes(["2", "10%", "all"], 50) == [2, 5, 43]
    assert rollout.ring_sizes(["1", "all"], 1) == [1, 0]
    for bad in (["x"], ["all", "2"], [], ["-1"]):
        with pytest.raises(EdgenodeError):
            rollout.ring_sizes(bad, 5)


def test_rings_open_in_order_as_nodes_report_healthy(hub, cfg):
    nodes = _nodes(hub, 6)
    from edgenode.hub.database import open_hub
    db = open_hub(cfg)
    r = rollout.start(db, N1, ["1", "2", "3"], max_fail_share=0.2, pilots=[nodes[3].node_id])
    rings = {m["node_id"]: m["ring"] for m in r["nodes"]}
    assert rings[nodes[3].node_id] == 0 and sorted(rings.values()) == [0, 1, 1, 2, 2, 2]
    by_ring = {i: [n for n in nodes if rings[n.node_id] == i] for i in range(3)}
    # Only the pilot is told; the others hear nothing yet.
    assert _beat(by_ring[0][0], N) == {"version": N1, "rollout": r["id"]}
    assert all(_beat(n, N) is None for n in by_ring[1] + by_ring[2])
    _beat(by_ring[0][0], N1, {"version": N1, "state": "committed"})
    assert all(_beat(n, N) == {"version": N1, "rollout": r["id"]} for n in by_ring[1])
    assert all(_beat(n, N) is None for n in by_ring[2])
    for n in by_ring[1]:
        _beat(n, N1, {"version": N1, "state": "committed"})
    for n in by_ring[2]:
        assert _beat(n, N)["version"] == N1
        _beat(n, N1, {"version": N1, "state": "committed"})
    d = rollout.describe(db, r["id"])
    assert d["state"] == "done" and {m["state"] for m in d["nodes"]} == {"updated"}
    opened = [(x["ring"], x["at"]) for x in d["log"] if x["event"] == "ring_open"]
    assert [ring for ring, _ in opened] == [0, 1, 2] and opened == sorted(opened, key=lambda x: x[1])
    db.close()


def test_a_pilot_that_rolls_back_halts_the_rollout_before_ring_two(hub, cfg):
    nodes = _nodes(hub, 3)
    from edgenode.hub.database import open_hub
    db = open_hub(cfg)
    r = rollout.start(db, N1, ["1", "all"], max_fail_share=0.1, pilots=[nodes[0].node_id])
    assert _beat(nodes[0], N)["version"] == N1
    _beat(nodes[0], N, {"version": N1, "state": "rolled_back", "code": "E_UPDATE_ROLLED_BACK",
                        "reason": "health gate failed: portal: portal answers 502 through nginx"})
    assert all(_beat(n, N) is None for n in nodes)  # nobody else is ever told
    d = rollout.describe(db, r["id"])
    assert d["state"] == "halted" and d["state_zh"] == "已自动暂停"
    assert "自动回退" in d["reason_zh"] and "portal answers 502" in d["reason_zh"]
    assert [m["state"] for m in d["nodes"]] == ["failed", "waiting", "waiting"]
    db.close()
    client = hub.test_client()
    login(client, open_hub(cfg))
    page = client.get(f"/rollouts/{r['id']}").get_data(as_text=True)
    assert "已自动暂停" in page and "portal answers 502" in page and "更新失败，已回退" in page


def test_the_hub_flags_security_updates_pending_too_long(hub, cfg):
    import time

    from edgenode.hub import alerts
    from edgenode.hub.database import open_hub
    old, fresh = _nodes(hub, 2)
    now = time.time()
    old.heartbeat(software={"version": N, "security": {"count": 3, "since": now - 20 * 86400,
                                                       "packages": ["openssl", "libc6", "tzdata"]}})
    fresh.heartbeat(software={"version": N, "security": {"count": 1, "since": now - 86400, "packages": ["tzdata"]}})
    db = open_hub(cfg)
    opened = alerts.evaluate(db, cfg, notify=False)["opened"]
    assert [(a["rule"], a["node_id"]) for a in opened] == [("security", old.node_id)]
    assert "3 个系统安全更新已等待 20 天" in opened[0]["detail"]
    db.close()
