"""The latest diagnostics bundle per node, uploaded for county staff.

Staff ask for one on the node's page (or ``edgenode hub request-diagnostics``); the
node learns it from its next heartbeat's answer and uploads the redacted bundle
(``edgenode diagnose``'s) over the signed API; the request is cleared when it arrives.
A node's administrator can also push one with ``edgenode diagnose --upload``.

Stored as ``DATA_DIR/hub_diagnostics/<node_id>.tar.gz``, replaced atomically by
the next upload.  Checked to be a gzip tar holding ``manifest.json`` (listed,
never extracted: the bytes are the node's, and the node redacts its secrets).
"""

from __future__ import annotations

import io
import os
import sqlite3
import tarfile
import time
from pathlib import Path

from edgenode.core.errors import EdgenodeError
from edgenode.hub import diagnostics_queries as q
from edgenode.hub.registry import log_event


def diag_dir(cfg) -> Path:
    return cfg.data_path / "hub_diagnostics"


def path_for(cfg, node_id: str) -> Path:
    return diag_dir(cfg) / f"{node_id}.tar.gz"


def store(conn: sqlite3.Connection, cfg, node: dict, data: bytes) -> dict:
    try:
        if data[:2] != b"\x1f\x8b":
            raise tarfile.ReadError("not gzip")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            names = tar.getnames()
        # `edgenode diagnose` puts its parts under one folder (edgenode-diagnose/); accept that or the root.
        if not any(n == "manifest.json" or (n.count("/") == 1 and n.endswith("/manifest.json")) for n in names):
            raise tarfile.ReadError("no manifest.json")
    except (tarfile.TarError, EOFError, OSError) as e:
        log_event(conn, "warning", "E_DIAGNOSTICS", node["node_id"], f"refused diagnostics upload: {e}")
        raise EdgenodeError("E_DIAGNOSTICS", f"not a diagnostics bundle: {e}", zh="诊断包格式错误。") from None
    d = diag_dir(cfg)
    d.mkdir(parents=True, exist_ok=True, mode=0o750)
    final = path_for(cfg, node["node_id"])
    tmp = final.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    q.delete_request(conn, node["node_id"])
    log_event(conn, "info", "DIAGNOSTICS", node["node_id"], f"{len(data)} bytes, {len(names)} parts")
    return {"ok": True, "bytes": len(data)}


def request_bundle(conn: sqlite3.Connection, node_id: str, *, by: str = "") -> dict:
    """Ask the node for a bundle at its next heartbeat (asking again only moves the time)."""
    now = time.time()
    q.upsert_request(conn, node_id, now, by)
    log_event(conn, "info", "DIAGNOSTICS_REQUESTED", node_id, f"by {by or 'staff'}")
    return {"node_id": node_id, "requested_at": now}


def requested(conn: sqlite3.Connection, node_id: str) -> dict | None:
    row = q.request_for(conn, node_id)
    return dict(row) if row else None


def latest(cfg, node_id: str) -> dict | None:
    p = path_for(cfg, node_id)
    if not p.exists():
        return None
    st = p.stat()
    return {"path": p, "bytes": st.st_size, "at": st.st_mtime}


def received_at_text(info: dict | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(info["at"])) if info else ""
