"""Releases for the update tests: keys, a small signed release, and (costly, once) real wheels.

``small_release`` packs a fake wheel and one fake dependency: enough for the signature, key,
version and hash rules.  ``real_wheels`` builds edgenode's wheel once per session and N+1 by a
version bump of the same source; dependencies come from the cached wheelhouse
(tests/helpers_provisioning.wheelhouse).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from edgenode.protocol import minisign
from edgenode.protocol.release import build_release


def keys(d: Path) -> dict:
    """A release key (software only), a content key, an unknown key; written as files too."""
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("release", "content", "stranger"):
        sk = minisign.generate_keypair()
        minisign.write_secret_key(sk, d / f"{name}.key")
        minisign.write_public_key(sk.public, d / f"{name}.pub")
        out[name] = sk
    return out


def small_release(out: Path, sk, version: str) -> Path:
    """A release with a stand-in wheel and one locked stand-in dependency (not installable)."""
    work = out / f".src-{version}"
    (work / "wh").mkdir(parents=True, exist_ok=True)
    wheel = work / f"edgenode-{version}-py3-none-any.whl"
    wheel.write_bytes(b"stand-in wheel " + version.encode())
    dep = work / "wh" / "tiny-1.0-py3-none-any.whl"
    dep.write_bytes(b"tiny dependency")
    lock = work / "node.lock"
    lock.write_text(f"tiny==1.0 \\\n    --hash=sha256:{hashlib.sha256(dep.read_bytes()).hexdigest()}\n")
    return build_release(out, sk, wheel=wheel, lock=lock, wheelhouse=work / "wh")


def bump_version(version: str):
    """A patch for helpers_provisioning.build_edgenode_wheel: the same source as another version."""
    def patch(src: Path) -> None:
        init = src / "edgenode" / "__init__.py"
        init.write_text(re.sub(r'__version__ = "[^"]+"', f'__version__ = "{version}"', init.read_text()))
    return patch


def copy_release(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest
