"""The content-addressed blob store.

Blobs are named by their SHA-256 and fanned out as ``store/ab/cd/<sha256>``
so no directory grows huge.  Writes go temp file → fsync → ``os.replace`` →
fsync of the directory, so after a crash a blob is either whole under its
name or absent; half-written data only ever exists under ``store/.staging``,
which :func:`gc` clears.

This module knows nothing of the catalogue or the web: callers pass the set of
referenced hashes to :func:`gc`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from edgenode.core.errors import EdgenodeError

CHUNK = 1024 * 1024
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
STAGING = ".staging"


class StoreError(EdgenodeError):
    pass


class HashMismatch(StoreError):
    def __init__(self, expected: str, actual: str, name: str = ""):
        super().__init__("E_HASH_MISMATCH",
                         f"{name or 'data'}: SHA-256 is {actual[:16]}…, expected {expected[:16]}…",
                         zh="文件内容校验失败，文件可能已损坏")


class DiskFull(StoreError):
    def __init__(self, message: str):
        super().__init__("E_DISK_FULL", message, zh="磁盘空间不足，导入已停止，已有内容未受影响", status=507)


@dataclass
class PutResult:
    sha256: str
    size: int
    existed: bool


def file_sha256(path: Path | str) -> str:
    """SHA-256 hex of a file, read in CHUNK pieces (the store's, the bundle builder's, the spool's, backups')."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Store:
    def __init__(self, root: Path | str, *, free_floor_bytes: int = 0):
        self.root = Path(root)
        self.free_floor_bytes = free_floor_bytes
        self.staging = self.root / STAGING

    def init(self) -> "Store":
        self.staging.mkdir(parents=True, exist_ok=True)
        return self

    # -- addressing -------------------------------------------------------
    def path_for(self, sha256: str) -> Path:
        if not SHA_RE.match(sha256 or ""):
            raise StoreError("E_BAD_HASH", f"not a SHA-256 hex digest: {sha256!r}", status=404)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def relpath(self, sha256: str) -> str:
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"

    # -- space -----------------------------------------------------------------
    def free_bytes(self) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(self.root).free

    def ensure_space(self, needed: int) -> None:
        free = self.free_bytes()
        if free - needed < self.free_floor_bytes:
            raise DiskFull(f"need {needed} bytes but only {free} are free "
                           f"(keeping a floor of {self.free_floor_bytes} bytes)")

    # -- writing -----------------------------------------------------------
    def put_stream(self, src: BinaryIO, *, expected_sha256: str | None = None, expected_size: int | None = None,
                   name: str = "", on_bytes: Callable[[int], None] | None = None) -> PutResult:
        """Copy a stream into the store, hashing as it copies (one pass)."""
        if expected_sha256 and self.has(expected_sha256):
            return PutResult(expected_sha256, self.path_for(expected_sha256).stat().st_size, True)
        self.staging.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.staging, prefix="put-")
        tmp = Path(tmp_name)
        try:
            h = hashlib.sha256()
            size = 0
            checked = 0
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = src.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if expected_size is not None and size > expected_size:
                        raise StoreError("E_SIZE_MISMATCH", f"{name or 'data'}: larger than the declared "
                                         f"{expected_size} bytes", zh="文件大小与清单不符")
                    # Re-check free space every 64 MiB, not only before starting.
                    if size - checked >= 64 * CHUNK:
                        checked = size
                        if self.free_bytes() < self.free_floor_bytes:
                            raise DiskFull(f"free space fell below the floor of {self.free_floor_bytes} bytes "
                                           f"while copying {name or 'data'}")
                    h.update(chunk)
                    try:
                        out.write(chunk)
                    except OSError as e:
                        if e.errno == 28:  # ENOSPC
                            raise DiskFull(f"disk full while copying {name or 'data'}") from None
                        raise
                    if on_bytes:
                        on_bytes(len(chunk))
                try:
                    out.flush()
                    os.fsync(out.fileno())
                except OSError as e:
                    if e.errno == 28:
                        raise DiskFull(f"disk full while copying {name or 'data'}") from None
                    raise
            digest = h.hexdigest()
            if expected_size is not None and size != expected_size:
                raise StoreError("E_SIZE_MISMATCH", f"{name or 'data'}: {size} bytes, expected {expected_size}",
                                 zh="文件大小与清单不符（文件可能不完整）")
            if expected_sha256 and digest != expected_sha256:
                raise HashMismatch(expected_sha256, digest, name)
            return self._commit(tmp, digest, size)
        finally:
            if tmp.exists():
                tmp.unlink()

    def put_file(self, path: Path | str, **kw) -> PutResult:
        with open(path, "rb") as f:
            return self.put_stream(f, name=kw.pop("name", str(path)), **kw)

    def put_bytes(self, data: bytes) -> PutResult:
        import io
        return self.put_stream(io.BytesIO(data))

    def _commit(self, tmp: Path, digest: str, size: int) -> PutResult:
        final = self.path_for(digest)
        if final.is_file():
            return PutResult(digest, size, True)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
        fsync_dir(final.parent)
        return PutResult(digest, size, False)

    # -- reading / checking -----------------------------------------------
    def open(self, sha256: str) -> BinaryIO:
        return open(self.path_for(sha256), "rb")

    def hash_file(self, path: Path) -> str:
        return file_sha256(path)

    def iter_blobs(self) -> Iterator[tuple[str, Path]]:
        if not self.root.is_dir():
            return
        for d1 in sorted(self.root.iterdir()):
            if d1.name == STAGING or not d1.is_dir() or len(d1.name) != 2:
                continue
            for d2 in sorted(d1.iterdir()):
                if not d2.is_dir():
                    continue
                for blob in sorted(d2.iterdir()):
                    if SHA_RE.match(blob.name):
                        yield blob.name, blob

    def verify(self, only: Iterable[str] | None = None) -> dict:
        """Re-hash blobs; returns counts and the list of bad ones (not deleted)."""
        checked, bad, missing = 0, [], []
        targets = ((s, self.path_for(s)) for s in only) if only is not None else self.iter_blobs()
        for sha, path in targets:
            if not path.is_file() or path.is_symlink():
                missing.append(sha)
                continue
            checked += 1
            if self.hash_file(path) != sha:
                bad.append(sha)
        return {"checked": checked, "bad": bad, "missing": missing}

    def quarantine(self, sha256: str) -> None:
        """Move a corrupt blob aside so it is never served again."""
        path = self.path_for(sha256)
        qdir = self.root / ".quarantine"
        qdir.mkdir(exist_ok=True)
        if path.exists():
            os.replace(path, qdir / f"{sha256}.{int(time.time())}")

    def gc(self, referenced: set[str], *, staging_older_than: float = 0) -> dict:
        """Remove blobs nobody references, and leftover staging files."""
        removed, freed = [], 0
        for sha, path in list(self.iter_blobs()):
            if sha not in referenced:
                freed += path.stat().st_size
                path.unlink()
                removed.append(sha)
        stale = 0
        now = time.time()
        if self.staging.is_dir():
            for p in self.staging.rglob("*"):
                if p.is_file() and now - p.stat().st_mtime >= staging_older_than:
                    p.unlink()
                    stale += 1
        return {"removed": removed, "bytes_freed": freed, "staging_removed": stale}

    def usage_bytes(self) -> int:
        return sum(p.stat().st_size for _, p in self.iter_blobs())


def open_store(cfg) -> Store:
    return Store(cfg.store_path, free_floor_bytes=cfg.store.free_space_floor_mb * 1024 * 1024).init()
