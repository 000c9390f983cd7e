"""``edgenode hub contrib import-stick PATH``: contributions carried by USB stick from an unlinked point.

Layout (written by the node's ``export-logs``): ``PATH/edgenode-contrib/<node_id>/<cid>.<ext>``
with ``<cid>.json`` (the same offer the network sends) and ``<cid>.json.sig`` (the node's
Ed25519 signature over the JSON bytes, base64).  Only the enrolled key is trusted; the
file must match the signed SHA-256; the ``(node, cid)`` row dedups against the network.

The county answers on the same stick: ``acks.json`` lists every contribution of that node
the hub holds whole (id → SHA-256), signed with the county key (``acks.json.minisig``),
which the node trusts from its enrolment.  At the next ``export-logs`` the node deletes
exactly those files, as it does after a network acknowledgement.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

from cryptography.exceptions import InvalidSignature

from edgenode.core.errors import EdgenodeError
from edgenode.hub import contrib, registry_queries
from edgenode.hub.registry import NODE_ID, key_object, log_event

ACKS = "acks.json"


def import_stick(conn: sqlite3.Connection, cfg, path) -> dict:
    root = Path(path) / "edgenode-contrib"
    if not root.is_dir():
        raise EdgenodeError("E_USB_CONTRIB", f"{path}: no edgenode-contrib/ folder", zh="U盘上没有群众作品。", status=404)
    out = {"stored": 0, "duplicate": 0, "refused": []}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and NODE_ID.match(p.name)):
        row = registry_queries.node_by_id(conn, d.name)
        if row is None or row["revoked_at"]:
            out["refused"].append({"file": d.name, "code": "E_NODE_UNKNOWN" if row is None else "E_NODE_REVOKED"})
            continue
        for meta in sorted(p for p in d.glob("*.json") if p.name != ACKS):
            try:
                status = _one(conn, cfg, dict(row), meta)
                out[status] += 1
            except EdgenodeError as e:
                out["refused"].append({"file": meta.name, "code": e.code})
        write_acks(conn, cfg, d.name, d)
    return out


def write_acks(conn: sqlite3.Connection, cfg, node_id: str, dest: Path) -> int:
    from edgenode.hub import contrib_queries as q
    from edgenode.hub.keychain import county_key
    from edgenode.protocol import minisign

    held = {r["cid"]: r["sha256"] for r in q.listing(conn) if r["node_id"] == node_id and r["state"] != "receiving"}
    body = json.dumps({"node_id": node_id, "acks": held}, sort_keys=True).encode()
    (dest / ACKS).write_bytes(body)
    (dest / (ACKS + ".minisig")).write_text(minisign.sign_bytes(body, county_key(cfg),
                                                                 trusted_comment=f"edgenode contrib acks {node_id}"))
    return len(held)


def _one(conn, cfg, node: dict, meta: Path) -> str:
    body = meta.read_bytes()
    try:
        sig = base64.b64decode(meta.with_name(meta.name + ".sig").read_text().strip(), validate=True)
        key_object(node["public_key"]).verify(sig, body)
    except (InvalidSignature, ValueError, OSError):
        log_event(conn, "warning", "E_BAD_SIGNATURE", node["node_id"], f"USB contribution {meta.name}")
        raise EdgenodeError("E_BAD_SIGNATURE", f"{meta.name}: signature does not verify", zh="签名无效。") from None
    try:
        doc = json.loads(body)
    except ValueError:
        raise contrib.bad("not JSON") from None
    doc = contrib.check_offer(cfg, doc)
    data = meta.with_name(f"{doc['id']}.{doc['ext']}")
    if not data.is_file() or data.is_symlink():
        raise contrib.bad("the file is missing", "E_USB_CONTRIB", 404)
    return contrib.import_file(conn, cfg, node, doc, data)["status"]
