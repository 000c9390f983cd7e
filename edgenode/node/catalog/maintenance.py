"""Store upkeep with the catalogue in step: verify and garbage collection.

Shared by the CLI (`edgenode store verify|gc`) and the scheduler's housekeeping.
"""

from __future__ import annotations

import logging

from edgenode.node.catalog import queries as q
from edgenode.core.db import transaction
from edgenode.core.locks import import_lock

log = logging.getLogger(__name__)


def verify_store(conn, store) -> dict:
    """Re-hash every blob; record the result, hide what needs a bad or missing blob, quarantine bad ones."""
    result = store.verify()
    result["missing"] = sorted(q.ok_hashes(conn) - {sha for sha, _ in store.iter_blobs()})
    with transaction(conn):
        q.record_verify(conn, result)
    for sha in result["bad"]:
        store.quarantine(sha)
        log.error("E_BLOB_CORRUPT: blob %s failed its hash check and was quarantined", sha)
    for sha in result["missing"]:
        log.error("E_BLOB_MISSING: blob %s is recorded but not in the store", sha)
    return result


def collect_garbage(cfg, conn, store, *, staging_older_than: float) -> dict:
    """Remove unreferenced blobs and stale staging files, never while an import is between move and commit."""
    with import_lock(cfg):
        result = store.gc(q.referenced_hashes(conn), staging_older_than=staging_older_than)
        with transaction(conn):
            q.forget_unreferenced_blobs(conn, result["removed"])
    return result


def housekeeping_verify(cfg, conn, store) -> dict:
    """Housekeeping step: re-hash the store, quarantining bad blobs."""
    checked = verify_store(conn, store)
    return {"checked": checked["checked"], "bad": len(checked["bad"]), "missing": len(checked["missing"])}


def housekeeping_gc(cfg, conn, store) -> dict:
    """Housekeeping step: blobs no resource references, and day-old staging leftovers."""
    gc = collect_garbage(cfg, conn, store, staging_older_than=86400)
    return {"gc_removed": len(gc["removed"]), "gc_bytes_freed": gc["bytes_freed"]}
