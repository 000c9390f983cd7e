"""Operating-system reads for the health snapshot: system, network and clock.

Everything here must stay cheap (the snapshot targets < 50 ms and is called by
every heartbeat and scrape), so nothing blocks: CPU % is computed against the
previous sample instead of sleeping, and the NTP state comes from the
``adjtimex`` system call (what ``timedatectl`` itself reads) rather than from a
subprocess; ``timedatectl show`` is consulted at most once a minute for the
extra facts only systemd knows.

netifaces is archived, so interfaces come from psutil and the default gateway
from ``/proc/net/route`` (``ip -j route show default`` as the fallback).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import psutil

_lock = threading.Lock()
_cpu_prev: tuple[float, object] | None = None
_timedatectl_cache: tuple[float, dict | None] | None = None
TIMEDATECTL_TTL = 60.0
PROC_NET_ROUTE = Path("/proc/net/route")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
# systemd-timesyncd touches this once the clock is synchronised; readable even
# inside a sandbox where ProtectClock= forbids adjtimex().
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")


# --- system -----------------------------------------------------------------

def _cpu_percent() -> tuple[float, float]:
    """CPU busy % since the previous call in this process (since boot on the first)."""
    global _cpu_prev
    now, times = time.monotonic(), psutil.cpu_times()
    with _lock:
        prev = _cpu_prev
        _cpu_prev = (now, times)
    if prev is None:
        window = time.time() - psutil.boot_time()
        base = None
    else:
        window, base = now - prev[0], prev[1]

    def busy_total(t):
        total = sum(t)
        idle = t.idle + getattr(t, "iowait", 0.0)
        return total - idle, total

    b1, t1 = busy_total(times)
    if base is not None:
        b0, t0 = busy_total(base)
        b1, t1 = b1 - b0, t1 - t0
    percent = 100.0 * b1 / t1 if t1 > 0 else 0.0
    return round(min(max(percent, 0.0), 100.0), 1), round(window, 1)


def _mountpoint(path: Path) -> str:
    p = path.resolve()
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return str(p)


def _temperatures() -> list[dict]:
    read = getattr(psutil, "sensors_temperatures", None)
    if read is None:
        return []
    out = []
    for sensor, entries in (read() or {}).items():
        for e in entries:
            out.append({"sensor": sensor, "label": e.label or sensor, "current_c": e.current,
                        "high_c": e.high, "critical_c": e.critical})
    return out


def system(data_dir: Path) -> dict:
    load = os.getloadavg()
    percent, window = _cpu_percent()
    vm, sw = psutil.virtual_memory(), psutil.swap_memory()
    existing = data_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    du = shutil.disk_usage(existing)
    boot = psutil.boot_time()
    proc = psutil.Process()
    return {
        "cpu": {"count": psutil.cpu_count() or 1, "load_1m": round(load[0], 2), "load_5m": round(load[1], 2),
                "load_15m": round(load[2], 2), "percent": percent, "percent_window_s": window},
        "memory": {"total_bytes": vm.total, "available_bytes": vm.available, "used_bytes": vm.used,
                   "percent": vm.percent},
        "swap": {"total_bytes": sw.total, "used_bytes": sw.used, "free_bytes": sw.free, "percent": sw.percent},
        "disk": {"path": str(data_dir), "mountpoint": _mountpoint(existing), "total_bytes": du.total,
                 "used_bytes": du.used, "free_bytes": du.free,
                 "percent": round(100.0 * du.used / du.total, 1) if du.total else 0.0},
        "uptime_s": round(time.time() - boot, 1),
        "boot_time": boot,
        "temperatures": _temperatures(),
        "process": {"pid": proc.pid, "rss_bytes": proc.memory_info().rss},
    }


# --- network ----------------------------------------------------------------

_FAMILIES = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6", psutil.AF_LINK: "mac"}


def interfaces() -> list[dict]:
    addrs, stats = psutil.net_if_addrs(), psutil.net_if_stats()
    out = []
    for name in sorted(set(addrs) | set(stats)):
        st = stats.get(name)
        out.append({
            "name": name,
            "up": bool(st.isup) if st else False,
            "speed_mbps": st.speed if st else 0,
            "mtu": st.mtu if st else 0,
            "duplex": {psutil.NIC_DUPLEX_FULL: "full", psutil.NIC_DUPLEX_HALF: "half"}.get(
                st.duplex, "unknown") if st else "unknown",
            "loopback": name == "lo" or any(a.address in ("127.0.0.1", "::1") for a in addrs.get(name, [])),
            "addresses": [{"family": _FAMILIES[a.family], "address": a.address.split("%")[0],
                           "netmask": a.netmask} for a in addrs.get(name, []) if a.family in _FAMILIES],
        })
    return out


def default_gateway(route_file: Path = PROC_NET_ROUTE) -> tuple[dict | None, str]:
    """The IPv4 default route with the lowest metric, and where it was read from."""
    try:
        lines = route_file.read_text().splitlines()[1:]
    except OSError:
        return _gateway_from_ip(), "ip -j route"
    best = None
    for line in lines:
        f = line.split()
        if len(f) < 8 or f[1] != "00000000" or f[7] != "00000000":
            continue
        flags = int(f[3], 16)
        if not (flags & 0x1 and flags & 0x2):  # RTF_UP and RTF_GATEWAY
            continue
        metric = int(f[6])
        if best is None or metric < best[0]:
            gw = socket.inet_ntoa(struct.pack("<L", int(f[2], 16)))
            best = (metric, {"address": gw, "interface": f[0], "metric": metric})
    return (best[1] if best else None), str(route_file)


def _gateway_from_ip() -> dict | None:
    try:
        out = subprocess.run(["ip", "-j", "route", "show", "default"], capture_output=True, text=True,
                             timeout=5).stdout
        routes = [r for r in json.loads(out or "[]") if r.get("gateway")]
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    if not routes:
        return None
    r = min(routes, key=lambda r: r.get("metric", 0))
    return {"address": r["gateway"], "interface": r.get("dev", ""), "metric": r.get("metric", 0)}


def network() -> dict:
    gateway, source = default_gateway()
    return {"interfaces": interfaces(), "gateway": gateway, "gateway_source": source}


def lan_ipv4(names: list[str] | None = None) -> list[str]:
    """IPv4 addresses of interfaces that are up and not loopback (optionally only ``names``)."""
    out = []
    for itf in interfaces():
        if not itf["up"] or itf["loopback"] or (names and itf["name"] not in names):
            continue
        out += [a["address"] for a in itf["addresses"] if a["family"] == "ipv4"]
    return sorted(out)


# --- clock ------------------------------------------------------------------

class _Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
                ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
                ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
                ("_reserved", ctypes.c_int * 11)]


STA_UNSYNC = 0x0040
TIME_ERROR = 5


def kernel_ntp() -> dict | None:
    """The kernel's NTP discipline state; read-only (modes=0) needs no privilege."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    synced = not (tx.status & STA_UNSYNC) and state != TIME_ERROR
    return {"synchronized": synced, "max_error_us": tx.maxerror, "est_error_us": tx.esterror}


