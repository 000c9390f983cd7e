"""Node-wide advisory locks shared by separate processes (web, scheduler, CLI, USB service)."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager


@contextmanager
def _exclusive(cfg, name: str):
    # flock, not a pid file: the kernel drops it when the holder dies, even by SIGKILL.
    cfg.data_path.mkdir(parents=True, exist_ok=True)
    fd = os.open(cfg.data_path / name, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def import_lock(cfg):
    """One store writer at a time: imports, eviction, transcoding and gc.

    An import moves blobs into the store before its catalogue commit, so a gc
    running in between would see them unreferenced; everything that adds or
    removes blobs takes this lock.
    """
    return _exclusive(cfg, "import.lock")


def storage_lock(cfg):
    """One eviction at a time (the scheduler, the CLI and an import may all ask)."""
    return _exclusive(cfg, "storage.lock")
