"""Heartbeat: the compact health snapshot, signed and POSTed to the hub."""

from __future__ import annotations

import logging
import sqlite3
import time

import psutil

from edgenode import __version__
from edgenode.core import registry
from edgenode.core.errors import EdgenodeError
from edgenode.core.identity import load_or_create
from edgenode.node.imports import trust
from edgenode.node.sources import fanout
from edgenode.node.sync import client, outbox
from edgenode.node.sync import heartbeat_queries as q
from edgenode.node.usage.events import boot_id

log = logging.getLogger(__name__)
PATH = "/api/v1/heartbeat"


def _minimal(cfg, conn: sqlite3.Connection, node_id: str) -> dict:
    """The protocol's keys from psutil and the catalogue, when the health area is absent."""
    disk = psutil.disk_usage(str(cfg.data_path))
    channels = {}
    try:
        channels = q.channel_seqs(conn)
        resources = q.visible_resource_count(conn)
    except sqlite3.Error:
        resources = None
    ob = outbox.backlog(cfg)
    return {"node_id": node_id, "version": __version__, "at": time.time(), "boot_id": boot_id(),
            "uptime": time.time() - psutil.boot_time(),
            "disk": {"total": disk.total, "used": disk.used, "free": disk.free, "percent": disk.percent},
            "cpu_percent": psutil.cpu_percent(interval=None), "mem_percent": psutil.virtual_memory().percent,
            "catalog": {"resources": resources, "channels": channels},
            "outbox": {"batches": ob["batches"], "bytes": ob["bytes"]}, "last_pull": None, "last_uplink": None,
            "clock": {"ntp_synced": None, "wall": time.time(), "monotonic": time.monotonic(), "boot_count": None}}


def build(cfg, conn: sqlite3.Connection) -> dict:
    ident = load_or_create(cfg)
    body = None
    for payload in registry.hooks(SNAPSHOT_HOOK):  # health's compact snapshot, when that area is installed
        try:
            body = payload(cfg, conn)
            body["node_id"] = ident.node_id
            break
        except Exception:  # a broken probe must not stop the heartbeat; the minimal one still goes out
            log.exception("W_HEARTBEAT_SNAPSHOT: health snapshot failed; sending the minimal heartbeat")
    body = body if body is not None else _minimal(cfg, conn, ident.node_id)
    for extra in registry.hooks(EXTRA_HOOK):  # updates: the software section
        try:
            body.update(extra(cfg, conn))
        except Exception:
            log.exception("W_HEARTBEAT_SNAPSHOT: %s failed; sent without it", extra)
    _fanout(cfg, conn, body)
    return body


def _fanout(cfg, conn: sqlite3.Connection, body: dict) -> None:
    """Byte counters per source, mirrors caught tampering, and whether this node offers a mirror."""
    try:
        body["traffic"] = fanout.traffic(conn)
        body["mirror_reports"] = fanout.pending_reports(conn)
    except sqlite3.Error:  # figures only: the heartbeat goes out without them
        log.exception("W_HEARTBEAT_TRAFFIC: byte counters not read")
    if cfg["mirror.enabled"]:
        body["mirror"] = {"rsync_url": cfg["mirror.rsync_url"], "http_url": cfg["mirror.http_url"]}
    if cfg["swarm.advertise"]:
        body["swarm"] = cfg["swarm.advertise"]


# Hook points the health area registers on (health sits above sync: it reads the outbox).
SNAPSHOT_HOOK = "sync.heartbeat_snapshot"    # (cfg, conn) -> the heartbeat body
DIAGNOSTICS_HOOK = "sync.diagnostics_bundle"  # (cfg, conn) -> the redacted .tar.gz bytes
EXTRA_HOOK = "sync.heartbeat_extra"           # (cfg, conn) -> more keys for the heartbeat body (updates)
ANSWER_HOOK = "sync.heartbeat_answer"          # (cfg, conn, answer) -> dict merged into the result (live, updates)
DIAGNOSTICS_PATH = "/api/v1/diagnostics"
MAX_DIAGNOSTICS_BYTES = 32 * 1024 * 1024  # logs are tails; anything bigger is a bug, not worth the link


def send(cfg, conn: sqlite3.Connection, base_url: str) -> dict:
    """One heartbeat; when the answer says county staff asked for it, the diagnostics bundle follows."""
    ident = load_or_create(cfg)
    body = build(cfg, conn)
    answer = client.post_json(cfg, base_url, PATH, body, ident=ident)
    if body.get("mirror_reports"):
        fanout.reports_delivered(conn, body["mirror_reports"])
    out_fanout = fanout.apply_answer(conn, answer)
    if cfg["mirror.enabled"]:  # a revoked node loses its door here, not at the next scheduled refresh
        from edgenode.node.sources import mirror
        out_fanout["mirror"] = mirror.write_access(cfg, conn)
    out = {"server_time": answer.get("server_time"), "clock_offset": (
        answer["server_time"] - time.time() if isinstance(answer.get("server_time"), (int, float)) else None),
        **out_fanout}
    if answer.get("keylists"):
        chain = trust.apply_chain(conn, answer["keylists"])
        if chain["applied"]:
            log.info("key lists %s from the hub applied", chain["applied"])
            out["keylists_applied"] = chain["applied"]
        if chain["refused"]:
            log.warning("W_KEYLIST_REFUSED: key list #%s: %s", chain["refused"]["seq"], chain["refused"]["code"])
            out["keylist_error"] = chain["refused"]["code"]
    for hook in registry.hooks(ANSWER_HOOK):  # live: the schedules; updates: the rollout
        try:
            out.update(hook(cfg, conn, answer) or {})
        except Exception:  # an area's trouble must not fail the heartbeat that went through
            log.exception("W_HEARTBEAT_ANSWER: %s", getattr(hook, "__qualname__", hook))
    if answer.get("diagnostics_requested") is True:
        try:
            out["diagnostics_bytes"] = upload_diagnostics(cfg, conn, base_url, ident)["bytes"]
        except EdgenodeError as e:  # the heartbeat itself went through: report, retry at the next one
            log.warning("W_DIAGNOSTICS_UPLOAD: %s: %s", e.code, e.message)
            out["diagnostics_error"] = e.code
    return out


def upload_diagnostics(cfg, conn: sqlite3.Connection, base_url: str, ident=None) -> dict:
    """Build the redacted diagnostics bundle (as ``edgenode diagnose`` writes it) and POST it, signed."""
    builders = registry.hooks(DIAGNOSTICS_HOOK)
    if not builders:
        raise EdgenodeError("E_NO_DIAGNOSTICS", "no area builds a diagnostics bundle", zh="无法生成诊断包。")
    ident = ident or load_or_create(cfg)
    data = builders[0](cfg, conn)
    if len(data) > MAX_DIAGNOSTICS_BYTES:
        raise EdgenodeError("E_DIAGNOSTICS_TOO_BIG", f"diagnostics bundle is {len(data)} bytes (limit "
                            f"{MAX_DIAGNOSTICS_BYTES})", zh="诊断包太大，没有上传。")
    answer = client.call(cfg, base_url, "POST", DIAGNOSTICS_PATH, body=data, ident=ident,
                         content_type="application/gzip")
    log.info("diagnostics bundle uploaded: %d bytes", len(data))
    return {"bytes": len(data), "answer": answer}
