"""LAN discovery over mDNS with python-zeroconf.

The node advertises one ``_http._tcp`` service named after the point (e.g.
某某村文化服务点) with a TXT record ``app=edgenode``, ``node_id``, ``version``,
``path``, and a fixed host name (``edgenode.local`` by default) whose A records
are the node's LAN addresses, so a phone can open http://edgenode.local/.

Addresses change (DHCP renewals, Wi-Fi reconnects), and python-zeroconf binds
its sockets once, so the advertiser polls the interface addresses every
``discovery.poll_seconds``; on a change it rebinds (``update_interfaces``) and
re-announces the service with the new A records (cache-flush set, so listeners
drop the old address), falling back to a fresh Zeroconf instance if that
fails.  Stopping sends goodbye packets (TTL 0) so the service disappears from
browsers at once.

avahi-daemon: when it runs, both it and we bind UDP 5353 (python-zeroconf sets
SO_REUSEADDR/SO_REUSEPORT) and each answers for its own records: avahi for the
machine's host name, we for the service and ``discovery.hostname``.  We detect
it and say so at start; see docs/discovery.md.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from pathlib import Path

from edgenode import __version__
from edgenode.node.health import probes

log = logging.getLogger(__name__)

SERVICE_TYPE = "_http._tcp.local."
APP_MARKER = "edgenode"
MAX_LABEL = 63  # bytes in one DNS label: the instance name must fit
AVAHI_SOCKET = Path("/run/avahi-daemon/socket")
MDNS_PORT_HEX = f"{5353:04X}"


def instance_name(cfg) -> str:
    name = (cfg.node.name or "edgenode").replace(".", "·").strip() or "edgenode"
    raw = name.encode("utf-8")[:MAX_LABEL]
    return raw.decode("utf-8", errors="ignore")  # never cut a character in half


def host_name(cfg) -> str:
    return f"{cfg.discovery.hostname}.local."


def advertised_port(cfg) -> int:
    return cfg.discovery.port or cfg.web.port


def txt(cfg) -> dict[str, str]:
    from edgenode.node.health.snapshot import node_info
    return {"app": APP_MARKER, "node_id": node_info(cfg)["id"], "version": __version__,
            "path": cfg.discovery.path, "township": cfg.node.township}


def build_info(cfg, addresses: list[str], name: str | None = None):
    from zeroconf import ServiceInfo

    return ServiceInfo(SERVICE_TYPE, name or f"{instance_name(cfg)}.{SERVICE_TYPE}", port=advertised_port(cfg),
                       properties=txt(cfg), server=host_name(cfg), parsed_addresses=addresses)


def _udp_5353_bound() -> bool:
    """Is something already bound to UDP 5353 in this network namespace?"""
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(line.split()[1].endswith(":" + MDNS_PORT_HEX) for line in lines if len(line.split()) > 1):
            return True
    return False


def avahi_status() -> dict:
    """Whether avahi-daemon answers here, and what we do about it."""
    running = False
    if AVAHI_SOCKET.exists():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect(str(AVAHI_SOCKET))
            running = True
        except OSError:
            running = False
        finally:
            s.close()
    port_busy = _udp_5353_bound()
    if running:
        note = ("avahi-daemon is running: sharing UDP 5353 with it (SO_REUSEPORT); avahi keeps answering for "
                "this machine's host name, edgenode answers for its service and its fixed host name")
    elif port_busy:
        note = "another mDNS responder holds UDP 5353: sharing the port (SO_REUSEPORT)"
    else:
        note = "no other mDNS responder: python-zeroconf answers alone"
    return {"avahi_running": running, "port_5353_in_use": port_busy, "note": note}


def current_addresses(cfg) -> list[str]:
    return probes.lan_ipv4(cfg.discovery.interfaces or None)


class Advertiser:
    """One registered service that follows the node's addresses."""

    def __init__(self, cfg, say=log.info):
        self.cfg = cfg
        self.say = say
        self.zc = None
        self.info = None
        self.addresses: list[str] = []

    def start(self) -> None:
        self.addresses = current_addresses(self.cfg)
        if self.addresses:
            self._register_fresh()
        else:
            self.say("no LAN address yet; will advertise when one appears")

    def _register_fresh(self) -> None:
        from zeroconf import IPVersion, Zeroconf

        self._close()
        self.zc = Zeroconf(interfaces=list(self.addresses), ip_version=IPVersion.V4Only)
        info = build_info(self.cfg, self.addresses, self.info.name if self.info else None)
        self.zc.register_service(info, allow_name_change=True)
        self.info = info
        self.say(f"advertising {self.describe()}")

    def describe(self) -> str:
        if not self.info:
            return "nothing"
        return (f"{self.info.name!r} at http://{self.info.server.rstrip('.')}:{self.info.port}{self.cfg.discovery.path}"
                f" on {', '.join(self.addresses)}")

    def poll(self) -> bool:
        """Re-advertise if the addresses changed; True when something changed."""
        new = current_addresses(self.cfg)
        if new == self.addresses:
            return False
        old, self.addresses = self.addresses, new
        self.say(f"addresses changed: {', '.join(old) or 'none'} -> {', '.join(new) or 'none'}")
        if not new:
            self._close()
            return True
        if self.zc is None or self.info is None:
            self._register_fresh()
            return True
        try:
            self.zc.update_interfaces(interfaces=list(new))
            info = build_info(self.cfg, new, self.info.name)
            self.zc.update_service(info)
            self.info = info
            self.say(f"re-announced {self.describe()}")
        except Exception as e:  # an interface that vanished mid-update: start over cleanly
            self.say(f"update failed ({type(e).__name__}: {e}); registering again")
            self._register_fresh()
        return True

    def _close(self) -> None:
        if self.zc is None:
            return
        try:
            if self.info is not None:
                self.zc.unregister_service(self.info)
        except Exception as e:
            log.debug("unregister failed: %s", e)
        finally:
            self.zc.close()
            self.zc = None

    def stop(self) -> None:
        had = self.info is not None and self.zc is not None
        self._close()
        if had:
            self.say("unregistered (goodbye sent)")


