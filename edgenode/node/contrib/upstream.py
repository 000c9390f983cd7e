"""Approved contributions up to the county, resumably, signed by the node; deleted only on the hub's ack.

Runs inside sync's uplink job (hook ``sync.after_uplink``), so only in a window with a
link, after the usage batches; the window's ``bwlimit`` paces the chunks and its end
stops the transfer (the rest goes in the next window, from the hub's offset).

For each approved contribution: an *offer* (id, SHA-256, size, title …) answered
with the bytes the hub holds, then chunks of ``contrib.chunk_mb`` at exactly that
offset, each a request signed like a usage batch (``sync.client``).  The hub
hashes the whole file after the last byte and answers ``complete`` with the hash;
only when that hash equals ours does the row become ``uploaded`` and the files go.
A kill anywhere leaves the files here; the next run asks the hub where to resume.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from datetime import datetime

from edgenode.core import windows
from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.core.identity import load_or_create
from edgenode.core.store import file_sha256
from edgenode.node.contrib import moderation, process
from edgenode.node.contrib import queries as q
from edgenode.node.sync import client

log = logging.getLogger(__name__)
OFFER, STATUS = "/api/v1/contrib/offer", "/api/v1/contrib/status"


def _offer_doc(row) -> dict:
    return {"id": row["id"], "sha256": row["sha256"], "size": row["size"], "kind": row["kind"], "ext": row["ext"],
            "title": row["title"], "credit": row["credit"], "campaign": row["campaign"], "duration": row["duration"]}


def _acknowledged(cfg, conn, row, answer: dict) -> bool:
    if not (answer.get("complete") and answer.get("sha256") == row["sha256"]):
        return False
    with transaction(conn):  # the row first: a crash before the unlink leaves files that cleanup removes
        q.update(conn, row["id"], time.time(), state="uploaded", uploaded_at=time.time(), expect=("approved",))
    for p in moderation.files_of(cfg, row["id"]):
        p.unlink(missing_ok=True)
    return True


def send_one(cfg, conn, base_url: str, ident, session, row, *, bwlimit: int | None = None,
             deadline: float | None = None, stats: dict) -> bool:
    """Send one contribution from the hub's offset; True once the hub acknowledged the whole file."""
    path = process.ready_file(cfg, row)
    body = json.dumps(_offer_doc(row), ensure_ascii=False).encode()
    answer = client.call(cfg, base_url, "POST", OFFER, body=body, ident=ident, session=session)
    chunk = cfg["contrib.chunk_mb"] * 1024 * 1024
    hash_failures = 0
    with open(path, "rb") as f:
        while not answer.get("complete"):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            at = int(answer.get("offset", 0))
            stats["resent_bytes"] += max(0, stats["high"].get(row["id"], 0) - at)
            f.seek(at)
            data = f.read(chunk)
            if not data:
                break
            started = time.monotonic()
            try:
                answer = client.call(cfg, base_url, "POST", f"/api/v1/contrib/{row['id']}/chunk", body=data,
                                     ident=ident, session=session, content_type="application/octet-stream",
                                     headers={"X-Edgenode-Offset": str(at)})
            except client.HubRefused as e:
                if e.code == "E_CONTRIB_HASH":
                    hash_failures += 1
                    if hash_failures > 1 or file_sha256(path) != row["sha256"]:
                        raise EdgenodeError("E_CONTRIB_LOCAL_CORRUPT", f"{path.name} no longer has its recorded hash",
                                            zh="本机保存的作品文件已损坏，请重新上传。", status=500) from None
                elif e.code != "E_CONTRIB_OFFSET":
                    raise
                answer = client.call(cfg, base_url, "POST", OFFER, body=body, ident=ident, session=session)
                continue
            stats["sent_bytes"] += len(data)
            stats["high"][row["id"]] = max(stats["high"].get(row["id"], 0), at + len(data))
            if bwlimit:  # KiB/s of the window: pace, never burst above it
                time.sleep(max(0.0, len(data) / (bwlimit * 1024) - (time.monotonic() - started)))
    return _acknowledged(cfg, conn, row, answer)


def send_all(cfg, conn, base_url: str, *, bwlimit: int | None = None, deadline: float | None = None) -> dict:
    ident = load_or_create(cfg)
    session = client.session()
    stats = {"sent": 0, "sent_bytes": 0, "resent_bytes": 0, "high": {}, "refused": []}
    try:
        for row in q.contributions(conn, ("approved",)):
            try:
                if send_one(cfg, conn, base_url, ident, session, row, bwlimit=bwlimit, deadline=deadline, stats=stats):
                    stats["sent"] += 1
            except (client.HubRefused, OSError) as e:  # this work only; the others still go
                code = getattr(e, "code", "E_CONTRIB_FILE")
                log.warning("contribution %s not sent: %s: %s", row["id"], code, e)
                stats["refused"].append({"id": row["id"], "code": code})
            except EdgenodeError as e:
                if isinstance(e, client.HubUnreachable):
                    raise
                log.warning("contribution %s not sent: %s", row["id"], e)
                stats["refused"].append({"id": row["id"], "code": e.code})
        stats["county"] = fetch_states(cfg, conn, base_url, ident, session)
    finally:
        session.close()
    stats.pop("high")
    return stats


