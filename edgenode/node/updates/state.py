"""The updater's journal, ``DATA_DIR/updates/state.json``: written whole, fsynced, renamed into place.

It is a file, not a table, because the database itself is what a rollback puts back.  Keys:

* ``staged``: the verified release waiting in ``updates/staged/`` (version, dir, sha256, source);
* ``go``: the version the hub's rollout told this node to install;
* ``attempt``: the update under way (version, phase, old and new release, backup): its presence
  at start-up means an updater died, and ``recover`` puts the old release back;
* ``last``: the outcome the next heartbeat reports (committed, rolled_back, interrupted);
* ``failed``: versions that rolled back, never tried again on their own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

from edgenode.core.store import fsync_dir

REQUEST = "apply-now"  # the scheduler's request for the updater, watched by systemd/edgenode-update.path


def _own(cfg, path: Path) -> None:
    """Run as root (the updater's unit, boot recovery), hand what it makes to the data directory's owner:
    the scheduler, as the service user, writes the same journal and takes the same locks."""
    if os.geteuid() != 0:
        return
    owner = cfg.data_path.stat()
    if owner.st_uid != 0 and path.stat().st_uid != owner.st_uid:
        os.chown(path, owner.st_uid, owner.st_gid)


def root(cfg) -> Path:
    d = cfg.data_path / "updates"
    d.mkdir(parents=True, exist_ok=True)
    _own(cfg, d)
    return d


def _path(cfg) -> Path:
    return root(cfg) / "state.json"


def load(cfg) -> dict:
    try:
        doc = json.loads(_path(cfg).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        doc = {}
    return doc if isinstance(doc, dict) else {}


def save(cfg, doc: dict) -> None:
    path = _path(cfg)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())
    _own(cfg, tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)


@contextlib.contextmanager
def edit(cfg):
    """Read, change and write the journal under a lock (the scheduler, the updater and the CLI share it)."""
    with open(root(cfg) / ".state.lock", "w") as lock:
        _own(cfg, Path(lock.name))
        fcntl.flock(lock, fcntl.LOCK_EX)
        doc = load(cfg)
        yield doc
        save(cfg, doc)


@contextlib.contextmanager
def updater_lock(cfg, *, wait: bool = True):
    """Held by the one running updater; released by the kernel when it dies, however it dies."""
    f = open(root(cfg) / ".updater.lock", "w")
    _own(cfg, Path(f.name))
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        f.close()


def set_keys(cfg, **values) -> dict:
    with edit(cfg) as doc:
        for k, v in values.items():
            if v is None:
                doc.pop(k, None)
            else:
                doc[k] = v
    return doc
