"""The satellite spool: a directory where a receiver drops bundle files, slowly and out of order.

A bundle (a folder holding ``manifest.json``) is handed to the pipeline once it is
complete: manifest and signature present and every listed file at its size and
hash.  Incomplete bundles wait; one untouched for ``spool.stale_hours`` is
reported (once, in the import history and the log), never deleted.  Loose files
and folders without a manifest are not bundles and are ignored.  After a
successful import the bundle is archived or removed (``spool.after_import``); a
refused one is moved to ``.rejected/`` so it is not retried every scan.  A failure of
the node itself (disk full, database busy, I/O error: ``RETRY_LATER``) leaves the bundle
in place for the next scan.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
from pathlib import Path

from edgenode.protocol.bundle import MANIFEST, SIGNATURE, check_path
from edgenode.node.imports.history import ImportResult, record, stale_reported
from edgenode.protocol.bundle import is_junk
from edgenode.node.imports.outcome import RETRY_LATER
from edgenode.node.imports.pipeline import import_bundle
from edgenode.node.imports.stick import stage_releases
from edgenode.protocol.release import RELEASE
from edgenode.node.imports.locate import NotSmallFile, order_key, read_small
from edgenode.protocol import strictjson
from edgenode.node.sources import carousel
from edgenode.node.sources.fanout import count, count_imports
from edgenode.node.sources.hook import run_hook
from edgenode.core.store import file_sha256

log = logging.getLogger(__name__)


class _HashCache:
    """Hashes of spool files by (size, mtime), so a slow download is not re-hashed every scan."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.data = json.loads(path.read_text())
        except (OSError, ValueError):
            self.data = {}

    def sha(self, file: Path) -> str:
        st = file.stat()
        key, stamp = str(file), [st.st_size, st.st_mtime_ns]
        hit = self.data.get(key)
        if hit and hit[:2] == stamp:
            return hit[2]
        digest = file_sha256(file)
        self.data[key] = [*stamp, digest]
        return digest

    def save(self, keep_prefix: str) -> None:
        self.data = {k: v for k, v in self.data.items() if k.startswith(keep_prefix) and os.path.exists(k)}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.path)


def completeness(bundle: Path, cache: _HashCache, max_manifest: int) -> str | None:
    """None when complete, else why it is not (yet)."""
    manifest, sig = bundle / MANIFEST, bundle / SIGNATURE
    if not sig.is_file():
        return "signature not yet received"
    try:
        doc = strictjson.loads(read_small(manifest, max_manifest))
        entries = doc["resources"]
        assert isinstance(entries, list)
    except NotSmallFile:
        return None  # too large, a link, a FIFO: let the pipeline refuse it with its stable code
    except (OSError, ValueError, KeyError, TypeError, AssertionError, RecursionError):
        return "manifest not yet complete"
    for e in entries:
        try:
            rel = check_path(e.get("path"))
            size, sha = int(e["size"]), str(e["sha256"])
        except Exception:
            return None  # malformed entry: complete as far as waiting goes; the pipeline refuses it
        f = bundle / rel
        try:
            if not f.is_file() or f.stat().st_size != size:
                return f"{rel}: not yet complete"
            if cache.sha(f) != sha:
                return f"{rel}: content does not match yet"
        except OSError:
            return f"{rel}: not readable yet"
    return None


def _newest_mtime(bundle: Path) -> float:
    newest = bundle.stat().st_mtime
    for dirpath, _, names in os.walk(bundle):
        for n in names:
            try:
                newest = max(newest, os.lstat(os.path.join(dirpath, n)).st_mtime)
            except OSError:
                pass
    return newest


def _archive(cfg, spool: Path, bundle: Path) -> str:
    mode = cfg.spool.after_import
    if mode == "keep":
        return "kept"
    if mode == "remove":
        shutil.rmtree(bundle)
        return "removed"
    archive = Path(cfg.spool.archive_dir) if cfg.spool.archive_dir else spool / ".imported"
    return _move_aside(bundle, archive)


