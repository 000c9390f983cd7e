"""The Debian packages a release carries (``debs/``): installed with dpkg before the switch.

A point with no apt source gets the packages a version newly needs, and Debian's security
updates, inside the release.  Only those not installed, or installed at an older version, are
given to one ``dpkg -i`` (dpkg orders them itself), so applying a release twice installs nothing
the second time.  No network: dpkg resolves nothing, so a release must carry every package it
needs that the point lacks; a missing dependency fails the install (``E_UPDATE_DEB``) and the
update goes no further (docs/updates.md).  ``updates.dpkg_root`` points dpkg at another root
(``dpkg --root``): the tests install into a scratch root, not into the machine's own database.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from edgenode.core.errors import EdgenodeError

ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
LOCK_TRIES = 10  # unattended-upgrades may hold dpkg's lock for a while: wait for it, then give up


def _fail(message: str) -> EdgenodeError:
    return EdgenodeError("E_UPDATE_DEB", message[:400], zh="系统软件包安装失败")


def _root_args(cfg) -> list[str]:
    root = cfg["updates.dpkg_root"]
    return [] if root in ("", "/") else [f"--root={root}"]


def _fields(deb: Path) -> tuple[str, str, str]:
    res = subprocess.run(["dpkg-deb", "--field", str(deb), "Package", "Version", "Architecture"],
                         capture_output=True, text=True, env=ENV, timeout=60)
    fields = dict(line.split(": ", 1) for line in res.stdout.splitlines() if ": " in line)
    if res.returncode or not {"Package", "Version"} <= fields.keys():
        raise _fail(f"{deb.name}: not a Debian package ({res.stderr.strip()[-200:]})")
    return fields["Package"], fields["Version"], fields.get("Architecture", "")


def _installed_version(cfg, package: str) -> str | None:
    res = subprocess.run(["dpkg-query", *_root_args(cfg), "--show", "--showformat=${Status}\t${Version}",
                          package], capture_output=True, text=True, env=ENV, timeout=60)
    status, _, version = res.stdout.partition("\t")
    return version if res.returncode == 0 and status == "install ok installed" else None


def _newer(candidate: str, installed: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", candidate, "gt", installed], env=ENV).returncode == 0


def pending(cfg, release, release_dir: Path) -> list[Path]:
    """The release's packages that are not installed, or installed at an older version."""
    out = []
    for entry in release.debs:
        deb = Path(release_dir) / entry["path"]
        package, version, _arch = _fields(deb)
        have = _installed_version(cfg, package)
        if have is None or _newer(version, have):
            out.append(deb)
    return out


def install(cfg, release, release_dir: Path) -> list[str]:
    """Install what ``pending`` names, in one dpkg run; returns the files installed."""
    debs = pending(cfg, release, release_dir)
    if not debs:
        return []
    if os.geteuid() != 0:
        raise _fail(f"installing {len(debs)} Debian package(s) needs root (the updater's unit runs as root)")
    argv = ["dpkg", *_root_args(cfg), "--force-confdef", "--force-confold", "--install", *map(str, debs)]
    for _ in range(LOCK_TRIES):
        res = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=3600)
        if res.returncode == 0:
            return [d.name for d in debs]
        if "locked by another process" not in res.stderr:
            break
        time.sleep(30)
    errors = [ln.strip() for ln in (res.stderr or res.stdout).splitlines() if ln.strip()]
    raise _fail(f"dpkg --install failed: {' | '.join(errors[-4:])}")


def finish_interrupted(cfg) -> str:
    """After a power cut during dpkg: let dpkg finish configuring what it had unpacked (its own recovery)."""
    if os.geteuid() != 0:
        return "skipped (not root)"
    res = subprocess.run(["dpkg", *_root_args(cfg), "--force-confdef", "--force-confold", "--configure", "-a"],
                         capture_output=True, text=True, env=ENV, timeout=3600)
    return "ok" if res.returncode == 0 else f"dpkg --configure -a: {(res.stderr or res.stdout).strip()[-200:]}"
