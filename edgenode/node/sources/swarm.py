"""The swarm: fetch a bundle with BitTorrent from the county's nodes, the hub's HTTP tree as web seed.

libtorrent (the PyPI wheel, in the hashed lock) runs with DHT, local peer discovery, UPnP
and NAT-PMP off, and the torrents are private, so the only peers are the ones the hub
names and the web seed.  Rates come from ``swarm.download_kbps`` / ``swarm.upload_kbps``;
the caller's deadline (the window's end) stops it.

The torrent's files land in the pull's staging tree (``sync/staging/<channel>/<bundle>/``)
and go through the one import pipeline, which checks the signature and every SHA-256 as
for any other source.  A peer that sends data failing a piece hash is banned by
libtorrent's smart-ban (``peer_ban_alert``); the ban is recorded like a tampering mirror's
and reported to the hub with the next heartbeat.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import sh

from edgenode.core.errors import EdgenodeError
from edgenode.node.sources import fanout
from edgenode.node.sources.pull import CHANNEL, ensure_marker, import_staged, share_with_store

log = logging.getLogger(__name__)


def session(cfg, *, port: int | None = None):
    import libtorrent as lt
    s = lt.session({
        "listen_interfaces": f"{cfg['swarm.listen_address']}:{port or cfg['swarm.listen_port']}",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "download_rate_limit": cfg["swarm.download_kbps"] * 1024, "upload_rate_limit": cfg["swarm.upload_kbps"] * 1024,
        "allow_multiple_connections_per_ip": True,  # several nodes behind one township NAT
        "alert_mask": lt.alert_category.error | lt.alert_category.peer | lt.alert_category.status,
        "user_agent": "edgenode",
    })
    return s


def _endpoint(a) -> str:
    ep = getattr(a, "endpoint", None) or getattr(a, "ip", None)
    return f"{ep[0]}:{ep[1]}" if isinstance(ep, tuple) else str(ep)


def fetch(cfg, conn, store, torrent: Path, *, peers: list[tuple[str, int]] = (), seconds: float = 3600,
          seed_seconds: float | None = None, port: int | None = None, rank: int = 0) -> dict:
    """Download the bundle of ``torrent``, import it, then seed for ``seed_seconds`` (within ``seconds``).

    ``rank``: this node's place in the hub's peer order; the first node falls back on the web seed
    at once, the others only later, so the county sends each piece about once.
    """
    import libtorrent as lt
    ti = lt.torrent_info(str(torrent))
    channel = Path(torrent).parent.name
    if not CHANNEL.match(channel):
        raise EdgenodeError("E_CHANNEL_NAME", f"{channel!r} is not a channel name", zh="频道名称不对。")
    save = ensure_marker(cfg) / channel  # the pull's tree, marker and all, whichever comes first
    save.mkdir(parents=True, exist_ok=True)
    ses = session(cfg, port=port)
    atp = lt.add_torrent_params()
    atp.ti, atp.save_path = ti, str(save)
    h = ses.add_torrent(atp)
    web = _WebSeed(h, cfg["swarm.web_seed_after_seconds"], rank)
    for ip, p in peers:
        h.connect_peer((ip, int(p)))
    start = time.monotonic()
    deadline = start + seconds
    seed_for = cfg["swarm.seed_minutes"] * 60 if seed_seconds is None else seed_seconds
    out = {"bundle": ti.name(), "channel": channel, "state": "partial", "banned": [], "hash_failures": 0,
           "imports": []}
    tally, done_at = _Tally(), None
    while time.monotonic() < deadline:
        for a in ses.pop_alerts():
            if isinstance(a, lt.peer_ban_alert):
                out["banned"].append(_endpoint(a))
            elif isinstance(a, lt.hash_failed_alert):
                out["hash_failures"] += 1
        tally.sample(h)
        st = h.status()
        if done_at is None and st.is_seeding:
            done_at = time.monotonic()
            out["state"], out["seconds"] = "done", round(done_at - start, 2)
            out["imports"] = _import(cfg, conn, store, channel, save / ti.name())
        if done_at is not None and time.monotonic() - done_at >= seed_for:
            break
        if done_at is None:
            web.steer(st, tally)
        _reconnect(h, peers)
        time.sleep(0.25)
    final = h.status()
    out["uploaded"], out["downloaded"] = final.total_payload_upload, final.total_payload_download
    ses.remove_torrent(h)
    out.update(_count(conn, channel, tally, out))
    return out


def _reconnect(h, peers) -> None:
    """A peer that started later, or dropped us, is tried again."""
    connected = {tuple(q.ip) for q in h.get_peer_info()}
    for ip, p in peers:
        if (ip, int(p)) not in connected:
            h.connect_peer((ip, int(p)))


def by_swarm(cfg, conn, store, channel: str, *, deadline: float | None = None) -> dict:
    """The pull's swarm step for one channel: bundles the hub has a .torrent for, newer than what this node
    holds and at least ``swarm.min_bundle_mb`` big, fetched from the county's nodes inside the window.

    The rule (docs/fanout.md): a big bundle that many nodes want leaves the county about once through the
    swarm; everything else goes by rsync from the mirror or the county.  Returns the bundle names delivered,
    which the rsync step that follows leaves alone.
    """
    import libtorrent as lt
    from edgenode.node.sources.pull import rsync_env
    floor = cfg["swarm.min_bundle_mb"] * 1_000_000
    peers, rank = fanout.swarm_peers(conn)
    if not floor or not peers:
        return {"delivered": [], "results": []}
    local = cfg.data_path / "sync" / "torrents" / channel
    local.mkdir(parents=True, exist_ok=True)
    src = f"{cfg['sync.rsync_url'].rstrip('/')}/torrents/{channel}/"
    t = str(cfg["sync.rsync_timeout_seconds"])
    try:
        sh.Command("rsync")("-rt", "--delete", f"--timeout={t}", f"--contimeout={t}", "--include=*.torrent",
                            "--exclude=*", src, str(local) + "/", _env=rsync_env())
    except sh.ErrorReturnCode as e:
        log.info("swarm: no torrents for %s (rsync %s)", channel, e.exit_code)
        return {"delivered": [], "results": []}
    have = fanout.accepted_seq(conn, channel)
    out = {"delivered": [], "results": []}
    for torrent in sorted(local.glob(f"{channel}-*.torrent")):
        seq = int(torrent.stem.rsplit("-", 1)[1]) if torrent.stem.rsplit("-", 1)[1].isdigit() else 0
        if seq <= have or lt.torrent_info(str(torrent)).total_size() < floor:
            continue
        left = 3600.0 if deadline is None else deadline - time.monotonic()
        if left <= 10:
            break
        r = fetch(cfg, conn, store, torrent, peers=peers, rank=rank, seconds=left,
                  seed_seconds=min(cfg["swarm.seed_minutes"] * 60, left / 2))
        out["results"].append(r)
        if any(i["result"] in ("imported", "unchanged") for i in r["imports"]):
            out["delivered"].append(r["bundle"])
    return out


def _import(cfg, conn, store, channel: str, bundle: Path) -> list[dict]:
    results = [r for r in import_staged(cfg, conn, store, channel) if Path(r.bundle) == bundle]
    for r in results:
        if r.ok:
            share_with_store(store, Path(r.bundle))
    return [{"bundle": Path(r.bundle).name, "result": r.result, "seq": r.seq, "error_code": r.error_code}
            for r in results]


def _count(conn, channel: str, tally: _Tally, out: dict) -> dict:
    # libtorrent's total is exact; the split between web seed and nodes comes from per-connection samples,
    # which miss the last moments of a closed connection, so only their proportion is used.
    web_seen, peer_seen = sum(tally.web.values()), sum(tally.peers.values())
    total = out["downloaded"]
    web = round(total * web_seen / (web_seen + peer_seen)) if web_seen + peer_seen else 0
    peer = total - web
    fanout.count(conn, "county", channel, rx=web)
    fanout.count(conn, "peer", channel, rx=peer, tx=out["uploaded"])
    for ep in sorted(set(out["banned"])):
        fanout.ban(conn, f"peer:{ep}", "E_PEER_CORRUPT", f"{out['bundle']}: pieces failed their hash")
    return {"from_web_seed": web, "from_peers": peer, "banned": sorted(set(out["banned"]))}


class _Tally:
    """Bytes per peer as libtorrent reports them (the largest figure seen per connection)."""

    def __init__(self):
        self.web: dict[str, int] = {}
        self.peers: dict[str, int] = {}

    def sample(self, handle) -> None:
        import libtorrent as lt
        for p in handle.get_peer_info():
            key = f"{p.ip[0]}:{p.ip[1]}"
            web = p.connection_type in (lt.peer_info.web_seed, lt.peer_info.http_seed)
            book = self.web if web else self.peers
            book[key] = max(book.get(key, 0), p.total_download)


class _WebSeed:
    """The hub's web seed as the swarm's fallback, not its first source.

    It is switched on only while some piece this node lacks is held by no connected node and
    nodes have sent nothing for ``after`` seconds; a node of ``rank`` r waits r more periods
    at the start, so the first node fetches from the county and the others from it.
    """

    def __init__(self, handle, after: float, rank: int):
        self.h, self.after = handle, after
        self.urls = list(handle.url_seeds())
        for u in self.urls:
            handle.remove_url_seed(u)
        self.on = False
        self.quiet_since = time.monotonic() + (rank - 1) * after  # rank 0 may use it at once
        self.peer_bytes = 0

    def steer(self, status, tally) -> None:
        import libtorrent as lt
        now = time.monotonic()
        got = sum(tally.peers.values())
        if got > self.peer_bytes:
            self.peer_bytes, self.quiet_since = got, max(self.quiet_since, now)
        have = status.pieces
        held = [False] * len(have)
        for p in self.h.get_peer_info():
            if p.connection_type == lt.peer_info.standard_bittorrent and p.pieces:  # nodes, not the web seed
                held = [a or b for a, b in zip(held, p.pieces)]
        starving = any(not h and not k for h, k in zip(have, held))
        if starving and not self.on and now - self.quiet_since >= self.after:
            for u in self.urls:
                self.h.add_url_seed(u)
            self.on = True
        elif not starving and self.on:
            for u in self.urls:
                self.h.remove_url_seed(u)
            self.on = False
            self.quiet_since = now
