"""Trust that arrives with enrolment, with real processes: `edgenode hub serve`, the node's CLI.

The node pins the county key when it enrols; the county's stick then imports with no trust
step.  `hub keys rotate` reaches an online node by its heartbeat and a never-online node by
the key lists on its next stick; `hub keys add` and `hub keys revoke` do the same for another
publisher's key.  A stick signed by a key nobody gave the node is refused (issue 15).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers_bundles import make_source, new_key
from tests.helpers_bundles import make_bundle
from tests.helpers_sync import ROOT, Hub, _env


class Node:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, "-m", "edgenode", "--data-dir", str(self.data_dir), *args],
                           cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
        if ok:
            assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p

    def import_stick(self, stick: Path) -> list[dict]:
        p = self.run("import", "--json", str(stick), ok=False)
        return json.loads(p.stdout)

    def trusted(self) -> dict[str, list[str]]:
        return {k["key_id"]: k["channels"] for k in json.loads(self.run("trust", "list", "--json").stdout)["keys"]}


@pytest.fixture
def county(tmp_path):
    hub = Hub(tmp_path / "hub").start()
    yield hub
    hub.stop()


def _stick(hub: Hub, tmp_path: Path, name: str, *, seq: int, channel: str = "sannong") -> Path:
    src = make_source(tmp_path / f"src-{name}", n=2, seed=seq)
    hub.cli("publish", str(src), "--channel", channel, "--seq", str(seq))
    stick = tmp_path / f"stick-{name}"
    hub.cli("usb-tree", str(stick))
    return stick


def test_an_enrolled_node_imports_the_countys_stick_with_no_trust_step(county, tmp_path):
    node = Node(tmp_path / "node")
    assert node.trusted() == {}
    out = node.run("enroll", county.url, "--code", county.new_code()).stdout
    county_key = json.loads(county.cli("keys", "show", "--json"))["county_key"]
    assert node.trusted() == {county_key: ["pushi", "sannong", "shequ", "software", "xinchengshi"]}, out

    results = node.import_stick(_stick(county, tmp_path, "first", seq=1))
    assert [r["result"] for r in results] == ["imported"], results


def test_rotation_reaches_an_online_node_by_heartbeat_and_an_offline_one_by_stick(county, tmp_path):
    online, offline = Node(tmp_path / "online"), Node(tmp_path / "offline")
    for n in (online, offline):
        n.run("enroll", county.url, "--code", county.new_code())
    old = json.loads(county.cli("keys", "show", "--json"))["county_key"]
    first = _stick(county, tmp_path, "first", seq=1)
    assert online.import_stick(first)[0]["result"] == "imported"

    rotated = json.loads(county.cli("keys", "rotate", "--json"))
    assert rotated["old_key"] == old and rotated["new_key"] != old
    online.run("sync", "now", "--job", "heartbeat")
    assert online.trusted() == {rotated["new_key"]: ["pushi", "sannong", "shequ", "software", "xinchengshi"]}

    second = _stick(county, tmp_path, "second", seq=2)  # signed by the new key, carries the chain
    assert online.import_stick(second)[-1]["result"] == "imported"
    # The offline node never heard the heartbeat: the key lists on the stick bring it along.
    assert old in offline.trusted()
    results = offline.import_stick(second)
    assert [r["result"] for r in results] == ["imported"], results
    assert list(offline.trusted()) == [rotated["new_key"]]

    # The retired key signs nothing any more: a stick made with it is refused.
    retired = county.data_dir / "hub_keys" / f"county-{old}.key.retired"
    from edgenode.protocol import minisign
    from edgenode.protocol.build import build_bundle
    stale = tmp_path / "stale-stick" / "edgenode-bundles"
    build_bundle(make_source(tmp_path / "src-stale", n=1, seed=7), "sannong", 3, stale,
                 secret_key=minisign.load_secret_key(retired))
    refused = online.import_stick(stale.parent)
    assert [(r["result"], r["error_code"]) for r in refused] == [("failed", "E_SIG_UNTRUSTED")]


def test_another_publishers_key_is_added_then_revoked_on_every_node(county, tmp_path):
    node = Node(tmp_path / "node")
    node.run("enroll", county.url, "--code", county.new_code())
    province = new_key(tmp_path, "province")
    added = json.loads(county.cli("keys", "add", str(tmp_path / "province.pub"), "--channel", "pushi", "--json"))
    assert added["channels"] == ["pushi"]
    node.run("sync", "now", "--job", "heartbeat")
    assert node.trusted()[province.key_id_hex] == ["pushi"]

    ok = make_bundle(tmp_path / "p1", province, channel="pushi", seq=1, n=1)
    assert node.import_stick(ok)[0]["result"] == "imported"
    wrong_channel = make_bundle(tmp_path / "p2", province, channel="sannong", seq=1, n=1)
    assert node.import_stick(wrong_channel)[0]["error_code"] == "E_CHANNEL_FORBIDDEN"

    county.cli("keys", "revoke", province.key_id_hex)
    node.run("sync", "now", "--job", "heartbeat")
    assert province.key_id_hex not in node.trusted()
    later = make_bundle(tmp_path / "p3", province, channel="pushi", seq=2, n=1)
    assert node.import_stick(later)[0]["error_code"] == "E_SIG_UNTRUSTED"


def test_a_hub_cannot_grant_channels_beyond_its_own_or_revoke_its_current_key(county, tmp_path):
    new_key(tmp_path, "other")
    p = subprocess.run([sys.executable, "-m", "edgenode", "--data-dir", str(county.data_dir), "hub", "keys", "add",
                        str(tmp_path / "other.pub"), "--channel", "opera"], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "E_KEYLIST_FORBIDDEN" in p.stderr + p.stdout
    current = json.loads(county.cli("keys", "show", "--json"))["county_key"]
    p = subprocess.run([sys.executable, "-m", "edgenode", "--data-dir", str(county.data_dir), "hub", "keys", "revoke",
                        current], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "E_KEYLIST_SELF" in p.stderr + p.stdout
    assert json.loads(county.cli("keys", "show", "--json"))["keylists"] == []
