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

from edgenode.db import transaction
from edgenode.errors import EdgenodeError

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
    row = conn.execute("SELECT mode FROM storage_subscriptions WHERE channel = ?", (channel,)).fetchone()
    return row[0] if row else config_mode(cfg, channel)


def set_mode(conn: sqlite3.Connection, channel: str, new_mode: str) -> None:
    if new_mode not in MODES:
        raise EdgenodeError("E_BAD_SUBSCRIPTION", f"{new_mode!r}: use one of " + ", ".join(MODES),
                            zh="订阅方式不正确")
    _check_channel(channel)
    with transaction(conn):
        conn.execute("INSERT INTO storage_subscriptions (channel, mode, updated_at) VALUES (?, ?, ?) "
                     "ON CONFLICT (channel) DO UPDATE SET mode = excluded.mode, updated_at = excluded.updated_at",
                     (channel, new_mode, time.time()))


def clear_override(conn: sqlite3.Connection, channel: str) -> bool:
    with transaction(conn):
        return conn.execute("DELETE FROM storage_subscriptions WHERE channel = ?", (channel,)).rowcount > 0


def listing(conn: sqlite3.Connection, cfg) -> list[dict]:
    """Every channel known from config, overrides or the catalogue, with its effective mode."""
    channels = set(cfg["storage.always"]) | set(cfg["storage.on_demand"]) | set(cfg["storage.never"])
    channels |= {r[0] for r in conn.execute("SELECT channel FROM storage_subscriptions")}
    channels |= {r[0] for r in conn.execute("SELECT DISTINCT channel FROM resources WHERE channel IS NOT NULL")}
    overrides = dict(conn.execute("SELECT channel, mode FROM storage_subscriptions").fetchall())
    counts = {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT channel, count(*), coalesce(sum(size), 0) FROM resources WHERE channel IS NOT NULL "
        "AND withdrawn_at IS NULL GROUP BY channel")}
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
    if resource_id and conn.execute(
            "SELECT 1 FROM storage_requests WHERE resource_id = ? AND state = 'open' LIMIT 1",
            (resource_id,)).fetchone():
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
