"""Publishing content from the county: signed bundles in the rsync module tree, and USB trees.

``<data>/rsync/`` is the root of the read-only rsync module ``edgenode``
(``systemd/rsyncd.conf``, or ``edgenode hub rsyncd-conf``); nodes pull
``rsync://HUB:PORT/edgenode/channels/<channel>/``.  A bundle is built (or
copied) under ``rsync/.staging/`` and renamed into place, so a node pulling
at that moment sees either no bundle or a whole one.  rsync is transport
only: nodes trust the county key's signature, never the hub's rsync.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

from edgenode.protocol import minisign
from edgenode.protocol.build import build_bundle
from edgenode.protocol.bundle import MANIFEST, parse_manifest
from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.hub import keychain, titles_queries
from edgenode.hub import publish_queries as q
from edgenode.hub.keychain import county_key, county_public_key_path


def rsync_root(cfg) -> Path:
    return cfg.data_path / "rsync"


def channels_root(cfg) -> Path:
    return rsync_root(cfg) / "channels"


def _next_seq(conn: sqlite3.Connection, channel: str) -> int:
    return (q.max_seq(conn, channel) or 0) + 1


def _register(conn, channel: str, seq: int, bundle: Path, source: str) -> dict:
    now = time.time()
    # The reports name resources by title: remember the titles of what we publish.
    entries = parse_manifest((bundle / MANIFEST).read_bytes()).entries
    with transaction(conn):
        q.replace_publication(conn, channel, seq, bundle.name, source, now)
        q.advance_channel(conn, channel, seq, bundle.name, now)
        titles_queries.set_titles(conn, {e.id: e.meta["title"] for e in entries if e.meta.get("title")}, now)
    return {"channel": channel, "seq": seq, "bundle": str(bundle), "source": source}


def publish(conn: sqlite3.Connection, cfg, src_dir, channel: str, *, seq: int | None = None,
            default_column: str = "pushi") -> dict:
    """Build a bundle of SRC_DIR's media, sign it with the county key, and put it in the rsync tree."""
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise EdgenodeError("E_PUBLISH_SRC", f"{src_dir}: not a folder", zh="发布的来源不是文件夹。")
    seq = _next_seq(conn, channel) if seq is None else seq  # 0 is refused by the builder, not renumbered
    if seq <= (q.max_seq(conn, channel) or 0):
        raise EdgenodeError("E_PUBLISH_SEQ", f"channel {channel} already has sequence {seq} or later",
                            zh="该频道已有相同或更新的期号。")
    staging = rsync_root(cfg) / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    # Copies, not hard links: editing a source file later must not change a published bundle.
    built = build_bundle(src_dir, channel, seq, staging, secret_key=county_key(cfg), default_column=default_column,
                         link=False)
    out = _register(conn, channel, seq, _move_into_tree(cfg, built, channel), "county")
    if cfg.hub.web_seed_url:  # the swarm's .torrent beside it (docs/fanout.md)
        from edgenode.hub import swarm
        out["torrent"] = str(swarm.make_torrent(cfg, channel, Path(out["bundle"])))
    return out


def accept_signed(conn: sqlite3.Connection, cfg, bundle_dir, *, trusted: list[minisign.PublicKey] | None = None) -> dict:
    """Republish a bundle signed elsewhere (e.g. upstream), unchanged; optionally check its signature."""
    bundle_dir = Path(bundle_dir)
    try:
        data = (bundle_dir / MANIFEST).read_bytes()
        sig = (bundle_dir / (MANIFEST + ".minisig")).read_text()
    except OSError as e:
        raise EdgenodeError("E_PUBLISH_SRC", f"{bundle_dir}: not a signed bundle ({e.strerror})",
                            zh="不是已签名的内容包。") from None
    m = parse_manifest(data)
    if trusted:
        minisign.verify_bytes(data, sig, {k.key_id: k for k in trusted})
    staging = rsync_root(cfg) / ".staging" / f"{m.channel}-{m.seq:08d}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(bundle_dir, staging, symlinks=False)
    return _register(conn, m.channel, m.seq, _move_into_tree(cfg, staging, m.channel), "upstream")


