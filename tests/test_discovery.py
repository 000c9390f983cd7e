"""mDNS: the node advertised in one namespace is found by avahi-browse in another.

Real parts only: two network namespaces joined by a veth pair, a real
avahi-daemon and avahi-browse in namespace B, and ``edgenode advertise``
running in namespace A (see tests/helpers_health.py).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

from edgenode.node.health import discovery
from tests.conftest import make_config
from tests.helpers_health import can_use_netns, mdns_pair

NAME = "某某村文化服务点"
EDGENODE = str(Path(sys.executable).with_name("edgenode"))


def avahi_unescape(s: str) -> str:
    """avahi-browse -p writes non-ASCII bytes as \\DDD (decimal)."""
    raw = re.sub(rb"\\(\d{3})", lambda m: bytes([int(m.group(1))]), s.encode("utf-8"))
    return re.sub(rb"\\(.)", rb"\1", raw).decode("utf-8")


def parse_txt(field: str) -> dict:
    return dict(item.split("=", 1) for item in re.findall(r'"([^"]*)"', field))


def wait_browse(pair, predicate, timeout=25.0):
    deadline = time.monotonic() + timeout
    rows = []
    while time.monotonic() < deadline:
        rows = [r for r in pair.browse(timeout=15) if predicate(r)]
        if rows:
            return rows
        time.sleep(0.5)
    return rows


@pytest.fixture
def pair(tmp_path):
    reason = can_use_netns()
    if reason:
        pytest.skip(reason)
    with mdns_pair(tmp_path) as p:
        yield p


@pytest.mark.root
def test_avahi_in_another_namespace_finds_the_node_and_follows_address_changes(pair, tmp_path):
    data = tmp_path / "node"
    env = {**pair.env(), "EDGENODE_CONFIG": "", "EDGENODE_NODE_NAME": NAME, "EDGENODE_WEB_PORT": "8123",
           "EDGENODE_DISCOVERY_POLL_SECONDS": "0.5", "EDGENODE_DISCOVERY_PATH": "/portal/"}
    node_id = discovery.txt(make_config(data))["node_id"]  # made once, read by the advertiser below
    adv = pair.popen_in(pair.ns_a, [EDGENODE, "--data-dir", str(data), "advertise"], env=env)

    def ours(row):
        return avahi_unescape(row[3]) == NAME and row[2] == "IPv4"

    rows = wait_browse(pair, ours)
    assert rows, f"avahi-browse never saw the node; advertiser said: {adv.poll()}"
    row = rows[0]
    # =;iface;proto;name;type;domain;host;address;port;txt
    assert row[4] in ("_http._tcp", "Web Site") and row[6] == "edgenode.local"  # avahi names the type
    assert row[7] == pair.addr_a and row[8] == "8123"
    assert parse_txt(row[9]) == {"app": "edgenode", "node_id": node_id, "version": __import__("edgenode").__version__,
                                 "path": "/portal/", "township": ""}

    # DHCP gave the node a new address: the new one is advertised, the old one is gone.
    old = pair.addr_a
    pair.set_address_a(old.rsplit(".", 1)[0] + ".77")
    rows = wait_browse(pair, lambda r: ours(r) and r[7] == pair.addr_a)
    assert rows, "the new address was never advertised"
    time.sleep(1.5)  # cache-flush: avahi drops the old record one second after the new one arrives
    assert {r[7] for r in pair.browse() if ours(r)} == {pair.addr_a}
    resolved = pair.run_in(pair.ns_b, ["avahi-resolve", "-4", "-n", "edgenode.local"]).stdout.split()
    assert resolved == ["edgenode.local", pair.addr_a]

    # `edgenode discover` from the other namespace lists it too.
    found = pair.run_in(pair.ns_b, [EDGENODE, "--data-dir", str(tmp_path / "other"), "discover", "--json",
                                    "--timeout", "2"], env=env)
    assert found.returncode == 0, found.stderr
    nodes = json.loads(found.stdout)
    assert [(n["name"], n["node_id"], n["port"], n["addresses"]) for n in nodes] == \
        [(NAME, node_id, 8123, [pair.addr_a])]

    # SIGTERM: goodbye packets, so the service disappears at once instead of after its TTL.
    adv.terminate()
    _, err = adv.communicate(timeout=15)
    assert adv.returncode == 0, err
    assert "addresses changed" in err and "unregistered" in err
    time.sleep(1.5)
    assert not [r for r in pair.browse() if ours(r)]


def test_instance_name_fits_one_dns_label_without_cutting_characters(cfg):
    long_name = "某某省某某市某某县某某乡镇某某村文化服务点综合文化站"  # 26 characters, 78 bytes
    name = discovery.instance_name(cfg.replace(node__name=long_name))
    assert len(name.encode("utf-8")) <= 63 and long_name.startswith(name) and len(name) == 21
    assert discovery.instance_name(cfg.replace(node__name="a.b")) == "a·b"  # a dot would split the label
    assert discovery.instance_name(cfg.replace(node__name="")) == "edgenode"


def test_service_info_carries_name_port_and_txt(cfg):
    c = cfg.replace(node__name=NAME, discovery__port=80, discovery__hostname="wenhua")
    info = discovery.build_info(c, ["192.0.2.10"])
    assert info.name == f"{NAME}._http._tcp.local." and info.port == 80 and info.server == "wenhua.local."
    props = info.decoded_properties
    assert props["app"] == "edgenode" and props["path"] == "/" and len(props["node_id"]) == 32
    assert info.parsed_addresses() == ["192.0.2.10"]


def test_avahi_status_says_what_it_does():
    status = discovery.avahi_status()
    assert set(status) == {"avahi_running", "port_5353_in_use", "note"}
    assert status["note"]


def test_disabled_discovery_does_not_advertise(runner, cfg, tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text("[discovery]\nenabled = false\n")
    r = runner("--config", str(conf), "advertise")
    assert r.exit_code == 0 and "not advertising" in r.output


@pytest.mark.root
def test_coexists_with_avahi_daemon_on_the_same_host(pair, tmp_path):
    # avahi-daemon already answers in the node's namespace (its own bus, as on a real host).
    pair.start_avahi(pair.ns_a, bus=pair.new_bus("system_bus_a"))
    env = {**pair.env(), "EDGENODE_CONFIG": "", "EDGENODE_NODE_NAME": NAME, "EDGENODE_WEB_PORT": "8124"}
    adv = pair.popen_in(pair.ns_a, [EDGENODE, "--data-dir", str(tmp_path / "node"), "advertise"], env=env)
    rows = wait_browse(pair, lambda r: avahi_unescape(r[3]) == NAME and r[2] == "IPv4")
    assert rows and rows[0][7] == pair.addr_a and rows[0][8] == "8124"
    adv.terminate()
    _, err = adv.communicate(timeout=15)
    # It noticed the other responder on 5353 and said it shares the port.
    assert "sharing" in err and "5353" in err, err


def test_namespaces_and_daemons_are_removed_even_when_the_test_fails(tmp_path):
    reason = can_use_netns()
    if reason:
        pytest.skip(reason)
    import subprocess
    with pytest.raises(RuntimeError, match="boom"):
        with mdns_pair(tmp_path) as p:
            names, procs = (p.ns_a, p.ns_b), list(p.procs)
            raise RuntimeError("boom")
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(n in listed for n in names)
    assert all(proc.poll() is not None for proc in procs)
