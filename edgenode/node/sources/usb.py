"""USB sticks: find them and hand their bundles to the import pipeline.

Two ways in:

* udev → ``edgenode-usb@<kernel name>.service`` → ``edgenode usb import sdb1``:
  refuses system and data disks, mounts the partition read-only with
  ``nosuid,nodev,noexec`` under ``usb.mount_dir``, imports, unmounts;
* ``edgenode usb watch``: for desktops whose automounter mounts the stick first,
  polls the mount table for new mounts under ``usb.media_roots``.

Only ``<stick>/edgenode-bundles/`` is read; OS junk there is skipped.  Trust
comes from the bundles' signatures, never from the stick.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from edgenode.protocol.bundle import BundleError
from edgenode.node.imports.history import ImportResult
from edgenode.node.imports.locate import find_bundles, stick_folder
from edgenode.node.imports.pipeline import import_each
from edgenode.node.imports.stick import apply_stick_extras, apply_stick_keylists, stage_releases
from edgenode.node.sources.hook import run_hook

log = logging.getLogger(__name__)

PSEUDO_FS = {"proc", "sysfs", "devtmpfs", "devpts", "tmpfs", "cgroup", "cgroup2", "securityfs", "pstore", "bpf",
             "debugfs", "tracefs", "mqueue", "hugetlbfs", "configfs", "fusectl", "autofs", "overlay", "squashfs",
             "binfmt_misc", "rpc_pipefs", "nsfs", "ramfs", "efivarfs"}
SYSTEM_MOUNTS = ("/", "/boot", "/boot/efi", "/usr", "/var", "/home", "/srv")
DEVICE_RE = re.compile(r"^(/dev/)?([A-Za-z0-9._-]{1,64})$")


@dataclass(frozen=True)
class Mount:
    majmin: str       # "8:17"
    mountpoint: str
    fstype: str
    source: str       # "/dev/sdb1"
    options: str


def _unescape(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def read_mounts(path: str = "/proc/self/mountinfo") -> list[Mount]:
    mounts = []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            a, b = left.split(), right.split()
            if len(a) < 6 or len(b) < 2:
                continue
            mounts.append(Mount(a[2], _unescape(a[4]), b[0], _unescape(b[1]), a[5]))
    return mounts


def disk_of(majmin: str) -> str:
    """The whole disk a block device belongs to ("8:17" → "sdb"), or the majmin itself."""
    sys_path = Path("/sys/dev/block") / majmin
    try:
        real = sys_path.resolve(strict=True)
    except OSError:
        return majmin
    return real.parent.name if (real / "partition").exists() else real.name


def system_disks(cfg, mounts: list[Mount]) -> set[str]:
    """Disks holding the system or the node's data: never treated as sticks."""
    guarded = set(SYSTEM_MOUNTS) | {str(cfg.data_path)}
    disks = set()
    for m in mounts:
        if m.mountpoint in guarded or _holds(m.mountpoint, cfg.data_path):
            disks.add(disk_of(m.majmin))
    try:
        with open("/proc/swaps") as f:
            for line in f.readlines()[1:]:
                dev = line.split()[0]
                if dev.startswith("/dev/"):
                    st = os.stat(dev)
                    disks.add(disk_of(f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"))
    except OSError:
        pass
    return disks


def _holds(mountpoint: str, path: Path) -> bool:
    """Is ``path`` on this mount (the longest matching mount point wins elsewhere; here: any prefix but /)."""
    if mountpoint == "/":
        return False
    return str(path) == mountpoint or str(path).startswith(mountpoint.rstrip("/") + "/")


def _under(path: str, roots: list[str]) -> bool:
    return any(path.startswith(r.rstrip("/") + "/") for r in roots)


def stick_mounts(cfg, mounts: list[Mount] | None = None) -> list[Mount]:
    """Mounted sticks under the configured media roots (read from the mount table)."""
    mounts = read_mounts() if mounts is None else mounts
    roots = [str(Path(r).resolve()) for r in cfg.usb.media_roots]
    roots.append(str(Path(cfg.usb.mount_dir).resolve()))
    guarded = system_disks(cfg, mounts)
    out = []
    for m in mounts:
        if m.fstype in PSEUDO_FS or not _under(m.mountpoint, roots):
            continue
        if disk_of(m.majmin) in guarded:
            log.info("%s: on a system or data disk; not a stick", m.mountpoint)
            continue
        out.append(m)
    return out


def import_mount(cfg, conn, store, mountpoint, *, source: str, progress=None) -> list[ImportResult]:
    """Import every bundle in the stick's ``edgenode-bundles/`` folder."""
    folder = stick_folder(Path(mountpoint))
    if folder is None:
        raise BundleError("E_NO_BUNDLES", f"{mountpoint}: no edgenode-bundles folder on this stick",
                          zh="U 盘上没有 edgenode-bundles 文件夹，没有可导入的内容")
    apply_stick_keylists(conn, folder)
    apply_stick_extras(conn, folder)
    releases = stage_releases(cfg, conn, folder, source)
    bundles = find_bundles(folder, max_manifest=cfg.bundles.max_manifest_kb * 1024)
    if not bundles and releases:
        return []
    if not bundles:
        raise BundleError("E_NO_BUNDLES", f"{folder}: no bundles in it", zh="U 盘上没有内容包")
    results = import_each(cfg, conn, store, bundles, source=source, progress=progress)
    _count(conn, results)
    run_hook(cfg, results)
    return results


def _count(conn, results) -> None:
    from edgenode.node.sources.fanout import count_imports
    try:
        count_imports(conn, "stick", results)
    except sqlite3.Error:  # the counters are figures for the hub; the import itself is already committed
        log.exception("W_TRAFFIC_COUNT: stick bytes not counted")


def _block_device(device: str) -> tuple[str, str]:
    m = DEVICE_RE.match(device)
    if not m:
        raise BundleError("E_USB_BAD_DEVICE", f"{device!r}: not a device name", zh="设备名称不正确")
    path = f"/dev/{m.group(2)}"
    try:
        st = os.stat(path)
    except OSError:
        raise BundleError("E_USB_BAD_DEVICE", f"{path}: no such device", zh="找不到这个设备") from None
    if not stat.S_ISBLK(st.st_mode):
        raise BundleError("E_USB_BAD_DEVICE", f"{path}: not a block device", zh="不是存储设备")
    return path, f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def check_device(cfg, device: str) -> tuple[str, str]:
    """Refuse system and data disks; returns (/dev path, majmin)."""
    path, majmin = _block_device(device)
    mounts = read_mounts()
    if disk_of(majmin) in system_disks(cfg, mounts):
        raise BundleError("E_USB_SYSTEM_DISK", f"{path} is on the system or data disk; it is never treated as a "
                          "stick", zh="这是本机的系统盘或数据盘，不会当作 U 盘导入")
    for m in mounts:
        if m.majmin == majmin and not _under(m.mountpoint, [cfg.usb.mount_dir] + list(cfg.usb.media_roots)):
            raise BundleError("E_USB_SYSTEM_DISK", f"{path} is mounted at {m.mountpoint}, outside the media "
                              "folders; refusing", zh="这个设备已挂载在系统目录，不会当作 U 盘导入")
    return path, majmin


def mount_device(cfg, device: str) -> Path:
    """Refuse system/data disks, then mount read-only with nosuid,nodev,noexec under usb.mount_dir."""
    path, _ = check_device(cfg, device)
    target = Path(cfg.usb.mount_dir) / Path(path).name
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-o", "ro,nosuid,nodev,noexec", path, str(target)],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise BundleError("E_USB_MOUNT", f"cannot mount {path}: {proc.stderr.strip()}",
                          zh="无法读取这个 U 盘（文件系统不支持或已损坏）")
    return target


def unmount_device(cfg, device: str) -> None:
    m = DEVICE_RE.match(device)
    if not m:
        raise BundleError("E_USB_BAD_DEVICE", f"{device!r}: not a device name", zh="设备名称不正确")
    target = Path(cfg.usb.mount_dir) / m.group(2)
    # Lazy: after a pulled stick a plain umount can hang on a dead device.
    subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=60)
    try:
        target.rmdir()
    except OSError:
        pass


