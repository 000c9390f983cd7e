"""Backups of what cannot be downloaded again: the database, the identity, the config.

The content store is not in a node backup: it is re-pulled from the hub or
carried on the (separate) data disk.  ``backup_db`` is the consistent online copy
that ``provisioning/upgrade.sh`` takes before migrating; ``create`` / ``restore``
move a node's identity to a replacement PC (docs/operations.md).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

from edgenode.core.backup_queries import quick_check_rows
from edgenode.core.errors import EdgenodeError
from edgenode.core.store import file_sha256
from edgenode.core.store import fsync_dir as _fsync_dir

MANIFEST = "manifest.json"


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def backup_db(db_path: Path, dest: Path) -> Path:
    """Copy a live database with SQLite's online backup and check the copy.

    Safe while the portal and scheduler write: the backup API copies a
    consistent snapshot.  The copy appears under its final name only once it
    passed ``quick_check``, so a backup file that exists is a good one.
    """
    db_path, dest = Path(db_path), Path(dest)
    if not db_path.exists():
        raise EdgenodeError("E_BACKUP_NO_DB", f"{db_path}: no database to back up")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    final = dest / f"{db_path.stem}-{_stamp()}.db"
    n = 1
    while final.exists():
        final = dest / f"{db_path.stem}-{_stamp()}-{n}.db"
        n += 1
    tmp = final.with_suffix(".db.tmp")
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst)
        rows = quick_check_rows(dst)
    finally:
        dst.close()
        src.close()
        _side_files_to_owner(db_path)
    if rows != ["ok"]:
        tmp.unlink(missing_ok=True)
        raise EdgenodeError("E_BACKUP_BAD", f"{db_path}: the backup copy failed its check: {'; '.join(rows[:3])}")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    _to_owner_of(db_path, tmp, dest)
    os.replace(tmp, final)
    _fsync_dir(dest)
    return final


def _to_owner_of(db_path: Path, *paths: Path) -> None:
    """Run as root (the updater, upgrade.sh), a backup and a backups folder made now would be
    root's, and the service user's own backup job could then neither write nor prune there."""
    if os.geteuid() != 0:
        return
    st = db_path.stat()
    for p in paths:
        if p.stat().st_uid != st.st_uid:
            os.chown(p, st.st_uid, st.st_gid)


def _side_files_to_owner(db_path: Path) -> None:
    """Run as root, reading a WAL database may create its -shm/-wal as root, which would
    stop the service user from opening it: give them to the database's owner."""
    if os.geteuid() != 0:
        return
    st = db_path.stat()
    for suffix in ("-wal", "-shm"):
        side = Path(str(db_path) + suffix)
        try:
            if side.stat().st_uid != st.st_uid:
                os.chown(side, st.st_uid, st.st_gid)
        except FileNotFoundError:
            pass


def prune(dest: Path, stem: str = "edgenode", keep: int = 5) -> list[Path]:
    """Delete all but the newest ``keep`` database backups in ``dest``."""
    files = sorted(Path(dest).glob(f"{stem}-*.db"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        old.unlink()
    return files[keep:]


def create(cfg, dest: Path, config_path: Path | None = None) -> Path:
    """Write a node backup directory: database, identity, session key, config, manifest."""
    from edgenode.core.identity import identity_dir, load_or_create

    node_id = load_or_create(cfg).node_id
    out = Path(dest) / f"edgenode-backup-{node_id[:8]}-{_stamp()}"
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, mode=0o700)
    files: dict[str, str] = {}
    db_copy = backup_db(cfg.db_path, work)
    db_copy.rename(work / "edgenode.db")
    files["edgenode.db"] = "edgenode.db"
    (work / "identity").mkdir(mode=0o700)
    for name in ("node_id", "node.key"):
        shutil.copy2(identity_dir(cfg) / name, work / "identity" / name)
        files[f"identity/{name}"] = f"identity/{name}"
    for rel, src in (("secret_key", cfg.data_path / "secret_key"), ("edgenode.toml", config_path)):
        if src and Path(src).exists():
            shutil.copy2(src, work / rel)
            files[rel] = rel
    manifest = {"node_id": node_id, "created_at": time.time(),
                "files": {rel: file_sha256(work / rel) for rel in files}}
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2))
    for p in work.rglob("*"):
        os.chmod(p, 0o700 if p.is_dir() else 0o600)
    work.rename(out)
    _fsync_dir(out.parent)
    return out


def restore(cfg, src: Path, config_path: Path | None = None, *, force: bool = False) -> dict:
    """Put a node backup back (on a replacement PC, services stopped).

    Every file is checked against the manifest before anything is touched.  A
    different identity already on this machine is kept unless ``force``.
    """
    from edgenode.core.identity import identity_dir

    src = Path(src)
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise EdgenodeError("E_BACKUP_BAD", f"{src}: not a node backup ({e})") from None
    for rel, digest in manifest.get("files", {}).items():
        p = src / rel
        if ".." in Path(rel).parts or not p.is_file() or file_sha256(p) != digest:
            raise EdgenodeError("E_BACKUP_BAD", f"{src}: {rel} is missing or damaged; nothing restored")
    current = identity_dir(cfg) / "node_id"
    if current.exists() and current.read_text().strip() != manifest["node_id"] and not force:
        raise EdgenodeError("E_BACKUP_IDENTITY",
                            f"this machine already has node id {current.read_text().strip()}; "
                            f"the backup is {manifest['node_id']}. Use --force to replace it")
    cfg.data_path.mkdir(parents=True, exist_ok=True)
    for rel in manifest["files"]:
        if rel == "edgenode.toml":
            target = Path(config_path) if config_path else None
        elif rel == "edgenode.db":
            target = cfg.db_path
            for suffix in ("-wal", "-shm"):
                Path(str(target) + suffix).unlink(missing_ok=True)
        elif rel.startswith("identity/"):
            target = identity_dir(cfg) / rel.split("/", 1)[1]
        else:
            target = cfg.data_path / rel
        if target is None:
            continue
        if not target.parent.exists():
            target.parent.mkdir(parents=True, mode=0o700)
            _own(target.parent, cfg, config=False)
            os.chmod(target.parent, 0o700)
        tmp = target.with_name(f".{target.name}.restore")
        shutil.copy2(src / rel, tmp)
        _own(tmp, cfg, config=rel == "edgenode.toml")
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    return {"node_id": manifest["node_id"], "files": sorted(manifest["files"])}


def _own(path: Path, cfg, *, config: bool) -> None:
    """Run as root (the usual case on a replacement PC): hand files to the service user."""
    if os.geteuid() != 0:
        return
    st = cfg.data_path.stat()
    if config:
        os.chown(path, 0, st.st_gid)
        os.chmod(path, 0o640)
    else:
        os.chown(path, st.st_uid, st.st_gid)
        os.chmod(path, 0o600)
