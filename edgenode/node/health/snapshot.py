"""The one health snapshot: ``snapshot(cfg, conn) -> dict``.

Every consumer uses it: ``/api/health``, ``/metrics``, ``edgenode health``, the
admin page, the diagnostics bundle and the sync heartbeat (via
:func:`compact`).  ``edgenode/node/health/schema.json`` describes the result and a
test validates it.

A section that cannot be read (a broken sensor, a locked database) is ``null``
and its error is listed under ``errors``; one bad probe never hides the rest.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sqlite3
import threading
import time

from edgenode import __version__
from edgenode.node.health import probes
from edgenode.node.health import snapshot_queries as q

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# Job kinds the sync and scheduler areas record in the volatile ``jobs`` table; ``usb_watch`` is
# the stick watcher's record of each stick it handled, and of a failure it lived through.
SYNC_KINDS = ("pull", "uplink", "heartbeat", "spool_scan", "housekeeping", "usb_watch")
# Kinds that prove contact with the county hub, for the "days without sync" warning.
CONTACT_KINDS = ("pull", "uplink", "heartbeat")
QUICK_CHECK_TTL = 600.0  # quick_check reads the whole file (~0.5 s at 50 MB): once per 10 minutes
# The content aggregates scan the resources table (~15 ms at 20k resources);
# content changes only through imports, verify runs and admin edits, so they
# are reused for this long unless an import or a verify run was recorded since.
CONTENT_TTL = 30.0

_qc_lock = threading.Lock()
_contents: dict[str, tuple[float, tuple, dict]] = {}
_identities: dict[str, str] = {}


def snapshot(cfg, conn: sqlite3.Connection, *, fresh: bool = False) -> dict:
    """Everything known about this node's health right now (see schema.json).

    ``fresh=True`` bypasses the per-process caches (quick_check for 10 min,
    content counts for 30 s): diagnostics and ``edgenode health --fresh`` use it.
    """
    t0 = time.perf_counter()
    errors: dict[str, str] = {}

    def section(name, fn, *args):
        try:
            return fn(*args)
        except Exception as e:  # a probe failing must not take the whole snapshot down
            log.warning("health: section %s failed: %s", name, e, exc_info=log.isEnabledFor(logging.DEBUG))
            errors[name] = f"{type(e).__name__}: {e}"
            return None

    snap = {
        "schema": SCHEMA_VERSION,
        "node": section("node", node_info, cfg),
        "system": section("system", probes.system, cfg.data_path),
        "network": section("network", probes.network),
        "content": section("content", cached_content, cfg, conn, fresh),
        "sync": section("sync", sync, cfg),
        "software": section("software", software, cfg, conn, fresh),
        "clock": section("clock", clock, cfg, conn),
    }
    from edgenode.node.health.warnings import evaluate

    snap["errors"] = errors
    snap["warnings"] = evaluate(cfg, snap, conn)
    snap["taken_at"] = snap["clock"]["wall_time"] if snap["clock"] else time.time()
    snap["duration_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    return snap


def minimal(cfg) -> dict:
    """What an anonymous LAN client may see."""
    return {"ok": True, "version": __version__}


def node_info(cfg) -> dict:
    key = str(cfg.data_path)
    if key not in _identities:
        from edgenode.core.identity import node_id
        _identities[key] = node_id(cfg)
    return {"id": _identities[key], "name": cfg.node.name, "township": cfg.node.township}


# --- content ----------------------------------------------------------------

def content(conn: sqlite3.Connection) -> dict:
    from edgenode.node.catalog import queries

    totals = queries.totals(conn)
    channels = q.visible_by_channel(conn)
    # The blobs table, not a walk of the store: a walk of a large store would
    # cost seconds, and verify keeps this table honest.
    store = q.blob_totals(conn)
    # The newest accepted bundle sequence per channel: what the hub compares with the latest published.
    seqs = q.channel_seqs(conn) if _has_table(conn, "channel_state") else {}
    verify = queries.last_verify(conn)
    if verify is not None:
        verify = {"at": verify["at"], "checked": verify["checked"], "bad": verify["bad"],
                  "missing": verify["missing"], "ok": verify["bad"] == 0 and verify["missing"] == 0}
    return {
        "resources": {"total": totals["resources"], "visible": totals["visible"],
                      "by_column": queries.column_counts(conn), "by_channel": channels},
        "channel_seq": seqs,
        "store": {"blobs": store[0], "bytes": store[1], "not_ok": store[2]},
        "last_verify": verify,
        "last_import": last_import(conn),
    }


def cached_content(cfg, conn: sqlite3.Connection, fresh: bool = False) -> dict:
    key = str(cfg.db_path)
    marks = (q.newest_store_check_id(conn), q.newest_import_id(conn) if _has_table(conn, "imports") else None)
    now = time.monotonic()
    with _qc_lock:
        hit = _contents.get(key)
    if hit and not fresh and hit[1] == marks and now - hit[0] < CONTENT_TTL:
        return hit[2]
    result = content(conn)
    with _qc_lock:
        _contents[key] = (now, marks, result)
    return result


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return q.has_table(conn, name)


def last_import(conn: sqlite3.Connection) -> dict | None:
    """The newest row of the bundles area's import history, or None before any import."""
    if not _has_table(conn, "imports"):
        return None
    row = q.newest_import(conn)
    if row is None:
        return None
    r = dict(row)
    return {"at": r.get("finished_at") or r.get("started_at"), "result": r.get("result"),
            "source": r.get("source"), "channel": r.get("channel"), "seq": r.get("seq"),
            "added": r.get("added", 0), "updated": r.get("updated", 0), "error_code": r.get("error_code")}


