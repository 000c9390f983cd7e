"""Software releases at the hub: into the rsync tree beside the channels, and onto sticks.

``edgenode hub release publish DIR`` checks a release's form and files (nodes check the
signature and the key: the hub is transport, as for content) and puts it at
``rsync/channels/software/edgenode-<version>/``, built in ``.staging`` and renamed into place
so a pulling node never sees half a release.  ``usb_tree`` copies the newest one to a
stick's ``edgenode-bundles/software/``, where a node that was never online finds it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edgenode.core.errors import EdgenodeError
from edgenode.protocol import minisign
from edgenode.protocol import release as rel
from edgenode.protocol.bundle import check_path


def software_root(cfg) -> Path:
    """``rsync/channels/software`` (hub/publish.py's tree; publish's usb_tree imports this module)."""
    return cfg.data_path / "rsync" / "channels" / rel.FOLDER


def _check(src: Path) -> rel.Release:
    """Form, signature present and every file's hash: what any key would have to sign for."""
    data, sig_text = rel.read_signed(src)
    minisign.parse_signature(sig_text)  # well-formed; the nodes check who signed
    release = rel.parse(data, "")
    for e in release.files:
        p = src / e["path"]
        if not p.is_file() or p.stat().st_size != e["size"]:
            raise rel.ReleaseError("E_RELEASE_HASH", f"{e['path']}: missing or of the wrong size",
                                   zh="软件更新包不完整")
    return release


def publish(cfg, src) -> dict:
    src = Path(src)
    release = _check(src)
    dest = software_root(cfg) / f"edgenode-{release.version}"
    if dest.exists():
        raise EdgenodeError("E_RELEASE_EXISTS", f"release {release.version} is already published",
                            zh="这个软件版本已经发布过")
    staging = cfg.data_path / "rsync" / ".staging" / dest.name
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(src, staging)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, dest)
    return {"version": release.version, "path": str(dest), "files": len(release.files)}


def published(cfg) -> list[str]:
    root = software_root(cfg)
    found = [p.name.removeprefix("edgenode-") for p in rel.find_releases(root.parent)] if root.exists() else []
    return sorted(found, key=rel.version_key)


def release_file(cfg, version: str, name: str) -> Path:
    """A file of a published release, for a county hub's signed fetch (hub/tier_release.py).

    Only a file inside the release's folder, named by a clean relative path, never a link."""
    rel.version_key(version)
    root = software_root(cfg) / f"edgenode-{version}"
    try:
        check_path(name)
    except EdgenodeError:
        raise EdgenodeError("E_RELEASE_PATH", "not a file of a release", zh="没有这个文件", status=404) from None
    p = root / name
    if not root.is_dir() or p.is_symlink() or not p.is_file() or root.resolve() not in p.resolve().parents:
        raise EdgenodeError("E_RELEASE_UNKNOWN", f"release {version} has no {name} here", zh="没有这个软件版本",
                            status=404)
    return p


def to_stick(cfg, dest_root: Path, version: str | None = None) -> list[str]:
    """Copy a published release (the newest by default) under ``dest_root/software/``."""
    versions = published(cfg)
    if version is None and not versions:
        return []
    version = version or versions[-1]
    if version not in versions:
        raise EdgenodeError("E_RELEASE_UNKNOWN", f"release {version} is not published here", zh="没有这个软件版本")
    src = software_root(cfg) / f"edgenode-{version}"
    dest = Path(dest_root) / rel.FOLDER / src.name
    tmp = dest.with_name(f".{src.name}.copying")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, tmp)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    os.sync()
    return [version]
