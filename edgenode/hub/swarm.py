"""A .torrent per published bundle, with the hub's HTTP tree as its web seed (BEP 19).

The torrent is private (BEP 27: no DHT, no peer exchange): nodes find each other through
the hub, never through the public swarm.  It is a v1+v2 hybrid (libtorrent's default), so
clients that need v1 for web seeds still work.  Its name is the bundle's folder, so a node
that saves it under ``sync/staging/<channel>/`` gets exactly the tree the rsync pull would
have made, and imports it through the one pipeline.  Trust is unchanged: the piece hashes
only spare the transfer from bad peers; the import still checks the publisher's signature
and every file's SHA-256.

Torrents live in ``rsync/torrents/<channel>/<bundle>.torrent``, outside ``channels/``, so a
plain rsync pull never fetches them.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgenode.core.errors import EdgenodeError
from edgenode.core.store import fsync_dir

MIN_PIECE = 256 * 1024
MAX_PIECES = 2000


def torrent_path(rsync_root: Path, channel: str, bundle_dir: str) -> Path:
    """``rsync_root``: the published tree (:func:`edgenode.hub.publish.rsync_root`)."""
    return rsync_root / "torrents" / channel / f"{bundle_dir}.torrent"


def piece_size(total: int) -> int:
    size = MIN_PIECE
    while total / size > MAX_PIECES:
        size *= 2
    return size


def make_torrent(cfg, channel: str, bundle: Path) -> Path:
    """``bundle`` is ``<rsync root>/channels/<channel>/<bundle>``; the torrent goes to ``<rsync root>/torrents/``."""
    import libtorrent as lt
    base = cfg.hub.web_seed_url
    if not base.startswith(("http://", "https://")):
        raise EdgenodeError("E_NO_WEB_SEED", "hub.web_seed_url is not set: a torrent needs the hub's HTTP tree",
                            zh="没有设置网页种子地址。")
    files = lt.list_files(str(bundle))
    total = sum(os.path.getsize(p) for p in bundle.rglob("*") if p.is_file())
    t = lt.create_torrent(files, piece_size(total))
    t.add_url_seed(f"{base.rstrip('/')}/channels/{channel}/")
    t.set_priv(True)
    t.set_creator("edgenode hub")
    lt.set_piece_hashes(t, str(bundle.parent))
    out = torrent_path(bundle.parent.parent.parent, channel, bundle.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(lt.bencode(t.generate()))
    os.replace(tmp, out)
    fsync_dir(out.parent)
    return out


def make_missing(conn, cfg, rsync_root: Path) -> list[str]:
    """A torrent for every published bundle that has none yet (after a publish, or once web seeding is on)."""
    from edgenode.hub import publish_queries as q
    made = []
    for r in q.publications(conn):
        bundle = rsync_root / "channels" / r["channel"] / r["bundle_dir"]
        if bundle.is_dir() and not torrent_path(rsync_root, r["channel"], r["bundle_dir"]).exists():
            made.append(str(make_torrent(cfg, r["channel"], bundle)))
    return made