def run_advertiser(cfg, *, once: bool = False, say=log.info, stop: threading.Event | None = None) -> None:
    """Advertise until SIGTERM/SIGINT (or ``stop``), following address changes."""
    if not cfg.discovery.enabled:
        say("discovery.enabled is false: not advertising")
        return
    status = avahi_status()
    say(status["note"])
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    adv = Advertiser(cfg, say)
    try:
        adv.start()
        if once:
            return
        while not stop.wait(cfg.discovery.poll_seconds):
            adv.poll()
    finally:
        adv.stop()


# --- finding other nodes ------------------------------------------------------------

def discover(*, timeout: float = 3.0, only_edgenode: bool = True, interfaces=None) -> list[dict]:
    """Browse ``_http._tcp`` for ``timeout`` seconds and resolve what answered."""
    from zeroconf import InterfaceChoice, IPVersion, ServiceBrowser, Zeroconf

    names: set[str] = set()
    lock = threading.Lock()

    def on_change(zeroconf, service_type, name, state_change):
        with lock:
            names.add(name)

    zc = Zeroconf(interfaces=interfaces or InterfaceChoice.All, ip_version=IPVersion.V4Only)
    try:
        browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[on_change])
        time.sleep(timeout)
        browser.cancel()
        found = []
        for name in sorted(names):
            info = zc.get_service_info(SERVICE_TYPE, name, timeout=1500)
            if info is None:
                continue
            props = info.decoded_properties
            if only_edgenode and props.get("app") != APP_MARKER:
                continue
            found.append({
                "name": name[: -len(SERVICE_TYPE) - 1] if name.endswith("." + SERVICE_TYPE) else name,
                "server": info.server or "", "port": info.port or 0,
                "addresses": sorted(info.parsed_addresses(IPVersion.V4Only)),
                "node_id": props.get("node_id"), "version": props.get("version"), "path": props.get("path") or "/",
                "township": props.get("township") or "",
            })
        return found
    finally:
        zc.close()
