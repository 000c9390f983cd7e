"""Content pull: rsync the hub's channels into a staging tree, then the one import pipeline.

rsync is transport only; trust comes from the bundle signatures checked by
``edgenode.node.imports.pipeline.import_bundle``.  The staging tree lives on the data
disk (``DATA_DIR/sync/staging/<channel>/``) and is kept between pulls, so an
unchanged channel moves only rsync's file list.

* ``--partial-dir`` keeps interrupted files; ``--delay-updates`` puts finished ones
  in place only at the end, so an interrupted pull never leaves a half-new tree.
* The window's end becomes the rsync deadline: ``sh`` stops rsync with SIGTERM
  (``_timeout_signal``), never SIGKILL, so the partial data survives for the next window.
* ``--delete`` (a channel's withdrawn bundle leaves staging) runs only when the staging
  root carries our marker file: an unmounted data disk shows an empty mount point
  without it, and we never mirror into (or delete in) the wrong tree.
* After an import, staged payload files are hard-linked to their store blobs
  (:func:`share_with_store`), so the mirror costs no second copy of the content.
* Progress comes from ``--info=progress2`` (``\\r``-separated, hence ``_out_bufsize=0``).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import signal
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import sh

from edgenode.core.errors import EdgenodeError

log = logging.getLogger(__name__)
MARKER = ".edgenode-staging"
PARTIAL_DIR = ".rsync-partial"
# rsync exit codes worth another attempt: socket/protocol I/O, timeouts, partial transfer by vanished files.
RETRYABLE = {5, 10, 12, 23, 24, 30, 35}
CHANNEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")  # as in docs/bundle-format.md
PROGRESS = re.compile(r"^\s*([\d,]+)\s+(\d+)%\s+\S+\s+\S+")
STAT = re.compile(r"^(Total bytes sent|Total bytes received|Total file size|Total transferred file size|"
                  r"Number of regular files transferred|Literal data|Matched data):\s+([\d,]+)", re.M)


@dataclass
class ChannelPull:
    channel: str
    state: str = "pending"  # done, partial (window ended), failed
    attempts: int = 0
    wire_bytes: int = 0     # bytes rsync reported moving over all attempts (sent + received)
    stats: dict = field(default_factory=dict)
    imports: list = field(default_factory=list)
    shared_bytes: int = 0   # staged bytes now hard-linked to their store blobs (no second copy)
    skipped_files: int = 0  # payload files the storage policy left on the hub
    error: str = ""
    rx_bytes: int = 0       # of wire_bytes, those received (the byte counters' figure)
    via: str = "county"     # the upstream that delivered: "county" or "mirror:<node id>"
    fallbacks: list = field(default_factory=list)  # upstreams passed over, and why
    swarm: dict = field(default_factory=dict)  # what the swarm step brought first (swarm.min_bundle_mb)


def staging_root(cfg) -> Path:
    return cfg.data_path / "sync" / "staging"


def ensure_marker(cfg) -> Path:
    """The staging root, made (with its marker) only on a real, initialised data dir.

    An existing root without the marker is refused, never adopted: it may be an
    empty mount point or someone else's tree, and the pull runs ``--delete`` there.
    """
    root = staging_root(cfg)
    if (root / MARKER).is_file():
        return root
    if root.exists():
        _check_marker(root)
    if not cfg.db_path.exists():
        raise EdgenodeError("E_STAGING_ROOT", f"{cfg.data_path} holds no edgenode database: is the data disk "
                            "mounted?", zh="数据盘没有挂载，暂停同步。")
    root.mkdir(parents=True)
    (root / MARKER).write_text("edgenode pull staging tree: rsync --delete runs only where this file exists\n")
    return root


def _check_marker(root: Path) -> None:
    if not (root / MARKER).is_file():
        raise EdgenodeError("E_STAGING_MARKER", f"{root}/{MARKER} is missing: refusing rsync --delete on a tree "
                            "that may not be ours (unmounted disk?)", zh="同步目录异常，已停止以免误删。")


def parse_stats(text: str) -> dict:
    keys = {"Total bytes sent": "sent", "Total bytes received": "received", "Total file size": "total_size",
            "Total transferred file size": "transferred_size", "Number of regular files transferred": "files",
            "Literal data": "literal", "Matched data": "matched"}
    return {keys[k]: int(v.replace(",", "")) for k, v in STAT.findall(text)}


class _Progress:
    """Parse ``--info=progress2`` chunks; throttle job updates to one a second."""

    def __init__(self, report):
        self.report, self.buf, self.done, self.percent, self.last = report, "", 0, 0, 0.0
        self.text: list[str] = []

    def __call__(self, chunk):
        if isinstance(chunk, bytes):
            chunk = chunk.decode("utf-8", "replace")
        self.text.append(chunk)
        self.buf += chunk
        *parts, self.buf = re.split(r"[\r\n]", self.buf)
        for part in parts:
            m = PROGRESS.match(part)
            if m:
                self.done, self.percent = int(m.group(1).replace(",", "")), int(m.group(2))
        now = time.monotonic()
        if self.report and now - self.last >= 1.0:
            self.last = now
            total = self.done * 100 // self.percent if self.percent else 0
            self.report(bytes_done=self.done, bytes_total=max(total, self.done))


# Phase 1 of a pull with a storage policy: only the bundles' signed metadata, so the policy can
# decide from the new manifests which payload files to leave out of phase 2.
METADATA_ONLY = ["--include=*/", "--include=manifest.json", "--include=manifest.json.minisig",
                 "--include=keys.json", "--include=keys.json.minisig", "--exclude=*"]


def rsync_args(src: str, dest: Path, *, bwlimit: int, timeout: int, delete: bool,
               filters: list[str] = ()) -> list[str]:
    args = ["-rt", f"--partial-dir={PARTIAL_DIR}", "--delay-updates", f"--timeout={timeout}",
            f"--contimeout={timeout}", "--info=progress2", "--no-inc-recursive", "--stats",
            "--exclude", PARTIAL_DIR, "--exclude", MARKER, *filters]
    if bwlimit:
        args.append(f"--bwlimit={int(bwlimit)}")
    if delete:
        args.append("--delete-delay")
    return [*args, src, str(dest) + "/"]


def _exclude_file(root: Path, channel: str, paths: list[str]) -> Path:
    """An ``--exclude-from`` file: each path anchored at the channel root, wildcards escaped."""
    lines = []
    for p in paths:
        for c in "\\*?[":
            p = p.replace(c, "\\" + c)
        lines.append("/" + p.lstrip("/"))
    f = root / f".exclude-{channel}"
    f.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return f


def rsync_channel(cfg, channel: str, *, bwlimit: int = 0, deadline: float | None = None, retries: int | None = None,
                  retry_delay: float = 2.0, report=None, unwanted=None, src_base: str | None = None,
                  password: str = "") -> ChannelPull:
    """Mirror one channel into staging.  ``deadline`` is a ``time.monotonic()`` value (window end).

    ``unwanted(channel_root) -> [paths]`` (the storage policy) makes it two phases: the
    manifests first, then everything but the payload files the policy leaves out.
    """
    if not CHANNEL.match(channel or ""):
        # The name becomes a path on both ends and rsync --delete runs in it: never "..", "/" or "".
        raise EdgenodeError("E_CHANNEL_NAME", f"{channel!r} is not a channel name (a-z, 0-9, _ and -)",
                            zh="频道名称不对。")
    root = ensure_marker(cfg)
    dest = root / channel
    dest.mkdir(parents=True, exist_ok=True)
    src = f"{(src_base or cfg['sync.rsync_url']).rstrip('/')}/channels/{channel}/"
    retries = cfg["sync.rsync_retries"] if retries is None else retries
    res = ChannelPull(channel)
    filters: list[str] = []
    if unwanted is not None:
        _attempts(cfg, res, root, src, dest, bwlimit, deadline, retries, retry_delay, report,
                  filters=METADATA_ONLY, delete=False, password=password)
        if res.state != "done":
            return res
        skip = list(unwanted(dest))
        filters = [f"--exclude-from={_exclude_file(root, channel, skip)}"] if skip else []
        res.skipped_files = len(skip)
    _attempts(cfg, res, root, src, dest, bwlimit, deadline, retries, retry_delay, report, filters=filters,
              delete=True, password=password)
    return res


def rsync_env(password: str = "") -> dict:
    """rsync's environment: a mirror's password goes in RSYNC_PASSWORD, never in argv (ps shows argv)."""
    env = {k: v for k, v in os.environ.items() if k != "RSYNC_PASSWORD"}
    if password:
        env["RSYNC_PASSWORD"] = password
    return env


def _attempts(cfg, res: ChannelPull, root, src, dest, bwlimit, deadline, retries, retry_delay, report, *,
              filters, delete, password="") -> None:
    """Run one rsync until it completes, the deadline passes or the retries are spent."""
    rsync = sh.Command("rsync")
    tries = 0
    while True:
        res.attempts += 1
        tries += 1
        _check_marker(root)
        prog = _Progress(report)
        kw = {"_out": prog, "_err_to_out": True, "_out_bufsize": 0, "_timeout_signal": signal.SIGTERM,
              "_env": rsync_env(password)}
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                res.state = "partial"
                return
            kw["_timeout"] = left
        try:
            rsync(*rsync_args(src, dest, bwlimit=bwlimit, timeout=cfg["sync.rsync_timeout_seconds"], delete=delete,
                              filters=filters), **kw)
        except sh.TimeoutException:
            res.wire_bytes += prog.done
            res.rx_bytes += prog.done
            res.state = "partial"
            log.info("pull %s: window closed; rsync stopped with SIGTERM, partial data kept", res.channel)
            return
        except sh.ErrorReturnCode as e:
            res.wire_bytes += prog.done
            res.rx_bytes += prog.done
            tail = "".join(prog.text)[-400:].strip()
            res.error = f"rsync exit {e.exit_code}: {tail.splitlines()[-1] if tail else ''}"
            if e.exit_code in RETRYABLE and tries <= retries:
                log.info("pull %s: attempt %d failed (%s); retrying", res.channel, res.attempts, res.error)
                time.sleep(min(retry_delay * tries, 30))
                continue
            res.state = "failed"
            return
        res.stats = parse_stats("".join(prog.text))
        res.wire_bytes += res.stats.get("sent", 0) + res.stats.get("received", 0)
        res.rx_bytes += res.stats.get("received", 0)
        res.state = "done"
        return


def import_staged(cfg, conn: sqlite3.Connection, store, channel: str) -> list:
    """Every bundle of the channel's staging tree through the one import pipeline, oldest first."""
    from edgenode.node.imports import pipeline  # the bundles area; imported late so sync works without it in tests
    from edgenode.node.imports.locate import find_bundles
    root = staging_root(cfg) / channel
    bundles = [b for b in find_bundles(root, max_manifest=cfg.bundles.max_manifest_kb * 1024)
               if PARTIAL_DIR not in Path(b).parts]
    return pipeline.import_each(cfg, conn, store, bundles, source="rsync")