# --- sync -------------------------------------------------------------------

def _job_summary(vconn: sqlite3.Connection, kind: str) -> dict:
    attempt = q.last_job_attempt(vconn, kind)
    success = q.last_job_success(vconn, kind)
    error = q.last_job_failure(vconn, kind)
    return {
        "last_attempt": attempt["started_at"] if attempt else None,
        "last_state": attempt["state"] if attempt else None,
        "last_success": success["finished_at"] if success else None,
        "last_error": {"at": error["finished_at"], "message": error["message"]} if error else None,
    }


def outbox_backlog(cfg) -> dict:
    """The sync area's outbox backlog, with every field the schema names."""
    from edgenode.node.sync import outbox

    empty = {"available": False, "batches": 0, "bytes": 0, "oldest_at": None}
    data = dict(outbox.backlog(cfg) or {})
    data.setdefault("oldest_at", data.get("oldest"))  # the sync area names it "oldest"
    return {**empty, **data, "available": True}


def _no_jobs() -> dict:
    return {"last_attempt": None, "last_state": None, "last_success": None, "last_error": None}


def sync(cfg) -> dict:
    from edgenode.core.db import connect

    # Read-only and without open_volatile's integrity check: this runs on every
    # scrape, and the scheduler (which writes the file) checks and rebuilds it.
    jobs = {kind: _no_jobs() for kind in SYNC_KINDS}
    if cfg.volatile_db_path.exists():
        vconn = connect(cfg.volatile_db_path, synchronous="NORMAL", readonly=True)
        try:
            if _has_table(vconn, "jobs"):
                jobs = {kind: _job_summary(vconn, kind) for kind in SYNC_KINDS}
        finally:
            vconn.close()
    contacts = [jobs[k]["last_success"] for k in CONTACT_KINDS if jobs[k]["last_success"]]
    return {"jobs": jobs, "last_contact": max(contacts) if contacts else None, "outbox": outbox_backlog(cfg)}


# --- software ---------------------------------------------------------------

