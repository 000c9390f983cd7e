"""Staging: a release found on a stick, in the spool or in the pulled ``software`` channel is
verified, copied to ``DATA_DIR/updates/staged/<version>/`` and checked again there.

Checks (protocol/release.py): signed by a key this node trusts for ``software`` and for
nothing else (``E_RELEASE_KEY``), never unsigned (``E_RELEASE_UNSIGNED``), newer than the
running version (``E_RELEASE_OLDER``), every file as named (``E_RELEASE_HASH``).  A refused
release changes nothing.  A version that rolled back here is not staged again.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from edgenode import __version__
from edgenode.core.db import open_main
from edgenode.core.errors import EdgenodeError
from edgenode.core.store import fsync_dir
from edgenode.node.imports import trust
from edgenode.node.updates import state
from edgenode.protocol import release as rel

log = logging.getLogger(__name__)


def _trust(cfg, conn=None):
    own = conn is None
    conn = conn or open_main(cfg)
    try:
        keys = trust.public_keys(conn)
        rights = {key_id: trust.channels_of(conn, key_id) for key_id in {k.key_id_hex for k in keys.values()}}
    finally:
        if own:
            conn.close()
    return keys, (lambda key_id: rights.get(key_id, set()))


def _fsync_tree(root: Path) -> None:
    for d, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(d, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(d))


def check(cfg, release_dir: Path, conn=None, *, running: str | None = __version__) -> rel.Release:
    keys, channels_of = _trust(cfg, conn)
    return rel.verify(release_dir, keys, channels_of, running=running)


def verify_staged(cfg, staged_dir: Path) -> rel.Release:
    """The staged copy, checked again before it is installed; one that no longer verifies (a damaged disk,
    a key since revoked) is dropped, so the next stick or pull stages the release afresh."""
    try:
        return check(cfg, staged_dir)
    except EdgenodeError as e:
        with state.edit(cfg) as doc:
            if (doc.get("staged") or {}).get("dir") == str(staged_dir):
                doc.pop("staged")
        shutil.rmtree(staged_dir, ignore_errors=True)
        raise EdgenodeError("E_UPDATE_STAGED_BAD", f"the staged release at {staged_dir} no longer verifies "
                            f"({e.code}: {e.message}); it was removed, stage it again",
                            zh="待安装的新版本已损坏，已删除，请重新导入") from None


def stage(cfg, release_dir, *, source: str, conn=None, replace: bool = False) -> dict:
    """Verify and copy one release; returns ``{"result": staged|unchanged|refused, ...}``."""
    release_dir = Path(release_dir)
    try:
        release = check(cfg, release_dir, conn)
    except EdgenodeError as e:
        log.warning("%s: release at %s from %s refused: %s", e.code, release_dir, source, e.message)
        return {"result": "refused", "code": e.code, "error": e.message, "error_zh": e.zh, "path": str(release_dir)}
    doc = state.load(cfg)
    if release.version in doc.get("failed", []):
        return {"result": "refused", "code": "E_UPDATE_FAILED_BEFORE", "version": release.version,
                "error": f"{release.version} rolled back on this node before; not staged again",
                "error_zh": "这个版本曾在本机更新失败，不再自动安装"}
    staged = doc.get("staged") or {}
    if staged.get("sha256") == release.sha256:
        return {"result": "unchanged", "version": release.version}
    if staged and not replace and rel.version_key(staged["version"]) > rel.version_key(release.version):
        return {"result": "unchanged", "version": staged["version"], "note": "a newer release is staged"}
    base = state.root(cfg) / "staged"
    dest = base / f"{release.version}-{release.sha256[:12]}"
    tmp = base / f".{dest.name}.copying"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(release_dir, tmp, symlinks=True)
    _fsync_tree(tmp)  # on the disk before the journal names it: a power cut must not leave it empty
    check(cfg, tmp, conn)  # the copy, not the stick, is what gets installed: check it again
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    fsync_dir(base)
    with state.edit(cfg) as d:
        old = (d.get("staged") or {}).get("dir")
        d["staged"] = {"version": release.version, "sha256": release.sha256, "dir": str(dest), "source": source}
    if old and old != str(dest):
        shutil.rmtree(old, ignore_errors=True)
    log.info("release %s staged from %s", release.version, source)
    return {"result": "staged", "version": release.version, "dir": str(dest)}


def stage_tree(cfg, conn, root, source: str) -> list[dict]:
    """Every release under a stick, spool or pulled tree (the ``sources.releases`` hook)."""
    return [stage(cfg, d, source=source, conn=conn) for d in rel.find_releases(Path(root))]


def _folder_version(d: Path) -> tuple:
    try:
        return rel.version_key(d.name.removeprefix("edgenode-"))
    except rel.ReleaseError:
        return (-1,)


def fetch(cfg, conn, want: str | None = None) -> dict:
    """Pull the hub's ``software`` channel with the content pull's rsync, then stage the release the hub's
    rollout asks for (``want``; it replaces a newer one staged: the county chose this version), or the
    newest one."""
    from edgenode.node.sources import pull
    res = pull.rsync_channel(cfg, rel.FOLDER)
    out = {"state": res.state, "error": res.error, "releases": []}
    if res.state != "done":
        return out
    found = rel.find_releases(pull.staging_root(cfg) / rel.FOLDER)
    if want:
        found = [d for d in found if d.name == f"edgenode-{want}"]
    else:
        found = sorted(found, key=_folder_version)[-1:]
    out["releases"] = [stage(cfg, d, source="rsync", conn=conn, replace=bool(want)) for d in found]
    return out