def _move_aside(bundle: Path, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / bundle.name
    if target.exists():
        target = folder / f"{bundle.name}.{int(time.time())}"
    shutil.move(str(bundle), str(target))
    return str(target)


def scan_spool(cfg, conn, store, *, now: float | None = None, progress=None) -> dict:
    """One pass over the spool (the scheduler calls this; so does ``edgenode spool scan``)."""
    out = {"imported": [], "unchanged": [], "waiting": [], "stale": [], "rejected": [], "ignored": []}
    if not cfg.spool.dir:
        return out
    spool = Path(cfg.spool.dir)
    if not spool.is_dir():
        log.warning("E_SPOOL_MISSING: spool directory %s does not exist", spool)
        return out
    now = time.time() if now is None else now
    cache = _HashCache(cfg.data_path / "spool-hashes.json")
    max_manifest = cfg.bundles.max_manifest_kb * 1024
    results: list[ImportResult] = []
    direct: list[ImportResult] = []
    satellite_bytes: dict[str, int] = {}
    held: set[str] = set()  # channels whose earlier bundle failed on this node: the rest wait (import_each)
    keys = {e: order_key(e, max_manifest) for e in spool.iterdir()}
    for entry in sorted(keys, key=keys.get):  # oldest sequence first, as on a stick
        if not is_junk(entry.name) and entry.is_dir() and not entry.is_symlink() and (entry / RELEASE).exists():
            out.setdefault("releases", []).extend(stage_releases(cfg, conn, entry, "spool"))  # docs/updates.md
            continue
        if is_junk(entry.name) or entry.is_symlink() or not entry.is_dir() or not (entry / MANIFEST).exists():
            out["ignored"].append(entry.name)
            continue
        why = completeness(entry, cache, max_manifest)
        kept = carousel.gather(cfg, entry, cache, max_manifest) if why else None
        if kept and kept["taken"]:
            satellite_bytes[kept["channel"]] = satellite_bytes.get(kept["channel"], 0) + kept["taken"]
        if kept and kept["ready"]:
            why = None  # every file verified over the passes: the held copy is whole
        if why:
            age_h = (now - _newest_mtime(entry)) / 3600
            if age_h >= cfg.spool.stale_hours:
                out["stale"].append({"bundle": entry.name, "reason": why, "idle_hours": round(age_h, 1)})
                if not stale_reported(conn, str(entry)):
                    log.warning("E_SPOOL_STALE: %s incomplete for %.0f h (%s); left in place", entry, age_h, why)
                    record(conn, ImportResult(bundle=str(entry), source="spool", result="stale",
                                              error_code="E_SPOOL_STALE", error=why, started_at=now), now)
            else:
                out["waiting"].append({"bundle": entry.name, "reason": why,
                                       **({"missing": kept["missing"]} if kept else {})})
            continue
        channel = keys[entry][1] if keys[entry][0] == 0 else None
        if channel in held:
            out["waiting"].append({"bundle": entry.name, "reason": f"waits for the earlier {channel} bundle"})
            continue
        result = import_bundle(cfg, conn, store, kept["hold"] if kept else entry, source="spool", progress=progress)
        if not kept:  # bytes of a held bundle were counted as the hold took them
            direct.append(result)
        if result.error_code not in RETRY_LATER:
            carousel.forget(cfg, kept["hold"]) if kept else carousel.forget_bundle(cfg, entry, max_manifest)
        results.append(result)
        if result.error_code in RETRY_LATER and (result.channel or channel):
            held.add(result.channel or channel)
        if result.ok:
            where = _archive(cfg, spool, entry)
            out[result.result].append({"bundle": entry.name, "summary": result.summary_zh(), "now": where})
        elif result.error_code in RETRY_LATER:  # the node's fault (full, busy, I/O): try again next scan
            out["waiting"].append({"bundle": entry.name, "reason": result.error, "code": result.error_code})
        else:
            where = _move_aside(entry, spool / ".rejected")
            out["rejected"].append({"bundle": entry.name, "code": result.error_code, "error": result.error,
                                    "now": where})
    cache.save(str(spool))
    try:
        count_imports(conn, "satellite", direct)
        for channel, n in satellite_bytes.items():
            count(conn, "satellite", channel, rx=n)
    except sqlite3.Error:  # the counters are figures for the hub; the imports are already committed
        log.exception("W_TRAFFIC_COUNT: satellite bytes not counted")
    run_hook(cfg, results)
    return out
