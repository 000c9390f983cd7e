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


def rsync_root(cfg) -> Path:
    return cfg.data_path / "rsync"


def channels_root(cfg) -> Path:
    return rsync_root(cfg) / "channels"


def county_key(cfg) -> minisign.SecretKey:
    """The county's minisign signing key, made on first use (0600) beside its public key."""
    d = cfg.data_path / "hub_keys"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    sk_path, pk_path = d / "county.key", d / "county.pub"
    if not sk_path.exists():
        sk = minisign.generate_keypair()
        minisign.write_secret_key(sk, sk_path)
        minisign.write_public_key(sk.public, pk_path)
    return minisign.load_secret_key(sk_path)


def county_public_key_path(cfg) -> Path:
    county_key(cfg)
    return cfg.data_path / "hub_keys" / "county.pub"


def _next_seq(conn: sqlite3.Connection, channel: str) -> int:
    row = conn.execute("SELECT max(seq) FROM hub_publications WHERE channel = ?", (channel,)).fetchone()
    return (row[0] or 0) + 1


def _register(conn, channel: str, seq: int, bundle: Path, source: str) -> dict:
    now = time.time()
    with transaction(conn):
        conn.execute("INSERT OR REPLACE INTO hub_publications (channel, seq, bundle_dir, source, published_at) "
                     "VALUES (?, ?, ?, ?, ?)", (channel, seq, bundle.name, source, now))
        conn.execute("INSERT INTO hub_channels (channel, latest_seq, bundle_dir, published_at) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT (channel) DO UPDATE SET latest_seq = excluded.latest_seq, "
                     "bundle_dir = excluded.bundle_dir, published_at = excluded.published_at "
                     "WHERE excluded.latest_seq >= hub_channels.latest_seq", (channel, seq, bundle.name, now))
    return {"channel": channel, "seq": seq, "bundle": str(bundle), "source": source}


def publish(conn: sqlite3.Connection, cfg, src_dir, channel: str, *, seq: int | None = None,
            default_column: str = "pushi") -> dict:
    """Build a bundle of SRC_DIR's media, sign it with the county key, and put it in the rsync tree."""
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise EdgenodeError("E_PUBLISH_SRC", f"{src_dir}: not a folder", zh="发布的来源不是文件夹。")
    seq = seq or _next_seq(conn, channel)
    if seq <= (conn.execute("SELECT max(seq) FROM hub_publications WHERE channel = ?", (channel,)).fetchone()[0] or 0):
        raise EdgenodeError("E_PUBLISH_SEQ", f"channel {channel} already has sequence {seq} or later",
                            zh="该频道已有相同或更新的期号。")
    staging = rsync_root(cfg) / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    # Copies, not hard links: editing a source file later must not change a published bundle.
    built = build_bundle(src_dir, channel, seq, staging, secret_key=county_key(cfg), default_column=default_column,
                         link=False)
    return _register(conn, channel, seq, _move_into_tree(cfg, built, channel), "county")


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
            if conn.execute("SELECT 1 FROM hub_publications WHERE channel = ? AND seq = ?", (m.channel, m.seq)).fetchone():
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
        if not conn.execute("SELECT 1 FROM hub_publications WHERE channel = ? AND seq = ?", (m.channel, m.seq)).fetchone():
            out.append(_register(conn, m.channel, m.seq, manifest.parent, "upstream"))
    return out


def usb_tree(conn: sqlite3.Connection, cfg, path, *, channels: list[str] | None = None, all_seqs: bool = False) -> dict:
    """Copy the published bundles to PATH/edgenode-bundles/ for a volunteer's stick, plus the county key."""
    dest_root = Path(path) / "edgenode-bundles"
    dest_root.mkdir(parents=True, exist_ok=True)
    sql = "SELECT channel, seq, bundle_dir FROM hub_publications"
    rows = [dict(r) for r in conn.execute(sql + " ORDER BY channel, seq")]
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
    os.sync()  # volunteers pull the stick as soon as the command returns
    return {"path": str(dest_root), "bundles": copied}


def rsyncd_conf(cfg) -> str:
    """An rsyncd.conf for the hub's read-only module, from hub.rsync_port and hub.rsync_hosts_allow."""
    return (f"# generated by `edgenode hub rsyncd-conf`; nodes pull rsync://HUB:{cfg.hub.rsync_port}/edgenode/\n"
            f"port = {cfg.hub.rsync_port}\nuse chroot = no\nread only = yes\nlist = yes\nmax connections = 20\n"
            f"timeout = 600\npid file =\nreverse lookup = no\nhosts allow = {cfg.hub.rsync_hosts_allow}\n\n"
            f"[edgenode]\n    path = {rsync_root(cfg)}\n    comment = edgenode published bundles\n"
            f"    read only = yes\n    write only = no\n    refuse options = delete\n"
            f"    exclude = .staging/ .upstream/\n")
