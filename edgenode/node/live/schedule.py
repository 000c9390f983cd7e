"""Taking in a live schedule: from a bundle's ``"live"`` section, a heartbeat answer, or a stick.

Every way ends in :func:`_apply`: the broadcasts checked (fields, no overlap
with the channel's other broadcasts, stream and poster under ``live.origins``)
and written in one transaction, or refused whole with a code and Chinese text.
A standalone document must be signed by a key trusted for its channel and be
newer than the last one applied (``E_ROLLBACK``), like a bundle.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

from edgenode.core.db import transaction
from edgenode.node.imports import trust
from edgenode.node.live import queries as q
from edgenode.node.sync import client
from edgenode.protocol import live, minisign

log = logging.getLogger(__name__)
SECTION = "live"          # the manifest's top-level list
STICK_DIR = "edgenode-live"  # <stick>/edgenode-live/<channel>.json + .minisig


def origins(cfg, conn: sqlite3.Connection) -> list[str]:
    """``live.origins``; empty: the hub this node is enrolled with (scheme, host and port)."""
    if cfg["live.origins"]:
        return list(cfg["live.origins"])
    url = client.hub_url(cfg, conn)
    if not url:
        return []
    parts = urlsplit(url)
    return [f"{parts.scheme}://{parts.netloc}/"]


def _check(cfg, conn, broadcasts: list[dict], channel: str) -> None:
    # A bundle's hook has no config: its origins are checked by the relay before it fetches anything.
    allowed = origins(cfg, conn) if cfg is not None else None
    for b in broadcasts:
        if allowed is not None and not b["cancelled"]:
            live.check_origin(b["stream_url"], allowed)
            if b["poster"]:
                live.check_origin(b["poster"], allowed)
    mine = {b["key"] for b in broadcasts}
    live.check_overlap([b for b in q.channel_broadcasts(conn, channel) if b["key"] not in mine] + broadcasts)


def _apply(cfg, conn, broadcasts: list[dict], channel: str, source: str) -> int:
    with transaction(conn):
        _check(cfg, conn, broadcasts, channel)
        for b in broadcasts:
            q.upsert_broadcast(conn, b, source)
    return len(broadcasts)


# -- bundles (the import pipeline's hooks) -----------------------------------
def _section(data: bytes):
    import json
    try:
        return json.loads(data).get(SECTION)
    except (ValueError, AttributeError):
        return None


def check_hook(data: bytes, channel: str) -> None:
    """``imports.check``: refuse a bundle with a malformed schedule before copying its payload."""
    entries = _section(data)
    if entries is not None:
        live.parse_broadcasts(entries, channel)


def commit_hook(conn, manifest, data, result) -> None:
    """``imports.commit``: inside the import's transaction, so a refused schedule rolls the import back."""
    entries = _section(data)
    if entries is None:
        return
    _apply(None, conn, live.parse_broadcasts(entries, manifest.channel), manifest.channel,
           f"bundle:{manifest.channel}:{manifest.seq}")


def sections_from_source(src_dir) -> dict:
    """``bundle.sections_from_source``: ``SRC/live.json`` (a list of broadcasts) becomes ``"live"``."""
    import json
    path = Path(src_dir) / "live.json"
    if not path.is_file():
        return {}
    entries = json.loads(path.read_text(encoding="utf-8"))
    live.parse_broadcasts(entries, "x")
    return {SECTION: entries}


def stick_hook(conn, root: Path) -> None:
    """``imports.stick``: a stick's (or a spool tree's) schedules, whenever its bundles are imported.  No
    config here: the relay checks the stream URLs against ``live.origins`` before fetching."""
    r = apply_stick(None, conn, root)
    for a in r["applied"]:
        log.info("%s: live schedule %s #%s applied", root, a["channel"], a["seq"])
    for f in r["refused"]:
        log.warning("W_LIVE_SCHEDULE: %s: %s: %s", root, f["file"], f["code"])


# -- standalone signed documents ---------------------------------------------
def apply_document(cfg, conn: sqlite3.Connection, data: bytes, sig_text: str) -> dict:
    """A signed schedule document; returns ``{"channel", "seq", "broadcasts", "unchanged"}``."""
    sig = minisign.verify_bytes(data, sig_text, trust.public_keys(conn))
    doc = live.parse_document(data)
    trust.require_channel(conn, sig.key_id_hex, doc["channel"])
    sha = hashlib.sha256(data).hexdigest()
    last = q.schedule_seq(conn, doc["channel"])
    if last is not None and (doc["seq"], sha) == last:
        return {"channel": doc["channel"], "seq": doc["seq"], "broadcasts": 0, "unchanged": True}
    if last is not None and doc["seq"] <= last[0]:
        raise trust.TrustError("E_ROLLBACK", f"live schedule of {doc['channel']!r}: sequence {doc['seq']} is not "
                               f"newer than {last[0]}", zh="这是比本机已有的更旧的直播预告，未采用")
    with transaction(conn):
        n = _apply(cfg, conn, doc["broadcasts"], doc["channel"], f"schedule:{doc['channel']}:{doc['seq']}")
        q.save_schedule_seq(conn, doc["channel"], doc["seq"], sha)
    log.info("live schedule %s #%d: %d broadcasts", doc["channel"], doc["seq"], n)
    return {"channel": doc["channel"], "seq": doc["seq"], "broadcasts": n, "unchanged": False}


def apply_answer(cfg, conn, answer: dict) -> dict:
    """``sync.heartbeat_answer``: the schedules a heartbeat answer carries (``"live_schedules"``)."""
    out: dict = {}
    for item in answer.get("live_schedules") or []:
        try:
            r = apply_document(cfg, conn, item["schedule"].encode("utf-8"), item["signature"])
            if not r["unchanged"]:
                out.setdefault("live_schedules_applied", []).append(f"{r['channel']}#{r['seq']}")
        except (live.LiveError, minisign.SignatureError, trust.TrustError) as e:
            log.warning("W_LIVE_SCHEDULE: %s: %s", e.code, e.message)
            out.setdefault("live_schedule_errors", []).append(e.code)
        except (KeyError, TypeError, AttributeError):
            out.setdefault("live_schedule_errors", []).append("E_LIVE_SCHEDULE")
    return out


def apply_stick(cfg, conn, root: Path) -> dict:
    """Schedules on a stick: ``edgenode-bundles/edgenode-live/<channel>.json`` with its ``.minisig``."""
    from edgenode.node.imports.locate import stick_folder
    applied, refused = [], []
    base = stick_folder(Path(root)) or Path(root)
    for path in sorted((base / STICK_DIR).glob("*.json")):
        sig = path.with_name(path.name + ".minisig")
        try:
            r = apply_document(cfg, conn, path.read_bytes()[:live.MAX_DOC_BYTES + 1],
                               sig.read_text(encoding="utf-8")[:minisign.MAX_SIG_FILE])
            applied.append(r)
        except OSError:
            refused.append({"file": path.name, "code": "E_SIG_MISSING"})
        except (live.LiveError, minisign.SignatureError, trust.TrustError) as e:
            refused.append({"file": path.name, "code": e.code, "zh": e.zh})
    return {"applied": applied, "refused": refused}
