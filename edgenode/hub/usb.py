"""``edgenode hub import-logs PATH``: usage logs carried by USB stick from unlinked points.

The stick's layout is in docs/protocol.md.  Every batch goes through
:func:`edgenode.hub.ingest.ingest_batch`, the same code and dedup as the
network upload; ``node.json``'s key is never trusted, only the enrolled one.
"""

from __future__ import annotations

import base64
import re
import sqlite3
from pathlib import Path

from cryptography.exceptions import InvalidSignature

from edgenode.core.errors import EdgenodeError
from edgenode.hub import heartbeat, registry_queries
from edgenode.hub.ingest import ingest_batch
from edgenode.hub.registry import NODE_ID, key_object, log_event

BATCH_NAME = re.compile(r"^([0-9a-f]{32})-(\d{12})\.batch$")


def logs_root(path: Path) -> Path:
    path = Path(path)
    for candidate in (path / "edgenode-logs", path):
        if candidate.is_dir() and any(NODE_ID.match(p.name) for p in candidate.iterdir() if p.is_dir()):
            return candidate
    raise EdgenodeError("E_USB_LOGS", f"{path}: no edgenode-logs/<node_id>/ folders found",
                        zh="U盘上没有找到服务点日志。", status=404)


def import_logs(conn: sqlite3.Connection, path: Path, *, offset_hours: float = 8.0, keep: int = 200) -> dict:
    """Ingest every node folder under PATH; returns per-node counts. Refusals are logged, not fatal."""
    root = logs_root(path)
    report = {"root": str(root), "nodes": []}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and NODE_ID.match(p.name)):
        report["nodes"].append(_import_node(conn, d, offset_hours, keep))
    return report


def _import_node(conn, d: Path, offset_hours: float, keep: int) -> dict:
    node_id = d.name
    out = {"node_id": node_id, "stored": 0, "duplicate": 0, "refused": [], "heartbeat": False, "contiguous": None}
    row = registry_queries.node_by_id(conn, node_id)
    if row is None:
        log_event(conn, "warning", "E_NODE_UNKNOWN", node_id, f"USB import from {d}")
        out["refused"].append({"file": str(d), "code": "E_NODE_UNKNOWN"})
        return out
    node = dict(row)
    if node["revoked_at"]:
        log_event(conn, "warning", "E_NODE_REVOKED", node_id, f"USB import from {d}")
        out["refused"].append({"file": str(d), "code": "E_NODE_REVOKED"})
        return out
    for f in sorted(d.iterdir()):
        m = BATCH_NAME.match(f.name)
        if not m:
            continue
        if m.group(1) != node_id:
            out["refused"].append({"file": f.name, "code": "E_BATCH_FORMAT"})
            continue
        sig = f.with_name(f.name + ".sig")
        try:
            res = ingest_batch(conn, node, int(m.group(2)), f.read_bytes(),
                               sig.read_text() if sig.exists() else "", offset_hours=offset_hours, source="usb")
        except EdgenodeError as e:
            out["refused"].append({"file": f.name, "code": e.code})
            continue
        out[res["status"]] += 1
        out["contiguous"] = res["contiguous"]
    hb, hb_sig = d / "heartbeat.json", d / "heartbeat.json.sig"
    if hb.exists():
        body = hb.read_bytes()
        try:
            key_object(node["public_key"]).verify(base64.b64decode(hb_sig.read_text().strip(), validate=True), body)
            _record_if_newer(conn, node, body, keep)
            out["heartbeat"] = True
        except (InvalidSignature, ValueError, OSError):
            log_event(conn, "warning", "E_BAD_SIGNATURE", node_id, "USB heartbeat signature does not verify")
            out["refused"].append({"file": hb.name, "code": "E_BAD_SIGNATURE"})
        except EdgenodeError as e:
            out["refused"].append({"file": hb.name, "code": e.code})
    log_event(conn, "info", "IMPORT_USB", node_id,
              f"{out['stored']} stored, {out['duplicate']} duplicate, {len(out['refused'])} refused")
    return out


def _record_if_newer(conn, node: dict, body: bytes, keep: int) -> None:
    # A stick carried for a week must not overwrite a fresher network heartbeat.
    snap = heartbeat.parse(body)
    at = snap.get("at") if isinstance(snap.get("at"), (int, float)) else None
    cur = heartbeat.latest(conn, node["node_id"])
    if cur is not None and at is not None and isinstance(cur.get("at"), (int, float)) and cur["at"] >= at:
        return
    heartbeat.record(conn, node, body, signed_ts=None, keep=keep)