def import_device(cfg, conn, store, device: str, *, progress=None) -> list[ImportResult]:
    """Mount (read-only, nosuid, nodev, noexec), import, unmount; or import an already mounted folder."""
    if os.path.isdir(device):
        return import_mount(cfg, conn, store, device, source=f"usb:{device}", progress=progress)
    target = mount_device(cfg, device)
    try:
        return import_mount(cfg, conn, store, target, source=f"usb:{target.name}", progress=progress)
    finally:
        unmount_device(cfg, target.name)


def _note(cfg, mountpoint: str, state: str, message: str) -> None:
    """One ``usb_watch`` job row per stick handled, so the health snapshot shows the watcher alive
    and any failure it lived through.  Best effort: the watcher never stops for its own record."""
    from edgenode.core import jobs
    from edgenode.core.db import open_volatile
    try:
        vconn = open_volatile(cfg)
        try:
            jobs.finish(vconn, jobs.start(vconn, "usb_watch", mountpoint), state, message)
        finally:
            vconn.close()
    except Exception:
        log.warning("usb watch: could not record %s for %s", state, mountpoint, exc_info=True)


def watch(cfg, conn, store, *, once: bool = False, on_results=None, stop=None) -> None:
    """Poll the mount table; import each newly mounted stick once until it is unmounted."""
    seen: set[tuple[str, str]] = set()
    while True:
        try:
            current = {(m.majmin, m.mountpoint) for m in stick_mounts(cfg)}
        except OSError:
            log.exception("cannot read the mount table; still watching")
            current = seen
        for key in sorted(current - seen):
            try:
                results = import_mount(cfg, conn, store, key[1], source=f"usb:{key[1]}")
                _note(cfg, key[1], "done", f"{len(results)} bundle(s)")
            except BundleError as e:
                log.info("%s: %s", key[1], e)
                results = []
                _note(cfg, key[1], "done", e.code)  # a stick without bundles: handled, not a fault
            except Exception as e:  # one bad stick or a bug must not stop the watcher for the next one
                log.exception("%s: the stick could not be handled; still watching", key[1])
                results = []
                _note(cfg, key[1], "failed", f"E_INTERNAL: {type(e).__name__}; still watching")
            if on_results:
                on_results(key[1], results)
        seen = current
        if once or (stop and stop()):
            return
        time.sleep(cfg.usb.poll_seconds)


def _unescape_mount(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def targets(cfg, mounts_file: Path = Path("/proc/mounts")) -> list[dict]:
    """Writable mounts under ``usb.media_roots``: where an admin page may write a bundle (diagnostics,
    usage logs)."""
    roots = [Path(r) for r in cfg.usb.media_roots]
    out = []
    try:
        lines = mounts_file.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 4:
            continue
        device, mount, options = fields[0], Path(_unescape_mount(fields[1])), fields[3].split(",")
        if not any(root in mount.parents for root in roots):
            continue
        writable = "rw" in options and os.access(mount, os.W_OK)
        try:
            free = shutil.disk_usage(mount).free
        except OSError:
            continue
        out.append({"mount": str(mount), "device": device, "writable": writable, "free_bytes": free})
    return out
