"""provisioning/os-updates.sh: security updates through the hub's proxy, within the update hours.

The files are written under a scratch ROOT and read back by apt's own parser (``apt-config``)
and systemd's (``systemd-analyze calendar``); installing the packages needs a link and is left
to a real node.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "provisioning" / "os-updates.sh"


def run(root: Path, *args):
    return subprocess.run(["bash", str(SCRIPT), *args], env={**os.environ, "ROOT": str(root)}, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.skipif(not shutil.which("apt-config"), reason="needs apt")
def test_node_gets_the_proxy_security_only_upgrades_and_timers_in_the_window(tmp_path):
    r = run(tmp_path, "node", "--proxy", "http://hub.example:3142", "--hours", "01:00-05:00", "--no-install")
    assert r.returncode == 0, r.stderr
    conf = tmp_path / "etc/apt/apt.conf.d"
    dump = subprocess.run(["apt-config", "-c", str(conf / "01edgenode-proxy"), "-c", str(conf / "52edgenode-unattended"),
                           "-c", str(conf / "20auto-upgrades"), "dump"], capture_output=True, text=True, check=True).stdout
    assert 'Acquire::http::Proxy "http://hub.example:3142";' in dump
    assert re.search(r'Unattended-Upgrade::Origins-Pattern:: ".*-security', dump)
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in dump and 'APT::Periodic::Unattended-Upgrade "1";' in dump
    timer = (tmp_path / "etc/systemd/system/apt-daily-upgrade.timer.d/edgenode.conf").read_text()
    assert "OnCalendar=*-*-* 01:00:00" in timer and "RandomizedDelaySec=230min" in timer
    if shutil.which("systemd-analyze"):
        subprocess.run(["systemd-analyze", "calendar", "*-*-* 01:00:00"], check=True, capture_output=True)
    again = run(tmp_path, "node", "--proxy", "http://hub.example:3142", "--hours", "01:00-05:00", "--no-install")
    assert again.returncode == 0 and (conf / "01edgenode-proxy").read_text().count("Proxy") == 1


@pytest.mark.parametrize("args", [
    ["node", "--no-install"],                                            # no proxy
    ["node", "--proxy", "ftp://hub:3142", "--no-install"],
    ["node", "--proxy", "http://hub:3142; rm -rf /", "--no-install"],
    ["node", "--proxy", "http://hub:3142", "--hours", "25:00-03:00", "--no-install"],
    ["node", "--proxy", "http://hub:3142", "--hours", "01:00-01:05", "--no-install"],
    ["bogus"],
])
def test_bad_arguments_are_refused_and_write_nothing(tmp_path, args):
    r = run(tmp_path, *args)
    assert r.returncode != 0 and "edgenode: error:" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_hub_writes_the_cache_settings(tmp_path):
    r = run(tmp_path, "hub", "--no-install")
    assert r.returncode == 0, r.stderr
    assert "Port: 3142" in (tmp_path / "etc/apt-cacher-ng/zz-edgenode.conf").read_text()
