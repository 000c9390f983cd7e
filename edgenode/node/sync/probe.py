"""Is there a link to the hub right now?  And how long to wait after it failed.

Before a job touches the uplink it checks for a route to the hub (a default
route, or a more specific one for a hub on the LAN, read from /proc/net/route)
and whether the hub answers a TCP connect on its port.  With no link the job is
*skipped* and logged; the back-off doubles per failure up to
``sync.backoff_max_seconds`` and the failure counter is capped, so nothing grows.
"""

from __future__ import annotations

import ipaddress
import socket
import sqlite3
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from edgenode.core.db import transaction
from edgenode.node.sync import probe_queries as q

ROUTE_TABLE = Path("/proc/net/route")
RTF_UP = 0x1
MAX_FAILURES = 32  # 2**32 times any initial delay is far past any cap


@dataclass
class Probe:
    ok: bool
    reason: str  # "ok", "no_route", "no_dns", "refused", "timeout"
    detail: str = ""


def routes(table: Path = ROUTE_TABLE) -> list[tuple[ipaddress.IPv4Network, str]]:
    """IPv4 routes that are up: ``(network, interface)``."""
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return []
    out = []
    for line in lines:
        f = line.split()
        if len(f) < 8 or not int(f[3], 16) & RTF_UP:
            continue
        dest = socket.inet_ntoa(struct.pack("<I", int(f[1], 16)))
        mask = socket.inet_ntoa(struct.pack("<I", int(f[7], 16)))
        out.append((ipaddress.IPv4Network(f"{dest}/{mask}", strict=False), f[0]))
    return out


def has_default_route(table: Path = ROUTE_TABLE) -> bool:
    return any(net.prefixlen == 0 for net, _ in routes(table))


def route_to(addr: str, table: Path = ROUTE_TABLE) -> bool:
    ip = ipaddress.ip_address(addr)
    if ip.is_loopback:
        return True
    if ip.version == 6:  # /proc/net/ipv6_route is rarely needed on these links; let connect() decide
        return True
    return any(ip in net for net, _ in routes(table))


def target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80, "rsync": 873}.get(parts.scheme, 80)
    return parts.hostname or "", port


def probe(url: str, *, timeout: float = 5.0, table: Path = ROUTE_TABLE) -> Probe:
    host, port = target(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        reason = "no_route" if not routes(table) else "no_dns"
        return Probe(False, reason, f"{host}: {e.strerror}")
    addr = infos[0][4][0]
    if not route_to(addr, table):
        return Probe(False, "no_route", f"no route to {addr} (no default route)")
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return Probe(True, "ok", f"{addr}:{port}")
    except socket.timeout:
        return Probe(False, "timeout", f"{addr}:{port} did not answer in {timeout:g} s")
    except OSError as e:
        return Probe(False, "refused", f"{addr}:{port}: {e.strerror or e}")


# -- back-off ------------------------------------------------------------------------------------

def delay(failures: int, initial: float, cap: float) -> float:
    if failures <= 0:
        return 0.0
    return min(cap, initial * 2 ** min(failures - 1, MAX_FAILURES))


def waiting(conn: sqlite3.Connection, name: str, now: float | None = None) -> float:
    """Seconds left before ``name`` may be tried again (0: go)."""
    next_try_at = q.next_try_at(conn, name)
    now = time.time() if now is None else now
    return max(0.0, next_try_at - now) if next_try_at is not None else 0.0


def failed(cfg, conn: sqlite3.Connection, name: str, error: str, now: float | None = None) -> float:
    """Record a failure; returns the delay until the next try."""
    now = time.time() if now is None else now
    with transaction(conn):
        failures = min(q.failures(conn, name) + 1, MAX_FAILURES)
        wait = delay(failures, cfg["sync.backoff_initial_seconds"], cfg["sync.backoff_max_seconds"])
        q.record_failure(conn, name, failures, now + wait, error[:500])
    return wait


def succeeded(conn: sqlite3.Connection, name: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    with transaction(conn):
        q.record_success(conn, name, now)


def link_state(conn: sqlite3.Connection) -> list[dict]:
    return q.link_rows(conn)