def share_with_store(store, bundle_dir: Path) -> int:
    """Hard-link each imported payload file of a staged bundle to its store blob; returns bytes saved.

    The staging mirror is what makes an unchanged re-pull cheap, but a second copy of
    every file would halve the disk.  rsync never writes into an existing file (it
    builds a temporary one and renames it over), so a shared inode is never changed
    behind the store's back.  The link keeps the staged file's mtime, which rsync's
    quick check compares with the hub's.  Only files whose size matches and whose blob
    the import verified are linked; the manifest is read again, but only to find paths.
    """
    from edgenode.node.imports.locate import NotSmallFile, read_small
    from edgenode.protocol import strictjson
    try:
        # The import read this manifest already; the cap only bounds a file swapped in since.
        doc = strictjson.loads(read_small(bundle_dir / "manifest.json", 64 * 1024 * 1024))
        entries = [(e["path"], e["sha256"], e["size"]) for e in doc.get("resources", [])]
    except (OSError, NotSmallFile, ValueError, KeyError, TypeError, AttributeError):
        return 0
    saved = 0
    for rel, sha, size in entries:
        staged = bundle_dir / rel
        try:
            blob = store.path_for(sha)
            st, bst = staged.lstat(), blob.stat()
        except (OSError, EdgenodeError):
            continue
        if not staged.is_file() or staged.is_symlink() or (st.st_dev, st.st_ino) == (bst.st_dev, bst.st_ino):
            continue
        if st.st_size != size or bst.st_size != size or st.st_dev != bst.st_dev:
            continue
        tmp = staged.with_name(f".{staged.name}.link")
        try:
            os.link(blob, tmp)
            os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.replace(tmp, staged)
        except OSError:
            tmp.unlink(missing_ok=True)
            continue
        saved += size
    return saved


