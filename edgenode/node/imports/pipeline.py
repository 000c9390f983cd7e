"""The one import pipeline.  USB sticks, the satellite spool and rsync pulls all end here.

Order (each step only after the previous one succeeded):

1. read the manifest (size-capped) and its signature; apply a carried key list;
   verify the signature, the key's right to the channel and the sequence —
   before a byte of payload is read;
2. check every listed file is a regular file of the declared size, and that the
   blobs not yet in the store fit above the free-space floor;
3. copy each missing blob into a per-bundle staging store on the store's
   filesystem, hashing as it copies (``Store.put_stream``: one pass, fsync,
   rename), re-checking free space as it goes;
4. probe media facts from the staged (verified) bytes;
5. move the staged blobs into the store (rename + directory fsync);
6. apply every catalogue change of the bundle in ONE transaction.

A failure before step 5 leaves store and catalogue as they were.  A crash or a
pulled stick at any point leaves at most staged files (resumed next run: they
are re-hashed, not trusted by size) or unreferenced blobs (``store gc``).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import sqlite3
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edgenode.node.imports import queries as iq
from edgenode.node.imports import trust
from edgenode.protocol.bundle import KEYLIST, KEYLIST_SIG, MANIFEST, SIGNATURE, BundleError, Manifest, parse_manifest
from edgenode.node.imports.history import ImportResult, record
from edgenode.node.imports.outcome import RETRY_LATER, Job, database_failure, record_outcome
from edgenode.protocol.minisign import MAX_SIG_FILE, verify_bytes
from edgenode.node.imports.locate import NotSmallFile, find_bundles, order_key, read_small, stick_keylists
from edgenode.node.catalog import media
from edgenode.node.catalog import queries as q
from edgenode.core.locks import import_lock
from edgenode.core import registry
from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.core.store import Store, fsync_dir

log = logging.getLogger(__name__)

# Hook points other areas register on (their area.py); the pipeline imports none of them.
PLAN = "imports.plan"            # (conn, cfg, manifest) -> manifest: what to copy, list only, or skip
CHECK = "imports.check"          # (data, channel): refuse a manifest's extra sections before copying
RELEASES = "imports.releases"    # (cfg, conn, root, source) -> [dict]: software releases beside the bundles
MAKE_ROOM = "imports.make_room"  # (conn, store, cfg, need, keep): free the space, or raise E_NO_ROOM
COMMIT = "imports.commit"        # (conn, manifest, data, result): inside the import's one transaction


@dataclass
class Progress:
    phase: str            # verify, plan, copy, probe, move, commit, committed, done
    bundle: str
    bytes_done: int = 0
    bytes_total: int = 0
    files_done: int = 0
    files_total: int = 0
    current: str = ""


ProgressFn = Callable[[Progress], None]


def import_bundle(cfg, conn: sqlite3.Connection, store: Store, bundle_dir, *, source: str,
                  progress: ProgressFn | None = None) -> ImportResult:
    """Import one bundle directory; never raises for a bad bundle, returns a failed result instead."""
    bundle_dir = Path(bundle_dir)
    result = ImportResult(bundle=str(bundle_dir), source=source, started_at=time.time())
    job = Job(cfg, result)
    emit = _emitter(progress, job)
    try:
        with import_lock(cfg):
            _run(cfg, conn, store, bundle_dir, result, emit)
    except EdgenodeError as e:
        _fail(result, e.code, e.message, e.zh)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):  # this disk, not the stick: say so
            _fail(result, "E_DISK_FULL", f"the disk filled up while importing ({e.filename}): {e.strerror}",
                  "磁盘已满，内容未导入；请清理空间后重新插入 U 盘")
        else:
            # The stick was pulled, the spool file vanished, the disk failed: staged files stay for the resume.
            _fail(result, "E_SOURCE_IO", f"cannot read or write {e.filename or bundle_dir}: {e.strerror}",
                  "读取内容失败（U 盘可能已拔出），下次插入时会继续导入")
    except sqlite3.Error as e:
        _fail(result, *database_failure(e))
    except Exception as e:  # a bug: one outcome all the same, the traceback to the journal only
        ref = uuid.uuid4().hex[:8]
        log.exception("import %s: internal error, log reference %s", bundle_dir, ref)
        _fail(result, "E_INTERNAL", f"internal error {type(e).__name__} (log reference {ref})",
              f"本机软件出错，请联系县中心（日志编号 {ref}）")
    result.duration = time.time() - result.started_at
    if result.result == "failed":
        log.warning("import %s from %s failed: %s: %s", bundle_dir, source, result.error_code, result.error)
    if result.result != "imported":  # an import's own row is written inside its commit
        record_outcome(conn, result)
    job.finish(result)
    return result


def import_tree(cfg, conn: sqlite3.Connection, store: Store, path, *, source: str,
                progress: ProgressFn | None = None) -> list[ImportResult]:
    """Import every bundle found under a stick, spool or staging root, oldest sequence first."""
    apply_stick_keylists(conn, Path(path))
    releases = stage_releases(cfg, conn, Path(path), source)
    bundles = find_bundles(Path(path), max_manifest=cfg.bundles.max_manifest_kb * 1024)
    if not bundles and releases:
        return []
    if not bundles:
        raise BundleError("E_NO_BUNDLES", f"{path}: no bundles found (expected manifest.json in a bundle folder, "
                          "on a stick under edgenode-bundles/)", zh="没有找到内容包")
    return import_each(cfg, conn, store, bundles, source=source, progress=progress)


def import_each(cfg, conn: sqlite3.Connection, store: Store, bundles, *, source: str,
                progress: ProgressFn | None = None) -> list[ImportResult]:
    """Import bundles given oldest sequence first (``find_bundles``' order), channel by channel.

    After a failure that is the node's own (``RETRY_LATER``: full, busy, I/O), that channel's
    later bundles wait for the next run: imported now, they would make the earlier one a
    rollback, refused for ever, and its resources would never arrive.
    """
    cap = cfg.bundles.max_manifest_kb * 1024
    held: set[str] = set()
    out = []
    for b in bundles:
        key = order_key(Path(b), cap)
        channel = key[1] if key[0] == 0 else None
        if channel in held:
            log.info("%s: waits for the earlier %s bundle that failed on this node", b, channel)
            continue
        result = import_bundle(cfg, conn, store, b, source=source, progress=progress)
        out.append(result)
        if result.error_code in RETRY_LATER and (result.channel or channel):
            held.add(result.channel or channel)
    return out


def stage_releases(cfg, conn: sqlite3.Connection, root: Path, source: str) -> list[dict]:
    """Hand software releases found under ``root`` to the updates area (docs/updates.md); they are logged,
    not imported: a release is never content."""
    out = []
    for stage in registry.hooks(RELEASES):
        try:
            out.extend(stage(cfg, conn, root, source))
        except Exception:  # a release that cannot be staged (disk full, I/O) never stops the content import
            log.exception("%s: staging the software release failed", root)
    for r in out:
        log.info("%s: software release %s: %s %s", root, r.get("version", ""), r["result"], r.get("code", ""))
    return out


def apply_stick_keylists(conn: sqlite3.Connection, root: Path) -> dict:
    """Follow the county's key lists on a stick before its bundles, for points never online."""
    lists = stick_keylists(root)
    if not lists:
        return {"applied": [], "skipped": [], "refused": None}
    try:
        out = trust.apply_chain(conn, lists)
    except sqlite3.Error as e:
        log.warning("key lists on %s not applied: %s", root, e)
        return {"applied": [], "skipped": [], "refused": {"code": database_failure(e)[0]}}
    if out["applied"]:
        log.info("%s: key lists %s applied", root, out["applied"])
    if out["refused"]:
        log.warning("W_KEYLIST_REFUSED: %s: key list #%s: %s", root, out["refused"]["seq"], out["refused"]["code"])
    return out


def _fail(result: ImportResult, code: str, message: str, zh: str) -> None:
    result.result, result.error_code, result.error, result.error_zh = "failed", code, message, zh


def _read_capped(path: Path, cap: int, code: str, what: str) -> bytes:
    try:
        return read_small(path, cap)
    except FileNotFoundError:
        missing = {"E_NO_MANIFEST": ("no manifest.json: not a bundle", "没有找到内容包清单"),
                   "E_SIG_MISSING": ("manifest.json.minisig is missing: unsigned bundles are never imported",
                                     "内容包没有签名，未导入")}[code]
        raise BundleError(code, f"{path.parent}: {missing[0]}", zh=missing[1]) from None
    except NotSmallFile as e:
        if e.too_large:
            raise BundleError("E_MANIFEST_TOO_LARGE", f"{path}: {e}", zh="内容包清单太大，未导入") from None
        raise BundleError("E_NOT_REGULAR_FILE", f"{path}: {what} is {e}",
                          zh="内容包里有链接或设备文件，未导入") from None


def verify(cfg, conn: sqlite3.Connection, bundle_dir: Path) -> tuple[Manifest, bytes, str, list[str]]:
    """Steps 1: signature, key list, channel right.  Returns (manifest, bytes, signature text, warnings)."""
    cap = cfg.bundles.max_manifest_kb * 1024
    if not bundle_dir.is_dir():
        raise BundleError("E_NO_MANIFEST", f"{bundle_dir}: not a directory", zh="没有找到内容包")
    data = _read_capped(bundle_dir / MANIFEST, cap, "E_NO_MANIFEST", "manifest")
    sig_text = _read_capped(bundle_dir / SIGNATURE, MAX_SIG_FILE, "E_SIG_MISSING", "signature") \
        .decode("utf-8", "replace")
    if (bundle_dir / KEYLIST).exists():
        keylist = _read_capped(bundle_dir / KEYLIST, cap, "E_NO_MANIFEST", "key list")
        keysig = _read_capped(bundle_dir / KEYLIST_SIG, MAX_SIG_FILE, "E_SIG_MISSING", "key list signature")
        trust.apply_keylist(conn, keylist, keysig.decode("utf-8", "replace"))
    sig = verify_bytes(data, sig_text, trust.public_keys(conn))
    manifest = parse_manifest(data, max_bytes=cap)
    if manifest.key_id != sig.key_id_hex:
        raise BundleError("E_SIG_INVALID", f"manifest names key {manifest.key_id} but is signed by {sig.key_id_hex}",
                          zh="签名校验失败，内容未导入")
    trust.require_channel(conn, sig.key_id_hex, manifest.channel)
    warnings = []
    try:
        if manifest.expired():
            warnings.append(f"W_EXPIRED: bundle expired at {manifest.expires} (imported anyway: clocks on "
                            "village PCs are often wrong)")
    except BundleError:
        pass
    return manifest, data, sig_text, warnings


def open_payload(bundle_dir: Path, rel: str) -> int:
    """Open a listed file refusing symlinks (anywhere on the path), devices and FIFOs; returns an fd."""
    real_root = os.path.realpath(bundle_dir)
    target = bundle_dir / rel
    parent = os.path.realpath(target.parent)
    if parent != real_root and not parent.startswith(real_root + os.sep):
        raise BundleError("E_NOT_REGULAR_FILE", f"{rel}: leads outside the bundle through a symlink",
                          zh="内容包里有链接或设备文件，未导入")
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise BundleError("E_MISSING_FILE", f"{rel}: listed in the manifest but missing",
                          zh="内容包缺少文件（可能没有复制完整），未导入") from None
    except OSError as e:
        if e.errno in (40, 20):  # ELOOP: a symlink; ENOTDIR: a parent is a file
            raise BundleError("E_NOT_REGULAR_FILE", f"{rel}: is a symlink, not a regular file",
                              zh="内容包里有链接或设备文件，未导入") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise BundleError("E_NOT_REGULAR_FILE", f"{rel}: not a regular file (device, FIFO or directory)",
                          zh="内容包里有链接或设备文件，未导入")
    os.set_blocking(fd, True)
    return fd


def _staging_for(store: Store, manifest_sha: str) -> Store:
    return Store(store.staging / f"import-{manifest_sha[:16]}", free_floor_bytes=store.free_floor_bytes)


def _run(cfg, conn, store: Store, bundle_dir: Path, result: ImportResult, emit) -> None:
    p = Progress("verify", str(bundle_dir))
    emit(p)
    manifest, data, sig_text, warnings = verify(cfg, conn, bundle_dir)
    result.channel, result.seq, result.warnings = manifest.channel, manifest.seq, warnings
    manifest_sha = hashlib.sha256(data).hexdigest()
    if not trust.check_sequence(conn, manifest.channel, manifest.seq, manifest_sha):
        result.result = "unchanged"
        result.bytes_total = manifest.total_bytes
        return
    for w in warnings:
        log.warning("%s: %s", bundle_dir, w)
    _check_ids(conn, manifest)
    for plan in registry.hooks(PLAN):  # storage: on_demand entries listed only, never: skipped
        manifest = plan(conn, cfg, manifest)
    for check in registry.hooks(CHECK):  # activities/campaigns: refuse before copying
        check(data, manifest.channel)

    # Step 2: space for what the store lacks (judged on the signed claims, before touching the
    # payload), then every file present, regular and of the declared size.
    unique = {}
    for e in manifest.entries:
        unique.setdefault(e.sha256, e)
    p.phase, p.files_total = "plan", len(unique)
    emit(p)
    missing = [e for sha, e in unique.items() if not store.has(sha)]
    staging = _staging_for(store, manifest_sha)
    already = sum(e.size for e in missing if staging.has(e.sha256))
    for make_room in registry.hooks(MAKE_ROOM):  # storage: evict per policy, or E_NO_ROOM
        make_room(conn, store, cfg, sum(e.size for e in missing) - already, keep=unique)
    store.ensure_space(sum(e.size for e in missing) - already)
    try:
        _copy_and_move(cfg, conn, store, staging, bundle_dir, manifest, data, sig_text, manifest_sha, missing,
                       unique, result, p, emit)
    except EdgenodeError as e:
        if not (bundle_dir / MANIFEST).is_file():
            # The source vanished under us (stick pulled, spool cleaned): not the bundle's fault.
            # Keep what is staged so the next run resumes.
            raise OSError(errno.ENOENT, f"the bundle disappeared during the import ({e.code})", str(bundle_dir)) \
                from None
        # A definitive refusal: leave the store as it was.
        shutil.rmtree(staging.root, ignore_errors=True)
        raise
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            # The disk filled: what is staged is what fills it.  Give the space back, so the
            # history row and the job's end can still be written; the re-run copies again.
            shutil.rmtree(staging.root, ignore_errors=True)
        raise
    shutil.rmtree(staging.root, ignore_errors=True)
    p.phase = "done"
    emit(p)


def _copy_and_move(cfg, conn, store, staging, bundle_dir, manifest, data, sig_text, manifest_sha, missing, unique,
                   result, p, emit):
    for e in manifest.entries:
        fd = open_payload(bundle_dir, e.path)
        size = os.fstat(fd).st_size
        os.close(fd)
        if size != e.size:
            raise BundleError("E_SIZE_MISMATCH", f"{e.path}: {size} bytes, the manifest says {e.size} "
                              f"({'truncated or still copying' if size < e.size else 'larger than listed'})",
                              zh="文件大小与清单不符（文件可能不完整），未导入")
    staged = set()
    if staging.root.is_dir():
        # Resume: staged files are judged by their hash, never by size or name alone.
        present = [e.sha256 for e in missing if staging.has(e.sha256)]
        check = staging.verify(only=present)
        for sha in check["bad"] + check["missing"]:
            staging.path_for(sha).unlink(missing_ok=True)
        staged = set(present) - set(check["bad"]) - set(check["missing"])
    to_copy = [e for e in missing if e.sha256 not in staged]
    need = sum(e.size for e in to_copy)
    store.ensure_space(need)
    result.bytes_total = manifest.total_bytes
    result.files_skipped = len(unique) - len(to_copy)
    p.bytes_total, p.files_done = need, result.files_skipped

    # Step 3: copy + hash in one pass into the staging store.
    staging.init()
    for e in to_copy:
        store.ensure_space(need - p.bytes_done)
        p.phase, p.current = "copy", e.path
        emit(p)
        fd = open_payload(bundle_dir, e.path)

        def on_bytes(n, p=p):
            p.bytes_done += n
            emit(p)

        with os.fdopen(fd, "rb") as src:
            put = staging.put_stream(src, expected_sha256=e.sha256, expected_size=e.size, name=e.path,
                                     on_bytes=on_bytes)
        result.files_copied += 1
        result.bytes_copied += put.size
        p.files_done += 1
        p.phase = "staged"
        emit(p)

    # Step 4: media facts from the verified bytes.
    facts, posters = {}, {}
    p.phase = "probe"
    for e in manifest.entries:
        emit(p)
        blob = store.path_for(e.sha256) if store.has(e.sha256) else staging.path_for(e.sha256)
        facts[e.id], posters[e.id] = _probe(cfg, staging, blob, e)

    # Step 5: move staged blobs into the store.
    p.phase = "move"
    moved = []
    for sha in sorted(staged | {e.sha256 for e in to_copy} | {s for s in posters.values() if s}):
        src = staging.path_for(sha)
        if not src.exists():
            continue
        emit(p)
        final = store.path_for(sha)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.is_file():
            src.unlink()
        else:
            os.replace(src, final)
            fsync_dir(final.parent)
            moved.append(sha)

    # Step 6: one transaction for the whole bundle.
    try:
        _commit(conn, store, manifest, data, sig_text, manifest_sha, facts, posters, result, p, emit)
    except sqlite3.Error:
        _take_back(conn, store, moved)
        raise


def _take_back(conn, store: Store, moved: list[str]) -> None:
    """After a rolled-back commit, remove the blobs this import moved in and nothing references.

    Still under the import lock.  On a full disk this is what gives the history row its room;
    otherwise the space would wait for the next gc.
    """
    try:
        referenced = q.referenced_hashes(conn)
    except sqlite3.Error:
        return  # cannot tell what is referenced: leave them for gc, which can
    for sha in moved:
        if sha not in referenced:
            store.path_for(sha).unlink(missing_ok=True)


def _check_ids(conn, manifest: Manifest) -> None:
    for e in manifest.entries:
        rid = manifest.catalog_id(e.id)
        row = q.channel_and_withdrawal(conn, rid)
        if row and row[0] != manifest.channel:
            raise BundleError("E_ID_CLASH", f"{rid}: already exists and does not belong to channel "
                              f"{manifest.channel!r}", zh="资源编号与本机已有资源冲突，未导入")


def _probe(cfg, staging: Store, blob: Path, e) -> tuple[media.MediaFacts, str | None]:
    """Probe through a symlink carrying the extension, since blobs are named by hash alone."""
    link = staging.staging / f"probe-{e.sha256[:16]}.{e.ext}"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    os.symlink(blob, link)
    try:
        kw = dict(ffmpeg=cfg.media.ffmpeg, timeout=cfg.media.probe_timeout_seconds)
        try:
            facts = media.probe(link, ffprobe=cfg.media.ffprobe, **kw)
        except media.MediaError as err:
            raise BundleError(err.code, f"{e.path}: {err.message}", zh=err.zh) from None
        poster = media.make_poster(link, facts, **kw) if facts.kind == "video" else None
    finally:
        link.unlink(missing_ok=True)
    if not poster:
        return facts, None
    return facts, staging.put_bytes(poster).sha256


def _commit(conn, store, manifest: Manifest, data, sig_text, manifest_sha, facts, posters, result, p, emit):
    source = f"bundle:{manifest.channel}:{manifest.seq}"
    with transaction(conn):
        # Another writer may have moved on while we copied; the import lock makes this a formality.
        if not trust.check_sequence(conn, manifest.channel, manifest.seq, manifest_sha):
            result.result = "unchanged"
            return
        _check_ids(conn, manifest)
        # A gc that does not take the import lock could have removed the moved, still unreferenced
        # blobs; never make a resource visible without them (the re-run copies them again).
        gone = [e.path for e in manifest.entries if not store.has(e.sha256)]
        if gone:
            raise OSError(errno.ENOENT, f"{len(gone)} blob(s) vanished from the store before the commit "
                          "(a concurrent `store gc`?)", gone[0])
        for e in manifest.entries:
            q.record_blob(conn, e.sha256, e.size)
            if posters[e.id]:
                q.record_blob(conn, posters[e.id], store.path_for(posters[e.id]).stat().st_size)
        for e in manifest.entries:
            rid = manifest.catalog_id(e.id)
            row = q.channel_and_withdrawal(conn, rid)
            f = facts[e.id]
            q.upsert_resource(conn, {
                "id": rid, "title": e.meta["title"], "description": e.meta["description"],
                "column_key": e.meta["column"], "kind": f.kind, "sha256": e.sha256, "size": e.size,
                "mime": f.mime, "ext": f.ext, "duration": f.duration, "width": f.width, "height": f.height,
                "codecs": f.codecs, "playable": f.playable, "poster_sha256": posters[e.id],
                "language": e.meta["language"], "source": source, "channel": manifest.channel,
            }, e.meta["tags"])
            if row:
                result.updated += 1
            else:
                result.added += 1
        for wid in manifest.withdraw:
            rid = manifest.catalog_id(wid)
            row = q.channel_and_withdrawal(conn, rid)
            if row and row[0] == manifest.channel and row[1] is None:
                q.withdraw(conn, rid)
                result.withdrawn += 1
            elif not row:
                result.warnings.append(f"W_WITHDRAW_UNKNOWN: {rid} is not in the catalogue")
        for commit in registry.hooks(COMMIT):  # storage: on-demand entries listed; county activities, campaigns
            commit(conn, manifest, data, result)
        trust.advance(conn, manifest.channel, manifest.seq, manifest_sha)
        iq.save_bundle(conn, manifest.channel, manifest.seq, data, sig_text, manifest.key_id, manifest_sha)
        result.result = "imported"
        result.duration = time.time() - result.started_at
        record(conn, result, time.time())
        p.phase = "commit"
        emit(p)  # still inside the transaction: a crash here must roll everything back
    p.phase = "committed"
    emit(p)


def _emitter(progress: ProgressFn | None, job: Job) -> ProgressFn:
    def emit(p: Progress) -> None:
        job.update(p)
        if progress:
            progress(p)
    return emit
