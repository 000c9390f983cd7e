"""Test helpers for the health area: a network-namespace pair with a private avahi.

``mdns_pair()`` builds two namespaces joined by a veth pair (multicast on), a
private D-Bus system bus for this test only, and an avahi-daemon inside the
second namespace; everything is torn down on exit, even when the test fails.

Isolation from parallel tests: namespace and link names carry a random
suffix; the bus is a private ``dbus-daemon`` on a socket in the test's temp
dir (``DBUS_SYSTEM_BUS_ADDRESS`` points avahi and avahi-browse at it); avahi's
pid file directory gets a tmpfs in the avahi process's own mount namespace
(``ip netns exec`` already gives each command one), so two tests' daemons
never see each other's ``/run/avahi-daemon/pid``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def can_use_netns() -> str | None:
    """None when namespaces can be used here, else the reason to skip."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "avahi-daemon", "avahi-browse", "dbus-daemon"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    return None


def _run(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=30, **kw)


@dataclass
class Pair:
    ns_a: str
    ns_b: str
    dev_a: str
    dev_b: str
    addr_a: str
    addr_b: str
    bus: str  # value for DBUS_SYSTEM_BUS_ADDRESS
    work: Path = Path("/nonexistent")
    procs: list = field(default_factory=list)

    def env(self) -> dict:
        return {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.bus}

    def popen_in(self, ns: str, args: list[str], **kw) -> subprocess.Popen:
        """Start a process inside a namespace; it is killed at teardown."""
        p = subprocess.Popen(["ip", "netns", "exec", ns, *args], env=kw.pop("env", self.env()),
                             stdout=kw.pop("stdout", subprocess.PIPE), stderr=kw.pop("stderr", subprocess.PIPE),
                             text=True, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def run_in(self, ns: str, args: list[str], timeout: float = 30, env: dict | None = None):
        return subprocess.run(["ip", "netns", "exec", ns, *args], env=env or self.env(), capture_output=True,
                              text=True, timeout=timeout)

    def browse(self, service: str = "_http._tcp", timeout: float = 20) -> list[list[str]]:
        """``avahi-browse -rtp`` in namespace B; the resolved ('=') lines, split on ';'."""
        out = self.run_in(self.ns_b, ["avahi-browse", "-rtp", service], timeout=timeout).stdout
        return [line.split(";") for line in out.splitlines() if line.startswith("=")]

    def new_bus(self, name: str) -> str:
        """Start a private system bus; returns its DBUS_SYSTEM_BUS_ADDRESS."""
        sock = self.work / f"{name}.sock"
        address = f"unix:path={sock}"
        proc = subprocess.Popen(["dbus-daemon", "--config-file=/usr/share/dbus-1/system.conf", "--nofork",
                                 "--nopidfile", f"--address={address}"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.procs.insert(0, proc)  # stopped last, after the daemons using it
        _wait_for(lambda: sock.exists() or proc.poll() is not None, 10, "the private D-Bus")
        if proc.poll() is not None:
            raise RuntimeError(f"dbus-daemon failed: {proc.stderr.read()}")
        return address

    def start_avahi(self, ns: str, bus: str | None = None) -> subprocess.Popen:
        """A real avahi-daemon in ``ns`` (on ``bus``, default the pair's); returns once it answers."""
        env = {**self.env(), "DBUS_SYSTEM_BUS_ADDRESS": bus or self.bus}
        avahi = self.popen_in(ns, [
            "sh", "-c", "mkdir -p /run/avahi-daemon && mount -t tmpfs tmpfs /run/avahi-daemon && "
                        "exec avahi-daemon --no-drop-root --no-chroot --no-rlimits -f /etc/avahi/avahi-daemon.conf"],
            env=env)
        _wait_for(lambda: avahi.poll() is not None or self.run_in(
            ns, ["avahi-browse", "-atp", "-k"], timeout=10, env=env).returncode == 0, 15, "avahi-daemon")
        if avahi.poll() is not None:
            raise RuntimeError(f"avahi-daemon failed: {avahi.stderr.read()}")
        return avahi

    def set_address_a(self, new: str) -> None:
        _run("ip", "-n", self.ns_a, "addr", "del", f"{self.addr_a}/24", "dev", self.dev_a)
        _run("ip", "-n", self.ns_a, "addr", "add", f"{new}/24", "dev", self.dev_a)
        self.addr_a = new


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


@contextmanager
def mdns_pair(tmp_path: Path):
    """Yield a :class:`Pair`; namespaces, avahi and the bus are gone afterwards."""
    tag = secrets.token_hex(3)
    octet = 10 + secrets.randbelow(200)
    pair = Pair(ns_a=f"edgenode-a-{tag}", ns_b=f"edgenode-b-{tag}", dev_a=f"ena{tag}", dev_b=f"enb{tag}",
                addr_a=f"10.{octet}.0.1", addr_b=f"10.{octet}.0.2", bus="")
    # Unix socket paths are limited to 108 bytes: keep the buses out of pytest's long tmp paths.
    pair.work = Path(tempfile.mkdtemp(prefix=f"enbus-{tag}-"))
    made = []
    try:
        for ns in (pair.ns_a, pair.ns_b):
            _run("ip", "netns", "add", ns)
            made.append(ns)
        _run("ip", "link", "add", pair.dev_a, "type", "veth", "peer", "name", pair.dev_b)
        _run("ip", "link", "set", pair.dev_a, "netns", pair.ns_a)
        _run("ip", "link", "set", pair.dev_b, "netns", pair.ns_b)
        for ns, dev, addr in ((pair.ns_a, pair.dev_a, pair.addr_a), (pair.ns_b, pair.dev_b, pair.addr_b)):
            _run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up", "multicast", "on")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        pair.bus = pair.new_bus("system_bus_b")
        pair.start_avahi(pair.ns_b)
        yield pair
    finally:
        for p in reversed(pair.procs):
            _stop(p)
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        shutil.rmtree(pair.work, ignore_errors=True)
