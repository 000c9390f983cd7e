"""What a stick, a spool entry or a pulled tree carries beside its bundles: the county's key lists
(applied first, so a point never online follows rotation), other areas' extras (live schedules),
and software releases (handed to the updates area, never imported as content).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from edgenode.core import registry
from edgenode.node.imports import trust
from edgenode.node.imports.locate import stick_keylists
from edgenode.node.imports.outcome import database_failure

log = logging.getLogger(__name__)

# Hook points other areas register on (their area.py); this module imports none of them.
RELEASES = "imports.releases"    # (cfg, conn, root, source) -> [dict]: software releases beside the bundles
STICK = "imports.stick"          # (conn, root): a stick's or tree's extras beside its bundles (live schedules)


def stage_releases(cfg, conn: sqlite3.Connection, root: Path, source: str) -> list[dict]:
    """Hand software releases found under ``root`` to the updates area (docs/updates.md); they are logged,
    not imported: a release is never content."""
    out = []
    for stage in registry.hooks(RELEASES):
        try:
            out.extend(stage(cfg, conn, root, source))
        except Exception:  # a release that cannot be staged (disk full, I/O) never stops the content import
            log.exception("%s: staging the software release failed", root)
    for r in out:
        log.info("%s: software release %s: %s %s", root, r.get("version", ""), r["result"], r.get("code", ""))
    return out


def apply_stick_keylists(conn: sqlite3.Connection, root: Path) -> dict:
    """Follow the county's key lists on a stick before its bundles, for points never online."""
    lists = stick_keylists(root)
    if not lists:
        return {"applied": [], "skipped": [], "refused": None}
    try:
        out = trust.apply_chain(conn, lists)
    except sqlite3.Error as e:
        log.warning("key lists on %s not applied: %s", root, e)
        return {"applied": [], "skipped": [], "refused": {"code": database_failure(e)[0]}}
    if out["applied"]:
        log.info("%s: key lists %s applied", root, out["applied"])
    if out["refused"]:
        log.warning("W_KEYLIST_REFUSED: %s: key list #%s: %s", root, out["refused"]["seq"], out["refused"]["code"])
    return out


def apply_stick_extras(conn: sqlite3.Connection, root: Path) -> None:
    """What else a stick carries beside bundles, after its key lists (live: the signed schedules)."""
    for hook in registry.hooks(STICK):
        try:
            hook(conn, Path(root))
        except Exception:  # a stick's extras must never stop its bundles
            log.exception("W_STICK_EXTRAS: %s", root)