def _move_into_tree(cfg, built: Path, channel: str) -> Path:
    dest_dir = channels_root(cfg) / channel
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / built.name
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(built, dest)
    fd = os.open(dest_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return dest


def pull_upstream(conn: sqlite3.Connection, cfg, rsync_url: str, *, trusted: list[minisign.PublicKey],
                  timeout: int = 600) -> dict:
    """Fetch the upstream hub's channels with rsync and republish every new bundle, unchanged.

    rsync only transports: each bundle is checked against ``trusted`` (the upstream's
    public keys) before it enters this hub's tree, so nodes below get only what the
    upstream signed.
    """
    import subprocess
    if not trusted:
        raise EdgenodeError("E_PUBLISH_TRUST", "give the upstream's public key (--trust-key)",
                            zh="请指定上级平台的公钥。")
    incoming = rsync_root(cfg) / ".upstream"
    incoming.mkdir(parents=True, exist_ok=True)
    url = rsync_url.rstrip("/") + "/"
    p = subprocess.run(["rsync", "-rt", "--partial-dir=.rsync-partial", f"--timeout={timeout}", url, str(incoming)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise EdgenodeError("E_UPSTREAM_RSYNC", f"rsync from {url} failed ({p.returncode}): {p.stderr.strip()[:300]}",
                            zh="从上级平台同步内容失败。", status=502)
    out = {"republished": [], "present": 0, "refused": []}
    for manifest in sorted(incoming.glob(f"*/*/{MANIFEST}")):
        try:
            m = parse_manifest(manifest.read_bytes())
            if q.is_published(conn, m.channel, m.seq):
                out["present"] += 1
                continue
            out["republished"].append(accept_signed(conn, cfg, manifest.parent, trusted=trusted))
        except EdgenodeError as e:
            out["refused"].append({"bundle": manifest.parent.name, "code": e.code})
    return out


def rescan(conn: sqlite3.Connection, cfg) -> list[dict]:
    """Register bundles found in the tree (e.g. after pulling an upstream's channels)."""
    out = []
    root = channels_root(cfg)
    for manifest in sorted(root.glob(f"*/*/{MANIFEST}")) if root.exists() else []:
        try:
            m = parse_manifest(manifest.read_bytes())
        except EdgenodeError:
            continue
        if not q.is_published(conn, m.channel, m.seq):
            out.append(_register(conn, m.channel, m.seq, manifest.parent, "upstream"))
    return out


def usb_tree(conn: sqlite3.Connection, cfg, path, *, channels: list[str] | None = None, all_seqs: bool = False) -> dict:
    """Copy the published bundles to PATH/edgenode-bundles/ for a volunteer's stick, plus the county key."""
    dest_root = Path(path) / "edgenode-bundles"
    dest_root.mkdir(parents=True, exist_ok=True)
    rows = q.publications(conn)
    if channels:
        rows = [r for r in rows if r["channel"] in channels]
    if not all_seqs:
        latest = {r["channel"]: r for r in rows}
        rows = list(latest.values())
    copied = []
    for r in rows:
        src = channels_root(cfg) / r["channel"] / r["bundle_dir"]
        dest = dest_root / r["bundle_dir"]
        if dest.exists() and (dest / MANIFEST).read_bytes() == (src / MANIFEST).read_bytes():
            copied.append({**r, "status": "present"})
            continue
        tmp = dest_root / f".{r['bundle_dir']}.copying"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
        copied.append({**r, "status": "copied"})
    shutil.copyfile(county_public_key_path(cfg), dest_root / "county.pub")
    keychain.write_to_stick(cfg, dest_root)
    from edgenode.hub import live  # the county's signed live schedules (docs/live.md)
    live.to_stick(cfg, dest_root)
    from edgenode.hub import releases  # the newest software release rides along (docs/updates.md)
    software = releases.to_stick(cfg, dest_root)
    os.sync()  # volunteers pull the stick as soon as the command returns
    return {"path": str(dest_root), "bundles": copied, "releases": software}


def rsyncd_conf(cfg, user: str | None = None, group: str | None = None) -> str:
    """An rsyncd.conf for the hub's read-only module, from hub.rsync_port and hub.rsync_hosts_allow.

    ``uid``/``gid`` are always written: an rsync daemon started as root and given none drops to
    ``nobody``, which cannot read a tree kept 0700 (rsync 3.2.7, Debian 12's), and every pull
    then fails with "change_dir ... Permission denied".  The default is the published tree's owner,
    who can read it by definition; the shipped file names ``edgenode`` (edgenode-rsyncd.service).
    """
    owner, owner_group = _owner(rsync_root(cfg))
    return (f"# generated by `edgenode hub rsyncd-conf`; nodes pull rsync://HUB:{cfg.hub.rsync_port}/edgenode/\n"
            f"port = {cfg.hub.rsync_port}\nuse chroot = no\nread only = yes\nlist = yes\nmax connections = 20\n"
            f"timeout = 600\npid file =\nreverse lookup = no\nhosts allow = {cfg.hub.rsync_hosts_allow}\n\n"
            f"[edgenode]\n    path = {rsync_root(cfg)}\n    comment = edgenode published bundles\n"
            f"    uid = {user or owner}\n    gid = {group or owner_group}\n"
            f"    read only = yes\n    write only = no\n    refuse options = delete\n"
            f"    exclude = .staging/ .upstream/\n")


def _owner(path: Path) -> tuple[str, str]:
    """(user, group) names owning ``path``, or this process's if it does not exist yet."""
    import grp
    import pwd

    try:
        st = path.stat()
        uid, gid = st.st_uid, st.st_gid
    except FileNotFoundError:
        uid, gid = os.getuid(), os.getgid()
    try:
        return pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name
    except KeyError:  # an id with no name (a copied tree): rsync takes numbers too
        return str(uid), str(gid)