def timedatectl() -> dict | None:
    """``timedatectl show`` as a dict, or None without systemd; cached for a minute."""
    global _timedatectl_cache
    now = time.monotonic()
    cached = _timedatectl_cache
    if cached and now - cached[0] < TIMEDATECTL_TTL:
        return cached[1]
    result = None
    if shutil.which("timedatectl"):
        try:
            p = subprocess.run(["timedatectl", "show"], capture_output=True, text=True, timeout=3)
            if p.returncode == 0:
                result = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
        except (OSError, subprocess.TimeoutExpired):
            result = None
    _timedatectl_cache = (now, result)
    return result


def boot_record(data_dir: Path, now: float | None = None) -> dict:
    """Count boots (once per kernel boot_id) and remember the newest wall time seen.

    The file lives in the data directory so the count survives reboots; a lock
    keeps concurrent processes from counting one boot twice.  The wall time
    seen is rewritten at most once a minute and lets a clock that went
    backwards (no RTC battery) be noticed.
    """
    now = time.time() if now is None else now
    try:
        boot_id = BOOT_ID.read_text().strip()
    except OSError:
        boot_id = f"boot-{int(psutil.boot_time())}"
    path = data_dir / "health" / "boots.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            rec = json.loads(path.read_text())
            if not isinstance(rec, dict) or not isinstance(rec.get("count"), int):
                raise ValueError("bad record")
        except (OSError, ValueError):
            rec = {"boot_id": None, "count": 0, "last_wall": 0.0}
        before = dict(rec)
        if rec["boot_id"] != boot_id:
            rec.update(boot_id=boot_id, count=rec["count"] + 1)
        newest_seen = float(rec.get("last_wall") or 0.0)
        if now > newest_seen + 60 or rec != before:
            rec["last_wall"] = max(now, newest_seen)
        if rec != before:
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w") as f:
                json.dump(rec, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    return {"boot_id": boot_id, "boot_count": rec["count"], "newest_wall_seen": newest_seen or None}


def clock(data_dir: Path) -> dict:
    now = time.time()
    rec = boot_record(data_dir, now)
    kernel = kernel_ntp()
    tdc = timedatectl()
    if tdc is not None and "NTPSynchronized" in tdc:
        synced, source = tdc["NTPSynchronized"] == "yes", "timedatectl"
    elif TIMESYNC_FLAG.exists():
        synced, source = True, "timesyncd"
    elif kernel is not None:
        synced, source = kernel["synchronized"], "adjtimex"
    else:
        synced, source = None, "unknown"
    return {
        "wall_time": now,
        "wall_time_iso": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now)),
        "timezone": (tdc or {}).get("Timezone") or time.strftime("%Z"),
        "monotonic_s": round(time.monotonic(), 3),
        "boot_id": rec["boot_id"],
        "boot_count": rec["boot_count"],
        "ntp_synchronized": synced,
        "ntp_source": source,
        "ntp_service": (tdc or {}).get("NTP"),
        "max_error_us": kernel["max_error_us"] if kernel else None,
        "newest_wall_seen": rec["newest_wall_seen"],
    }