def with_user(url: str, username: str) -> str:
    """``rsync://host/mod`` → ``rsync://user@host/mod`` (a daemon's ``auth users``)."""
    if not username or not url.startswith("rsync://"):
        return url
    return "rsync://" + username + "@" + url[len("rsync://"):].split("@", 1)[-1]


def upstream_seq(cfg, base: str, password: str, channel: str) -> int | None:
    """The newest bundle sequence an upstream lists for a channel; None when it cannot be reached.

    One ``--list-only`` connection: a mirror that is behind is passed over before any
    payload moves, and no ``--delete`` from a stale tree undoes a newer pull.
    """
    url = f"{base.rstrip('/')}/channels/{channel}/"
    t = str(cfg["sync.rsync_timeout_seconds"])
    try:
        out = sh.Command("rsync")("--list-only", f"--contimeout={t}", f"--timeout={t}", url,
                                  _env=rsync_env(password), _timeout=float(t) + 5)
    except sh.ErrorReturnCode as e:
        return 0 if e.exit_code == 23 else None  # 23: the channel folder is not there (yet)
    except sh.TimeoutException:
        return None
    seqs = [int(m.group(1)) for m in re.finditer(rf"\s{re.escape(channel)}-(\d+)$", str(out), re.M)]
    return max(seqs, default=0)