def quick_check(cfg, conn: sqlite3.Connection, *, fresh: bool = False) -> dict:
    """``PRAGMA quick_check``, at most once per QUICK_CHECK_TTL for all processes.

    The result is shared through DATA_DIR/health/quick_check.json so that web
    workers, the scheduler's heartbeat and the CLI do not each re-read the
    whole database; it is keyed by boot id and monotonic time, so a wall-clock
    jump cannot make a stale result look fresh.
    """
    path = cfg.data_path / "health" / "quick_check.json"
    boot_id, now = _boot_id(), time.monotonic()
    if not fresh:
        try:
            rec = json.loads(path.read_text())
            if rec["boot_id"] == boot_id and 0 <= now - rec["mono"] < QUICK_CHECK_TTL \
                    and rec["db"] == str(cfg.db_path):
                return {"ok": rec["ok"], "result": rec["result"], "checked_at": rec["checked_at"]}
        except (OSError, ValueError, KeyError, TypeError):
            pass
    with _qc_lock:  # one check at a time per process; others reuse it next time
        try:
            rows = q.quick_check_rows(conn)
        except sqlite3.DatabaseError as e:
            rows = [f"could not run: {e}"]
    result = {"ok": rows == ["ok"], "result": "; ".join(rows[:5]), "checked_at": time.time()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".quick_check.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**result, "boot_id": boot_id, "mono": now, "db": str(cfg.db_path)}))
        os.replace(tmp, path)
    except OSError as e:  # a read-only data dir only costs the sharing
        log.debug("cannot share the quick_check result: %s", e)
    return result


def _boot_id() -> str:
    try:
        return probes.BOOT_ID.read_text().strip()
    except OSError:
        return "unknown"


def software(cfg, conn: sqlite3.Connection, fresh: bool = False) -> dict:
    from edgenode.core.db import migrations_state

    migrations = migrations_state(conn)
    return {
        "version": __version__,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "config_digest": cfg.digest(),
        "config_source": cfg.source,
        "quick_check": quick_check(cfg, conn, fresh=fresh),
        "migrations": len(migrations),
        "installed_at": min((m["applied_at"] for m in migrations), default=None),
    }


# --- clock ------------------------------------------------------------------

def clock(cfg, conn: sqlite3.Connection) -> dict:
    out = probes.clock(cfg.data_path)
    # The newest time this node itself has written down: a wall clock far
    # behind it has gone backwards (typical of a box without an RTC battery).
    recorded = [out.pop("newest_wall_seen")]
    recorded.append(q.newest_migration_at(conn))
    recorded.append(q.newest_store_check_at(conn))
    newest = max((t for t in recorded if t), default=None)
    out["newest_recorded_at"] = newest
    out["behind_recorded_s"] = round(max(0.0, newest - out["wall_time"]), 1) if newest else 0.0
    return out


# --- the heartbeat's compact form (docs/protocol.md, "Heartbeat") -----------------

def compact(snap: dict) -> dict:
    """The heartbeat body the sync area posts to the hub, built from a snapshot."""
    sysd, content_d, sync_d, clk = (snap.get(k) or {} for k in ("system", "content", "sync", "clock"))
    disk = sysd.get("disk") or {}
    jobs = sync_d.get("jobs") or {}
    outbox = sync_d.get("outbox") or {}
    return {
        "node_id": (snap.get("node") or {}).get("id"),
        "version": (snap.get("software") or {}).get("version", __version__),
        "at": snap.get("taken_at"),
        "boot_id": clk.get("boot_id"),
        "uptime": sysd.get("uptime_s"),
        "disk": {"total": disk.get("total_bytes"), "used": disk.get("used_bytes"),
                 "free": disk.get("free_bytes"), "percent": disk.get("percent")},
        "cpu_percent": (sysd.get("cpu") or {}).get("percent"),
        "mem_percent": (sysd.get("memory") or {}).get("percent"),
        "catalog": {"resources": (content_d.get("resources") or {}).get("visible"),
                    "channels": content_d.get("channel_seq") or {}},
        "outbox": {"batches": outbox.get("batches", 0), "bytes": outbox.get("bytes", 0)},
        "last_pull": (jobs.get("pull") or {}).get("last_success"),
        "last_uplink": (jobs.get("uplink") or {}).get("last_success"),
        "clock": {"ntp_synced": clk.get("ntp_synchronized"), "wall": clk.get("wall_time"),
                  "monotonic": clk.get("monotonic_s"), "boot_count": clk.get("boot_count")},
        "warnings": [w["code"] for w in snap.get("warnings", [])],
    }


def heartbeat_payload(cfg, conn) -> dict:
    """What the sync heartbeat sends (its ``sync.heartbeat_snapshot`` hook)."""
    return compact(snapshot(cfg, conn))
