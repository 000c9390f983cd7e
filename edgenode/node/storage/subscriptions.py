"""Channel subscriptions: what this node keeps of each channel.

* ``always``: every file is fetched and pinned (never evicted);
* ``on_demand``: the catalogue lists the resources (可预约下载) but a file is
  fetched only once a villager has requested it;
* ``never``: nothing of the channel is kept, even when a USB stick carries it.

The ``[storage]`` config lists give the starting point; a choice made on the
admin page (``storage_subscriptions``) overrides the config for that channel.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, fields

from edgenode.protocol.bundle import Manifest
from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.node.storage import queries as sq

MODES = ("always", "on_demand", "never")
MODE_ZH = {"always": "全部保存（固定）", "on_demand": "按需下载", "never": "不保存"}
DECISIONS = ("fetch", "metadata", "skip")


def _check_channel(channel: str) -> str:
    import re
    if not isinstance(channel, str) or not re.match(r"^[a-z0-9][a-z0-9_-]{0,31}$", channel):
        raise EdgenodeError("E_BAD_CHANNEL", f"{channel!r} is not a channel name (a-z, 0-9, _ and -)",
                            zh="频道名称不正确")
    return channel


def config_mode(cfg, channel: str) -> str:
    for mode in ("always", "on_demand", "never"):
        if channel in cfg[f"storage.{mode}"]:
            return mode
    return cfg["storage.default_subscription"]


def mode(conn: sqlite3.Connection, cfg, channel: str | None) -> str:
    """The effective subscription of a channel (admin override, else config).

    Resources without a channel (added by hand, demo) count as ``always``.
    """
    if not channel:
        return "always"
    row = sq.subscription_mode(conn, channel)
    return row[0] if row else config_mode(cfg, channel)


def set_mode(conn: sqlite3.Connection, channel: str, new_mode: str) -> None:
    if new_mode not in MODES:
        raise EdgenodeError("E_BAD_SUBSCRIPTION", f"{new_mode!r}: use one of " + ", ".join(MODES),
                            zh="订阅方式不正确")
    _check_channel(channel)
    with transaction(conn):
        sq.upsert_subscription(conn, channel, new_mode, time.time())


def clear_override(conn: sqlite3.Connection, channel: str) -> bool:
    with transaction(conn):
        return sq.delete_subscription(conn, channel)


def listing(conn: sqlite3.Connection, cfg) -> list[dict]:
    """Every channel known from config, overrides or the catalogue, with its effective mode."""
    channels = set(cfg["storage.always"]) | set(cfg["storage.on_demand"]) | set(cfg["storage.never"])
    channels |= sq.subscribed_channels(conn)
    channels |= sq.catalogue_channels(conn)
    overrides = sq.subscription_overrides(conn)
    counts = sq.channel_counts(conn)
    out = []
    for ch in sorted(channels):
        m = overrides.get(ch) or config_mode(cfg, ch)
        n, size = counts.get(ch, (0, 0))
        out.append({"channel": ch, "mode": m, "mode_zh": MODE_ZH[m], "from": "admin" if ch in overrides else "config",
                    "resources": n, "bytes": size})
    return out


def decide(conn: sqlite3.Connection, cfg, channel: str | None, resource_id: str | None = None) -> str:
    """What an import should do with one resource of ``channel``: ``fetch``, ``metadata`` or ``skip``.

    On-demand channels fetch a resource's file only when someone has an open
    request for it (``resource_id`` is the catalogue id, ``<channel>.<id>``).
    """
    m = mode(conn, cfg, channel)
    if m == "always":
        return "fetch"
    if m == "never":
        return "skip"
    if resource_id and sq.has_open_request(conn, resource_id):
        return "fetch"
    return "metadata"


def pinned_by_channel_sql() -> str:
    """SQL condition (on alias ``r``) true for resources pinned through an ``always`` channel.

    Used by the eviction planner; ``:always`` is bound to a JSON list of channels.
    """
    return "(r.channel IS NULL OR r.channel IN (SELECT value FROM json_each(:always)))"


def always_channels(conn: sqlite3.Connection, cfg) -> list[str]:
    """Channels whose effective mode is ``always`` (overrides applied), for eviction."""
    listed = listing(conn, cfg)
    return [c["channel"] for c in listed if c["mode"] == "always"]


# -- the import pipeline's hooks ------------------------------------------------------------------

@dataclass(frozen=True)
class SubscribedManifest(Manifest):
    """A manifest cut down to the entries whose files this node fetches.

    ``listed_only``: on-demand entries that go into the catalogue without their file
    (可预约下载); ``skipped``: entries of a ``never`` channel, not kept at all.
    """
    listed_only: tuple = ()
    skipped: tuple = ()


def _have_blob(conn: sqlite3.Connection, sha256: str) -> bool:
    return sq.have_blob(conn, sha256)


def split_manifest(conn: sqlite3.Connection, cfg, manifest: Manifest) -> SubscribedManifest:
    """Pipeline hook, after verification and before planning space: keep only what to fetch.

    A file already in the store is always "fetched" (it costs nothing), so an
    on-demand resource that was requested and brought in keeps playing when a
    later bundle updates its metadata.
    """
    fetch, listed, skipped = [], [], []
    for e in manifest.entries:
        d = decide(conn, cfg, manifest.channel, manifest.catalog_id(e.id))
        if d != "fetch" and _have_blob(conn, e.sha256):
            d = "fetch"
        (fetch if d == "fetch" else listed if d == "metadata" else skipped).append(e)
    base = {f.name: getattr(manifest, f.name) for f in fields(Manifest)}
    return SubscribedManifest(**{**base, "entries": fetch}, listed_only=tuple(listed), skipped=tuple(skipped))


def commit_listed(conn: sqlite3.Connection, manifest, result=None) -> list[int]:
    """Pipeline hook, inside the bundle's one transaction: list on-demand entries without their files."""
    from edgenode.protocol.bundle import BundleError
    from edgenode.node.catalog import queries as q
    from edgenode.node.catalog.media import MIME, PLAYABLE_CONTAINERS
    from edgenode.node.storage.state import mark_metadata

    nums = []
    for e in getattr(manifest, "listed_only", ()):
        rid = manifest.catalog_id(e.id)
        row = sq.resource_channel(conn, rid)
        if row and row[0] != manifest.channel:
            raise BundleError("E_ID_CLASH", f"{rid}: already exists and does not belong to channel "
                              f"{manifest.channel!r}", zh="资源编号与本机已有资源冲突，未导入")
        nums.append(q.upsert_resource(conn, {
            "id": rid, "title": e.meta["title"], "description": e.meta["description"],
            "column_key": e.meta["column"], "kind": e.kind, "sha256": e.sha256, "size": e.size,
            "mime": MIME.get(e.ext, "application/octet-stream"), "ext": e.ext,
            # Probed for real when the file comes; until then judged by its container.
            "playable": e.ext in PLAYABLE_CONTAINERS, "poster_sha256": None, "language": e.meta["language"],
            "source": f"bundle:{manifest.channel}:{manifest.seq}", "channel": manifest.channel,
        }, e.meta["tags"]))
        if result is not None:
            if row:
                result.updated += 1
            else:
                result.added += 1
    if nums:
        mark_metadata(conn, nums)
        q.refresh_visibility(conn, nums)
    return nums


