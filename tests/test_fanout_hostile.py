"""Hostile fan-out input: what a hub's answer or a node's heartbeat may carry, checked like any input.
Each bad item is dropped with nothing else changed; nothing reaches an rsync argument, a secrets file or
the hub's tables unchecked."""

from __future__ import annotations

import json

import pytest

from edgenode.core.db import open_main
from edgenode.hub.database import open_hub
from edgenode.node.sources import fanout, mirror
from tests.conftest import make_config

GOOD = {"kind": "mirror", "node_id": "ab" * 16, "rsync_url": "rsync://10.1.2.3:8731", "username": "cd" * 16,
        "password": "0f" * 20}

BAD_UPSTREAMS = [
    {**GOOD, "rsync_url": "file:///etc"},
    {**GOOD, "rsync_url": "rsync://host/mod --rsh=sh"},
    {**GOOD, "rsync_url": "rsync://-e/x"[:0] + "-ersync://x"},
    {**GOOD, "rsync_url": "rsync://user@host/x"},
    {**GOOD, "username": "root@evil"},
    {**GOOD, "username": "../../x"},
    {**GOOD, "node_id": "x" * 65},
    {**GOOD, "kind": "peer"},
    {**GOOD, "password": "a\nb"},
    {**GOOD, "password": 5},
    "rsync://10.0.0.1",
    None,
]


@pytest.fixture
def node(tmp_path):
    cfg = make_config(tmp_path / "n", mirror__enabled=True)
    conn = open_main(cfg)
    yield cfg, conn
    conn.close()


@pytest.mark.parametrize("bad", BAD_UPSTREAMS, ids=range(len(BAD_UPSTREAMS)))
def test_a_hostile_upstream_list_is_refused_whole_and_the_old_one_kept(node, bad):
    cfg, conn = node
    assert fanout.apply_answer(conn, {"upstreams": [GOOD]}) == {"upstreams": 1}
    assert fanout.apply_answer(conn, {"upstreams": [GOOD, bad]}) == {}
    assert [u["rsync_url"] for u in fanout.upstreams(cfg, conn)] == [GOOD["rsync_url"]]


def test_hostile_mirror_clients_never_reach_the_secrets_file(node):
    cfg, conn = node
    ok = {"node_id": "12" * 16, "password": "ab" * 20}
    hostile = [{"node_id": "12" * 16 + "\nroot", "password": "ab" * 20},
               {"node_id": "34" * 16, "password": "x:y\nroot:pw"},
               {"node_id": "*", "password": "ab" * 20},
               {"node_id": "56" * 16, "password": "AB" * 20 + "\n"},
               "root:pw", None, {"node_id": 7, "password": []}]
    assert fanout.apply_answer(conn, {"mirror_clients": [ok, *hostile]}) == {"mirror_clients": 1}
    assert mirror.write_access(cfg, conn) == {"open": True, "clients": 1}
    secrets = (mirror.mirror_dir(cfg) / "rsyncd.secrets").read_text()
    assert secrets == f"{ok['node_id']}:{ok['password']}\n"
    assert (mirror.mirror_dir(cfg) / "rsyncd.secrets").stat().st_mode & 0o077 == 0
    htpasswd = (mirror.mirror_dir(cfg) / "htpasswd").read_text().splitlines()
    assert len(htpasswd) == 1 and htpasswd[0].startswith(ok["node_id"] + ":{SSHA}") and ok["password"] not in htpasswd[0]


def test_hostile_swarm_peers_and_published_seqs_are_dropped(node):
    cfg, conn = node
    fanout.apply_answer(conn, {"swarm_peers": ["10.0.0.2:6881", "-x:1", "a b:1", "10.0.0.3:99999999", "h:0", 5, "h:"],
                               "swarm_rank": 2, "published": {"sannong": 4, "x": "7", "y": True, "z": None}})
    assert fanout.swarm_peers(conn) == ([("10.0.0.2", 6881)], 2)
    assert fanout.published(conn) == {"sannong": 4}
    assert fanout.apply_answer(conn, {"swarm_peers": ["10.0.0.9:1"], "swarm_rank": True}) == {}
    assert fanout.swarm_peers(conn) == ([("10.0.0.2", 6881)], 2)


HOSTILE_TRAFFIC = [
    {"month": "2026-12", "source": "county", "channel": "sannong", "rx": -5, "tx": 0},
    {"month": "2026-12", "source": "county", "channel": "sannong", "rx": True, "tx": 0},
    {"month": "2026-12", "source": "county", "channel": "sannong", "rx": 1.5, "tx": 0},
    {"month": "2026-12", "source": "internet", "channel": "sannong", "rx": 5, "tx": 0},
    {"month": "12/2026", "source": "county", "channel": "sannong", "rx": 5, "tx": 0},
    {"month": "2026-12", "source": "county", "channel": "x" * 40, "rx": 5, "tx": 0},
    {"month": "2026-12", "source": "county", "channel": ["a"], "rx": 5, "tx": 0},
    "county=5", None,
]


def test_a_heartbeat_with_hostile_fanout_fields_stores_only_what_is_well_formed(tmp_path):
    from edgenode.hub import fanout as hub_fanout
    from edgenode.hub import registry
    cfg = make_config(tmp_path / "hub")
    conn = open_hub(cfg)
    try:
        code = registry.new_code(conn)
        node = registry.enroll(conn, code=code, node_id="ab" * 16, public_key=_pubkey(), name="n")
        good = {"month": "2026-12", "source": "county", "channel": "sannong", "rx": 1000, "tx": 0}
        snap = {"traffic": [*HOSTILE_TRAFFIC, good] + [good] * 500, "swarm": "evil host:1",
                "mirror_reports": [None, {"mirror": 5}, "x", {"mirror": "m", "code": ["E"]}],
                "mirror": {"rsync_url": "file:///etc"}}
        answer = hub_fanout.on_heartbeat(conn, cfg, dict(node), snap)
        rows = [tuple(r) for r in conn.execute("SELECT month, source, channel, rx, tx FROM hub_traffic")]
        assert rows == [("2026-12", "county", "sannong", 1000, 0)]
        assert conn.execute("SELECT count(*) FROM hub_swarm").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM hub_mirror_reports").fetchone()[0] == 0
        assert answer["upstreams"] == [] and answer["swarm_peers"] == [] and "mirror_clients" not in answer
        # a counter never goes back within its month: an older, smaller report changes nothing
        hub_fanout.on_heartbeat(conn, cfg, dict(node), {"traffic": [{**good, "rx": 10}]})
        assert conn.execute("SELECT rx FROM hub_traffic").fetchone()[0] == 1000
        json.dumps(answer)  # the answer is plain JSON
    finally:
        conn.close()


def _pubkey() -> str:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.Raw,
                                                                 serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()
