"""Run one sync job the same way for the scheduler, ``edgenode sync now`` and the admin page.

Order for each uplink job: window check → back-off → connectivity probe → work,
every run recorded with ``jobs.start/finish`` (kinds ``pull``, ``uplink``,
``heartbeat``, ``spool_scan``, ``housekeeping``).  A job with no window or no link
is *skipped*, not failed: consecutive skips update one row instead of adding
one per try, so a node offline for months does not grow its jobs table.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from edgenode.core import jobs
from edgenode.core import registry
from edgenode.core.db import open_main, open_volatile, vacuum
from edgenode.core.errors import EdgenodeError
from edgenode.node.sync import client, probe
from edgenode.node.sync import runner_queries as q
from edgenode.node.sync.area import AREA
from edgenode.core import windows
from edgenode.node.sync.client import HubUnreachable

log = logging.getLogger(__name__)
AFTER_UPLINK = "sync.after_uplink"  # hook point: (cfg, conn) -> dict merged into the uplink's result
# The kinds are sync's declarations (area.py), so the runner and the scheduler cannot disagree.
KINDS = tuple(j.kind for j in AREA.jobs)
UPLINK_KINDS = tuple(j.kind for j in AREA.jobs if j.link)
LINK_ORDER = tuple(j.kind for j in sorted(AREA.jobs, key=lambda j: j.order) if j.link)
LOCAL_KINDS = tuple(k for k in KINDS if k not in UPLINK_KINDS)


def _skip(vconn, kind: str, message: str) -> dict:
    last = jobs.recent(vconn, kind, limit=1)
    if last and last[0]["state"] == "skipped":
        jobs.finish(vconn, last[0]["id"], "skipped", message)  # a run of skips shares one row
    else:
        jobs.finish(vconn, jobs.start(vconn, kind, f"{kind} (skipped)"), "skipped", message)
    log.info("sync %s skipped: %s", kind, message)
    return {"kind": kind, "state": "skipped", "message": message}


def _target(cfg, conn, kind: str) -> str:
    if kind == "pull":
        if not cfg["sync.rsync_url"]:
            raise EdgenodeError("E_NO_RSYNC_URL", "sync.rsync_url is not set", zh="没有设置内容同步地址。")
        return cfg["sync.rsync_url"]
    return client.require_hub(cfg, conn)


def run_job(cfg, kind: str, *, ignore_windows: bool = False, now: datetime | None = None, **options) -> dict:
    """Run one job; returns ``{"kind", "state", "message", "result"}``.  Never raises for no link."""
    if kind not in KINDS:
        raise EdgenodeError("E_JOB_KIND", f"unknown job {kind!r}; one of {', '.join(KINDS)}", zh="未知的任务。")
    conn, vconn = open_main(cfg), open_volatile(cfg)
    try:
        return _run(cfg, conn, vconn, kind, ignore_windows, now or datetime.now(), options)
    finally:
        conn.close()
        vconn.close()


def run_in_order(cfg, kinds: list[str], **options) -> list[dict]:
    """Several jobs one after the other: uplink → heartbeat → pull first (usage goes up before the
    long content transfer takes the link), then the local ones."""
    for k in kinds:
        if k not in KINDS:
            raise EdgenodeError("E_JOB_KIND", f"unknown job {k!r}; one of {', '.join(KINDS)}", zh="未知的任务。")
    return [run_job(cfg, k, **options) for k in (*LINK_ORDER, *LOCAL_KINDS) if k in kinds]


def _run(cfg, conn, vconn, kind, ignore_windows, now, options) -> dict:
    allowance = windows.Allowance(True)
    if kind in UPLINK_KINDS:
        if not ignore_windows:
            allowance = windows.allowance(windows.parse_windows(cfg["sync.windows"]), kind, now)
            if not allowance.allowed:
                return _skip(vconn, kind, allowance.reason)
        if kind != "pull":
            _pending_enrolment(cfg, conn)
        try:
            url = _target(cfg, conn, kind)
        except EdgenodeError as e:
            return _skip(vconn, kind, f"{e.code}: {e.message}")
        link = "rsync" if kind == "pull" else "hub"
        wait = probe.waiting(conn, link)
        if wait and not ignore_windows:
            log.info("sync %s: backing off, next try in %d s", kind, wait)
            return _skip(vconn, kind, "backing off after link failures")
        p = probe.probe(url)
        if not p.ok:
            if kind == "uplink":
                _seal_offline(cfg, conn)
            delay = probe.failed(cfg, conn, link, f"{p.reason}: {p.detail}")
            log.warning("W_NO_LINK: %s: %s %s; next try in %d s or the next window", kind, p.reason, p.detail, delay)
            return _skip(vconn, kind, f"no link ({p.reason})")
    job_id = jobs.start(vconn, kind, kind)
    report = _reporter(vconn, job_id)
    try:
        result = _work(cfg, conn, kind, allowance, report, options)
    except HubUnreachable as e:
        if kind in UPLINK_KINDS:
            probe.failed(cfg, conn, "hub", e.message)
        jobs.finish(vconn, job_id, "skipped", f"{e.code}: {e.message}")
        return {"kind": kind, "state": "skipped", "message": f"{e.code}: {e.message}"}
    except EdgenodeError as e:
        jobs.finish(vconn, job_id, "failed", f"{e.code}: {e.message}")
        log.warning("sync %s failed: %s: %s", kind, e.code, e.message)
        return {"kind": kind, "state": "failed", "message": f"{e.code}: {e.message}"}
    except Exception as e:  # a scheduler job must record and survive anything
        log.exception("sync %s crashed", kind)
        jobs.finish(vconn, job_id, "failed", f"E_INTERNAL: {type(e).__name__}: {e}")
        return {"kind": kind, "state": "failed", "message": f"E_INTERNAL: {type(e).__name__}"}
    state = result.pop("_state", "done")
    if kind in UPLINK_KINDS and state != "failed":
        probe.succeeded(conn, "rsync" if kind == "pull" else "hub")
    message = result.pop("_message", "")
    jobs.finish(vconn, job_id, "done" if state in ("done", "partial") else state, message, result)
    return {"kind": kind, "state": state, "message": message, "result": result}


def _pending_enrolment(cfg, conn) -> None:
    # First boot may have recorded an enrolment that found no link (edgenode.node.sync.provision): retry it here,
    # inside a window, before the job needs the hub.
    from edgenode.node.sync import provision

    if client.hub_url(cfg, conn):
        return
    try:
        result = provision.retry_pending(cfg, conn)
    except Exception:  # never let a provisioning problem stop the sync job
        log.exception("pending enrolment retry failed")
        return
    if result:
        log.info("pending enrolment: %s", result.get("status"))


def _seal_offline(cfg, conn) -> None:
    # Sealing needs no link; doing it anyway keeps events safe in signed batches for export-logs.
    from edgenode.node.sync import uplink
    try:
        uplink.seal(cfg, conn)
    except EdgenodeError as e:
        log.warning("offline seal failed: %s", e)


def _reporter(vconn, job_id):
    def report(**fields):
        jobs.progress(vconn, job_id, **fields)
    return report


def _work(cfg, conn, kind, allowance, report, options) -> dict:
    if kind == "uplink":
        from edgenode.node.sync import uplink
        r = uplink.run(cfg, conn, client.require_hub(cfg, conn), progress=report)
        for after in registry.hooks(AFTER_UPLINK):  # campaigns: the county ranking, now that the link is up
            r.update(after(cfg, conn) or {})
        r["_message"] = f"sealed {r['sealed_events']} events, sent {r['sent']} batches ({r['events']} events)"
        return r
    if kind == "heartbeat":
        from edgenode.node.sync import heartbeat
        return heartbeat.send(cfg, conn, client.require_hub(cfg, conn))
    if kind == "pull":
        from edgenode.core.store import open_store
        from edgenode.node.sources import pull
        deadline = None
        if allowance.until is not None:
            deadline = time.monotonic() + (allowance.until - datetime.now()).total_seconds()
        first = None
        if cfg["swarm.min_bundle_mb"]:  # big bundles by swarm first (docs/fanout.md); libtorrent loads only then
            from edgenode.node.sources.swarm import by_swarm as first
        r = pull.pull(cfg, conn, open_store(cfg), bwlimit=allowance.bwlimit, deadline=options.get("deadline", deadline),
                      report=report, retries=options.get("retries"),
                      retry_delay=options.get("retry_delay", 2.0), first=first)
        if cfg.spool.dir and r["state"] != "partial":  # the link is up: what the satellite has not brought yet
            from edgenode.node.sources import carousel, fanout
            r["carousel"] = carousel.fetch_missing(cfg, conn, upstreams=fanout.upstreams(cfg, conn))
        r["_state"] = r["state"]
        r["_message"] = (f"{r['state']}: imported {r['imported']} bundles, {r['wire_bytes']} bytes moved"
                         + (f", {r['import_failures']} failed imports" if r["import_failures"] else ""))
        return r
    if kind == "spool_scan":
        return _spool_scan(cfg, conn)
    return _housekeeping(cfg, conn)


def _spool_scan(cfg, conn) -> dict:
    from edgenode.core.store import open_store
    from edgenode.node.sources import satellite

    result = satellite.scan_spool(cfg, conn, open_store(cfg))
    counts = {k: len(v) for k, v in result.items() if isinstance(v, list)} if isinstance(result, dict) else {}
    message = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "nothing new"
    return {"scanned": True, **counts, "_message": message}


def prune_jobs(vconn, keep_days: float = 30, now: float | None = None) -> int:
    """Forget this area's finished job rows older than ``keep_days``, keeping the latest row of
    each kind and state (health reads the last success and the last failure)."""
    cutoff = (time.time() if now is None else now) - keep_days * 86400
    return q.delete_old_jobs(vconn, KINDS, cutoff)


def prune_usage(cfg, conn, *, keep_days: int | None = None) -> dict:
    """Old usage events out of the node: only those the outbox has sealed and eviction has folded."""
    from edgenode.node.storage.eviction import refresh_last_played
    from edgenode.node.sync import outbox
    from edgenode.node.usage.retention import prune

    refresh_last_played(conn)  # folds every event so far, so the eviction planner needs none of the old ones
    sealed = outbox.state(conn)["sealed_upto"]
    return prune(conn, keep_days=cfg["usage.keep_days"] if keep_days is None else keep_days, upto=sealed)


def housekeeping_usage(cfg, conn, store) -> dict:
    """Housekeeping step: old usage events out (after storage has folded them, before the vacuum)."""
    return {"usage_events_pruned": prune_usage(cfg, conn)["pruned"]}


def _housekeeping(cfg, conn) -> dict:
    """Every area's housekeeping step in order (privacy purge, store verify, gc, usage), then a
    vacuum and the job rows' pruning."""
    from edgenode.core.store import open_store

    store = open_store(cfg)
    out: dict = {}
    for step in registry.housekeeping():
        out.update(registry.resolve(step.run)(cfg, conn, store))
    vacuum(conn)
    vconn = open_volatile(cfg)
    try:
        out["jobs_pruned"] = prune_jobs(vconn)
    finally:
        vconn.close()
    out["vacuum"] = True
    out["_message"] = (f"verified {out.get('checked', 0)} blobs ({out.get('bad', 0)} bad), "
                       f"freed {out.get('gc_bytes_freed', 0)} bytes, vacuumed")
    return out


def sync_now(cfg, kinds: list[str] | None = None, **options) -> list[dict]:
    """``edgenode sync now``: the chosen jobs immediately, ignoring windows and back-off."""
    return run_in_order(cfg, kinds or list(LINK_ORDER), ignore_windows=True, **options)