def _pull_channel(cfg, conn, store, channel, unwanted, **kw) -> ChannelPull:
    """One channel from the first upstream that is up, current and honest (the hub's order)."""
    from edgenode.node.sources import fanout
    latest = fanout.published(conn).get(channel, 0)
    ups = fanout.upstreams(cfg, conn)
    passed: list[dict] = []
    res = ChannelPull(channel, state="failed", error="no upstream")
    for i, up in enumerate(ups):
        name = "county" if up["kind"] == "county" else f"mirror:{up['node_id']}"
        base, last = with_user(up["rsync_url"], up["username"]), i == len(ups) - 1
        if up["kind"] == "mirror" and not last:
            seq = upstream_seq(cfg, base, up["password"], channel)
            if seq is None or seq < latest:
                passed.append({"upstream": name, "why": "down" if seq is None else f"behind ({seq} < {latest})"})
                continue
        res = rsync_channel(cfg, channel, unwanted=unwanted, src_base=base, password=up["password"], **kw)
        res.via = name
        fanout.count(conn, up["kind"], channel, rx=res.rx_bytes)
        if res.state == "failed" and not last:
            passed.append({"upstream": name, "why": res.error or "failed"})
            continue
        if res.state != "done":
            break
        results = import_staged(cfg, conn, store, channel)
        res.imports = [{"bundle": Path(r.bundle).name, "result": r.result, "seq": r.seq, "added": r.added,
                        "updated": r.updated, "error_code": r.error_code, "error": r.error} for r in results]
        res.shared_bytes = sum(share_with_store(store, Path(r.bundle)) for r in results if r.ok)
        bad = [r for r in results if r.error_code in fanout.INTEGRITY_CODES]
        if bad and up["kind"] == "mirror":
            fanout.ban(conn, up["node_id"], bad[0].error_code, f"{Path(bad[0].bundle).name}: {bad[0].error}")
            for r in bad:  # the next upstream must send these again: rsync's quick check would keep them
                shutil.rmtree(r.bundle, ignore_errors=True)
            passed.append({"upstream": name, "why": f"tampered ({bad[0].error_code})"})
            continue
        if up["kind"] == "mirror" and not last and fanout.accepted_seq(conn, channel) < latest:
            passed.append({"upstream": name, "why": "behind after the pull"})
            continue
        break
    res.fallbacks = passed
    return res


