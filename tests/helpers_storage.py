"""Shared helpers for the storage, eviction and transcode tests: a small real filesystem, bundles, plays."""

from __future__ import annotations

import shutil
import subprocess
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

import pytest

from edgenode.protocol.build import build_bundle
from edgenode.node.imports.pipeline import import_bundle
from tests.helpers_bundles import make_pdf

KIB = 1024
DAY = 86400


@contextmanager
def small_fs(path: Path, size_kib: int):
    """Mount a tmpfs of ``size_kib`` at ``path`` (as root); always unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def bundle(tmp: Path, sk, channel: str, seq: int, docs: dict[str, int], *, seed: int = 0, **kw) -> Path:
    """A signed bundle of PDFs: ``docs`` maps manifest id → size in bytes.

    The same (id, seed) always gives the same bytes, so a later bundle can carry an
    evicted resource again.
    """
    src = tmp / f"src-{channel}-{seq}"
    shutil.rmtree(src, ignore_errors=True)
    resources = []
    for rid, size in docs.items():
        make_pdf(src / f"{rid}.pdf", size, seed=zlib.crc32(f"{channel}/{rid}/{seed}".encode()))
        resources.append({"id": rid, "path": f"{rid}.pdf", "title": f"资料 {channel} {rid}", "column": "sannong",
                          "tags": ["测试"]})
    return build_bundle(src, channel, seq, tmp / "out", secret_key=sk, resources=resources, link=False, **kw)


def age(conn, resource_ids: list[str], days: float) -> None:
    """As if these resources had arrived ``days`` ago."""
    conn.executemany("UPDATE resources SET added_at = ? WHERE id = ?",
                     [(time.time() - days * DAY, r) for r in resource_ids])


def play(conn, resource_id: str, days_ago: float) -> None:
    from edgenode.node.usage.events import record
    record(conn, [{"kind": "play_start", "terminal": "t-test", "resource_id": resource_id,
                   "at": time.time() - days_ago * DAY}])


def blob_present(store, conn, resource_id: str) -> bool:
    sha = conn.execute("SELECT sha256 FROM resources WHERE id = ?", (resource_id,)).fetchone()[0]
    return store.has(sha)


def import_ok(cfg, conn, store, b):
    """Import one bundle and insist it was imported."""
    r = import_bundle(cfg, conn, store, b, source="test")
    assert r.result == "imported", (r.error_code, r.error)
    return r
