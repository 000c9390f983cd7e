"""The satellite carousel: bundles whose files arrive over several passes, with gaps and restarts.

A broadcast repeats its bundles; each pass may bring some files whole, some cut
short, and a receiver that restarts may truncate a file it had finished.  The
spool belongs to the receiver, so the node never writes there.  Instead each file
that verifies against the bundle's manifest (size and SHA-256) is copied once into
the node's hold, ``DATA_DIR/spool-hold/<manifest sha>/bundle/``; a copy, not a link,
because a receiver writing in place would change a linked file under us.  A later
pass that damages the spool's file cannot damage the held one, and a node restart
finds the hold where it was.  When every file is held, the held bundle goes through
the one import pipeline.

:func:`missing` says per bundle what is still absent or partial.  When a link
exists (the pull job), :func:`fetch_missing` asks the node's upstreams for those
files only (anchored ``--include`` rules) into ``incoming/``; each is verified before it
joins the hold.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import sh

from edgenode.core.store import file_sha256, fsync_dir
from edgenode.node.sources import fanout
from edgenode.node.sources.pull import parse_stats, rsync_env, with_user
from edgenode.node.imports.locate import NotSmallFile, read_small
from edgenode.protocol import strictjson
from edgenode.protocol.bundle import KEYLIST, KEYLIST_SIG, MANIFEST, SIGNATURE, check_path

log = logging.getLogger(__name__)
SIDE_FILES = (MANIFEST, SIGNATURE, KEYLIST, KEYLIST_SIG)


def _manifest(bundle: Path, max_manifest: int) -> tuple[str, dict] | None:
    try:
        data = read_small(bundle / MANIFEST, max_manifest)
        doc = strictjson.loads(data)
        assert isinstance(doc.get("resources"), list) and isinstance(doc.get("channel"), str)
        int(doc["seq"])
    except (OSError, NotSmallFile, ValueError, KeyError, TypeError, AssertionError, AttributeError, RecursionError):
        return None
    return hashlib.sha256(data).hexdigest(), doc


def _entries(doc: dict) -> list[tuple[str, int, str]]:
    out = []
    for e in doc["resources"]:
        try:
            out.append((check_path(e.get("path")), int(e["size"]), str(e["sha256"])))
        except Exception:  # a malformed entry: the pipeline refuses the bundle with its own code
            continue
    return out


def _escape(rel: str) -> str:
    for c in "\\*?[":
        rel = rel.replace(c, "\\" + c)
    return rel


def hold_dir(cfg, manifest_sha: str) -> Path:
    return cfg.data_path / "spool-hold" / manifest_sha[:32]


def _copy_verified(src: Path, dest: Path, size: int, sha: str) -> bool:
    """Copy ``src`` to ``dest`` only if the copy is ``size`` bytes hashing to ``sha`` (judged on the copy)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".hold-")
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as f:
            shutil.copyfileobj(f, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        if os.path.getsize(tmp) != size or file_sha256(Path(tmp)) != sha:
            return False
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
        return True
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _take(src: Path, dest: Path, size: int, sha: str, cache=None) -> bool:
    try:
        if not src.is_file() or src.is_symlink() or src.stat().st_size != size:
            return False
        if cache is not None and cache.sha(src) != sha:  # a damaged spool file is not copied every scan
            return False
        return _copy_verified(src, dest, size, sha)
    except OSError:
        return False


def gather(cfg, bundle: Path, cache, max_manifest: int) -> dict | None:
    """Hold every file of ``bundle`` that verifies now; returns ``{"hold", "missing", "channel", "seq"}``.

    ``cache.sha`` (the spool's hash cache) keeps an unchanged spool file from being hashed again.
    None when the manifest is not (yet) readable: there is nothing to compare with.
    """
    found = _manifest(bundle, max_manifest)
    if found is None:
        return None
    msha, doc = found
    hold = hold_dir(cfg, msha) / "bundle"
    for name in SIDE_FILES:
        src, dest = bundle / name, hold / name
        if src.is_file() and not src.is_symlink() and not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
    incoming = hold_dir(cfg, msha) / "incoming"
    missing = []
    taken = 0  # bytes the satellite brought that the hold took this time (the byte counter's figure)
    for rel, size, sha in _entries(doc):
        if (hold / rel).is_file() or _take(incoming / rel, hold / rel, size, sha):
            continue
        if _take(bundle / rel, hold / rel, size, sha, cache):
            taken += size
            continue
        have = (bundle / rel).stat().st_size if (bundle / rel).is_file() else 0
        missing.append({"path": rel, "size": size, "have": min(have, size), "state": "partial" if have else "absent"})
    ready = not missing and (hold / SIGNATURE).is_file()
    return {"hold": hold, "missing": missing, "ready": ready, "channel": doc["channel"], "seq": int(doc["seq"]),
            "signature": (hold / SIGNATURE).is_file(), "taken": taken}


def forget(cfg, hold: Path) -> None:
    """The bundle is imported (or refused for good): its held copies go."""
    shutil.rmtree(hold.parent, ignore_errors=True)


def forget_bundle(cfg, bundle: Path, max_manifest: int) -> None:
    """A bundle that arrived whole in the spool after all: what earlier passes held is not needed."""
    found = _manifest(bundle, max_manifest)
    if found is not None:
        shutil.rmtree(hold_dir(cfg, found[0]), ignore_errors=True)


def waiting_bundles(cfg) -> list[dict]:
    """Every held bundle still missing files: what :func:`fetch_missing` asks an upstream for."""
    root = Path(cfg.spool.dir) if cfg.spool.dir else None
    if root is None or not root.is_dir():
        return []
    cache = SimpleNamespace(sha=file_sha256)  # only files of the right size get this far
    out = []
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith(".") and (entry / MANIFEST).exists():
            g = gather(cfg, entry, cache, cfg.bundles.max_manifest_kb * 1024)
            if g and g["missing"]:
                out.append({"bundle": entry.name, **g})
    return out


def fetch_missing(cfg, conn, *, upstreams: list[dict]) -> list[dict]:
    """Fetch only the files the carousel has not delivered, from the first upstream that has them."""
    out = []
    for w in waiting_bundles(cfg):
        rels = [m["path"] for m in w["missing"]]
        incoming = w["hold"].parent / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        wanted = w["hold"].parent / "wanted"
        wanted.write_text("".join("/" + _escape(r) + "\n" for r in rels), encoding="utf-8")
        done = None
        for up in upstreams:
            src = (f"{with_user(up['rsync_url'], up['username']).rstrip('/')}/channels/{w['channel']}/"
                   f"{w['channel']}-{w['seq']:08d}/")
            t = str(cfg["sync.rsync_timeout_seconds"])
            try:
                # Include rules, not --files-from: rsync 3.5's daemon loses --files-from paths ("vanished").
                res = sh.Command("rsync")("-rt", "--stats", "--prune-empty-dirs", "--include=*/",
                                          f"--include-from={wanted}", "--exclude=*",
                                          f"--timeout={t}", f"--contimeout={t}", "--partial-dir=.rsync-partial",
                                          src, str(incoming) + "/", _env=rsync_env(up["password"]))
            except sh.ErrorReturnCode as e:
                log.info("carousel: %s missing files not at %s (rsync %s: %s)", w["bundle"], up["kind"], e.exit_code,
                         e.stderr.decode("utf-8", "replace")[-300:].strip())
                continue
            stats = parse_stats(str(res))
            fanout.count(conn, up["kind"], w["channel"], rx=stats.get("received", 0))
            done = {"bundle": w["bundle"], "asked": rels, "via": up["kind"], "files": stats.get("files", 0),
                    "received": stats.get("received", 0)}
            break
        out.append(done or {"bundle": w["bundle"], "asked": rels, "via": None})
    return out