def _and_swarmed(unwanted, bundles: list[str], root) -> list[str]:
    return [*unwanted(root), *(f"{b}/" for b in bundles)]


def pull(cfg, conn: sqlite3.Connection, store, *, channels: list[str] | None = None, bwlimit: int = 0,
         deadline: float | None = None, retries: int | None = None, retry_delay: float = 2.0, report=None,
         first=None) -> dict:
    """Every channel from its upstreams; ``first(cfg, conn, store, channel, deadline=)`` (the swarm step,
    :func:`edgenode.node.sources.swarm.by_swarm`) runs before each channel's rsync and names the bundles
    it delivered."""
    if not cfg["sync.rsync_url"]:
        raise EdgenodeError("E_NO_RSYNC_URL", "sync.rsync_url is not set: nothing to pull from",
                            zh="没有设置内容同步地址。", status=409)
    channels = cfg["sync.channels"] if channels is None else channels
    from edgenode.node.storage import subscriptions as subs  # channels kept not at all, files not wanted
    floor = cfg["store.free_space_floor_mb"] * 1024 * 1024
    out = []
    for channel in channels:
        if subs.mode(conn, cfg, channel) == "never":
            continue  # storage: a channel this node keeps nothing of is not even mirrored
        if shutil.disk_usage(cfg.data_path).free < floor:
            raise EdgenodeError("E_DISK_FULL", "the data disk is at its free-space floor; pull stopped",
                                zh="数据盘空间不足，已暂停下载。", status=507)
        if not CHANNEL.match(channel or ""):
            raise EdgenodeError("E_CHANNEL_NAME", f"{channel!r} is not a channel name (a-z, 0-9, _ and -)",
                                zh="频道名称不对。")
        unwanted = functools.partial(subs.unwanted_paths, conn, cfg, channel)  # paths this node does not keep
        swarmed = first(cfg, conn, store, channel, deadline=deadline) if first else {"delivered": []}
        if swarmed["delivered"]:  # the rsync step leaves the bundles the swarm brought alone
            unwanted = functools.partial(_and_swarmed, unwanted, swarmed["delivered"])
        res = _pull_channel(cfg, conn, store, channel, unwanted, bwlimit=bwlimit, deadline=deadline,
                            retries=retries, retry_delay=retry_delay, report=report)
        res.swarm = swarmed
        out.append(res)
        if res.state == "partial":
            break
    state = ("partial" if any(r.state == "partial" for r in out) else
             "failed" if any(r.state == "failed" for r in out) else "done")
    return {"state": state, "channels": [r.__dict__ for r in out],
            "wire_bytes": sum(r.wire_bytes for r in out),
            "imported": sum(1 for r in out for i in r.imports if i["result"] == "imported"),
            "import_failures": sum(1 for r in out for i in r.imports if i["result"] == "failed")}