def fetch_states(cfg, conn, base_url: str, ident, session) -> int:
    """The county's decisions (采用 / 未采用 and why) onto the rows this node already sent."""
    rows = q.contributions(conn, ("uploaded", "adopted", "declined"))
    if not rows:
        return 0
    body = json.dumps({"ids": [r["id"] for r in rows][:1000]}).encode()
    answer = client.call(cfg, base_url, "POST", STATUS, body=body, ident=ident, session=session)
    changed = 0
    state_map = {"adopted": "adopted", "declined": "declined"}
    with transaction(conn):
        for s in answer.get("states", []):
            new = state_map.get(s.get("state"))
            if new:
                changed += q.update(conn, s["cid"], time.time(), state=new, reason=str(s.get("reason") or "")[:200],
                                    expect=("uploaded", "adopted", "declined"))
    return changed


def after_uplink(cfg, conn) -> dict:
    """Hook ``sync.after_uplink``: the link is up and the window open: send what was approved."""
    allowance = windows.allowance(windows.parse_windows(cfg["sync.windows"]), "uplink", datetime.now())
    deadline = None
    if allowance.until is not None:
        deadline = time.monotonic() + (allowance.until - datetime.now()).total_seconds()
    try:
        out = send_all(cfg, conn, client.require_hub(cfg, conn), bwlimit=allowance.bwlimit, deadline=deadline)
    except client.HubUnreachable as e:
        log.warning("contributions not sent: %s", e)
        return {"contrib_sent": 0}
    return {"contrib_sent": out["sent"], "contrib_bytes": out["sent_bytes"]}


def read_acks(cfg, conn, folder) -> int:
    """The county's signed ``acks.json`` on a stick: delete what the hub holds whole (same hash).
    Signed with a key this node trusts for ``contrib.channel`` (the county key from enrolment)."""
    from edgenode.node.imports import trust
    from edgenode.protocol import minisign

    body_path = folder / "acks.json"
    try:
        body = body_path.read_bytes()
        sig = minisign.verify_bytes(body, (folder / "acks.json.minisig").read_text(), trust.public_keys(conn))
        trust.require_channel(conn, sig.key_id_hex, cfg["contrib.channel"])
        acks = json.loads(body)["acks"]
    except FileNotFoundError:
        return 0
    except (EdgenodeError, ValueError, KeyError, TypeError) as e:
        log.warning("W_CONTRIB_ACKS: %s: not a county-signed acknowledgement (%s); nothing deleted", body_path, e)
        return 0
    done = 0
    for row in q.contributions(conn, ("approved",)):
        if isinstance(acks, dict) and acks.get(row["id"]) == row["sha256"]:
            done += _acknowledged(cfg, conn, row, {"complete": True, "sha256": acks[row["id"]]})
    return done


def export_hook(cfg, conn, dest_root) -> dict:
    """Hook ``sync.export_logs``: approved contributions onto the stick beside the usage logs,
    each file with its offer signed by the node; first the county's signed acknowledgements
    from the last trip are read, and what they name is deleted here and not exported again."""
    ident = load_or_create(cfg)
    dest = dest_root / "edgenode-contrib" / ident.node_id
    acked = read_acks(cfg, conn, dest)
    for row in q.contributions(conn, ("uploaded",)):  # the county has these: clear them off the stick
        for p in (dest / f"{row['id']}.{row['ext']}", dest / f"{row['id']}.json", dest / f"{row['id']}.json.sig"):
            p.unlink(missing_ok=True)
    n = 0
    for row in q.contributions(conn, ("approved",)):
        dest.mkdir(parents=True, exist_ok=True)
        src = process.ready_file(cfg, row)
        target = dest / f"{row['id']}.{row['ext']}"
        if not (target.exists() and target.stat().st_size == row["size"]):
            tmp = dest / f".{row['id']}.copying"
            with open(src, "rb") as a, open(tmp, "wb") as b:
                for block in iter(lambda: a.read(1 << 20), b""):
                    b.write(block)
                b.flush()
                os.fsync(b.fileno())
            os.replace(tmp, target)
        doc = json.dumps(_offer_doc(row), ensure_ascii=False, sort_keys=True).encode()
        (dest / f"{row['id']}.json").write_bytes(doc)
        (dest / f"{row['id']}.json.sig").write_bytes(base64.b64encode(ident.sign(doc)))
        n += 1
    return {"contributions": n, "contributions_acked": acked}