def unwanted_paths(conn: sqlite3.Connection, cfg, channel: str, channel_root) -> list[str]:
    """For the content pull: payload files under a channel's rsync mirror this node does not want.

    Paths are relative to ``channel_root`` (``<bundle dir>/<entry path>``), for
    rsync's ``--exclude-from``: entries of a ``never`` channel, on-demand entries
    nobody requested, and evicted files nobody asked back, unless the blob is in the
    store anyway.  Manifests are read only to find paths (the import verifies them).
    """
    import json
    from pathlib import Path

    root = Path(channel_root)
    out = []
    for manifest in sorted(root.glob("*/manifest.json")):
        try:
            entries = json.loads(manifest.read_bytes()).get("resources", [])
        except (OSError, ValueError, AttributeError):
            continue
        for e in entries:
            try:
                rid, sha, rel = f"{channel}.{e['id']}", e["sha256"], e["path"]
            except (KeyError, TypeError):
                continue
            if _have_blob(conn, sha):
                continue
            wanted = decide(conn, cfg, channel, rid) == "fetch"
            if wanted and sq.is_evicted(conn, rid):
                wanted = sq.has_open_request(conn, rid)
            if not wanted:
                out.append(f"{manifest.parent.name}/{rel}")
    return out


def commit_hook(conn, manifest, data, result) -> None:
    """The import pipeline's ``imports.commit`` hook: on-demand entries listed without their files."""
    commit_listed(conn, manifest, result)
