"""Hosts as network namespaces on one switch (a bridge in its own namespace), links shaped with tc tbf.

Names carry the test's prefix (``i17`` + pid + a counter), so parallel tests and other worktrees never
meet; :meth:`Net.close` kills what was started inside and deletes every namespace, veth and all.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
from pathlib import Path

_seq = itertools.count()


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and p.returncode:
        raise RuntimeError(f"{' '.join(args)}: {p.stderr.strip()}")
    return p


class Net:
    """A switch namespace with a bridge; :meth:`host` adds a namespace joined to it by a veth pair."""

    def __init__(self):
        n = next(_seq)
        self.prefix = f"i17{os.getpid()}{n}"
        self.dev_prefix = f"i17{os.getpid() % 100000}{n}"  # veth names: at most 15 characters
        self.switch = f"{self.prefix}sw"
        self.hosts: dict[str, dict] = {}
        self.procs: list[subprocess.Popen] = []
        sh("ip", "netns", "add", self.switch)
        sh("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.switch, "link", "set", "br0", "up")

    def host(self, name: str, octet: int, *, rate_mbit: float | None = None) -> str:
        """A namespace ``name`` at 10.217.0.``octet``; ``rate_mbit`` shapes its link both ways (tbf)."""
        ns = f"{self.prefix}{name}"
        a, b = f"{self.dev_prefix}{name}a", f"{self.dev_prefix}{name}b"
        assert len(a) <= 15, a
        sh("ip", "netns", "add", ns)
        self.hosts[name] = {"ns": ns, "dev": a, "peer": b, "ip": f"10.217.0.{octet}"}
        sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        sh("ip", "link", "set", a, "netns", ns)
        sh("ip", "link", "set", b, "netns", self.switch)
        sh("ip", "-n", self.switch, "link", "set", b, "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"10.217.0.{octet}/24", "dev", a)
        sh("ip", "-n", ns, "link", "set", a, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        if rate_mbit:
            burst = f"{max(32, int(rate_mbit * 4))}kb"
            for where, dev in ((ns, a), (self.switch, b)):  # the host's uplink and its downlink
                sh("ip", "netns", "exec", where, "tc", "qdisc", "add", "dev", dev, "root", "tbf",
                   "rate", f"{rate_mbit}mbit", "burst", burst, "latency", "200ms")
        return ns

    def ip(self, name: str) -> str:
        return self.hosts[name]["ip"]

    def tx_bytes(self, name: str) -> int:
        """Bytes the host has sent on its link, from the kernel's interface counters."""
        h = self.hosts[name]
        out = sh("ip", "netns", "exec", h["ns"], "cat", f"/sys/class/net/{h['dev']}/statistics/tx_bytes")
        return int(out.stdout.strip())

    def popen(self, name: str, cmd: list[str], **kw) -> subprocess.Popen:
        p = subprocess.Popen(["ip", "netns", "exec", self.hosts[name]["ns"], *cmd], start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def run(self, name: str, cmd: list[str], *, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.hosts[name]["ns"], *cmd], capture_output=True,
                              text=True, timeout=timeout, **kw)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(10)
        for h in self.hosts.values():
            sh("ip", "netns", "del", h["ns"], check=False)  # takes its end of the veth (and the pair) along
        sh("ip", "netns", "del", self.switch, check=False)


def wait_tcp(net: Net, name: str, ip: str, port: int, timeout: float = 20.0) -> None:
    """Wait until something listens on ip:port, seen from inside ``name``."""
    import time
    end = time.monotonic() + timeout
    probe = f"import socket; socket.create_connection(('{ip}', {port}), timeout=1).close()"
    import sys
    while time.monotonic() < end:
        if net.run(name, [sys.executable, "-c", probe], timeout=10).returncode == 0:
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {ip}:{port} from {name}")


def rsyncd_conf(root: Path, workdir: Path, module: str = "edgenode") -> Path:
    """The county's plain rsyncd.conf (as tests/helpers_sync.Rsyncd writes it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "rsyncd.conf"
    conf.write_text(f"pid file = {workdir}/rsyncd.pid\nuse chroot = no\nread only = yes\n"
                    f"log file = {workdir}/rsyncd.log\n[{module}]\n    path = {root}\n    uid = root\n    gid = root\n")
    return conf
