"""Adopted works that were sent for a campaign (征集) join it, so villagers vote for them (点赞) at
every node like for any other item.

A campaign reaches nodes inside a county bundle (``programme.json`` → the manifest's
``campaigns`` section; node/activities/published.py), with the id ``<channel>.<id>``.  The
whole definition (rules, daily limit, items) is taken from the newest bundle of
``contrib.channel`` in the hub's own published tree that carries it, the new works are
appended as items, and the definition is published again in the contributions' bundle: a
node replaces the campaign's items and keeps the votes already cast.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from edgenode.hub import tally
from edgenode.hub.publish import channels_root
from edgenode.protocol.bundle import MANIFEST


def latest_definition(cfg, channel: str, local_id: str) -> dict | None:
    """The newest published definition of campaign ``local_id`` in ``channel`` (manifest order by seq)."""
    found = None
    for manifest in sorted((channels_root(cfg) / channel).glob(f"*/{MANIFEST}")):
        try:
            doc = json.loads(manifest.read_bytes())
        except (OSError, ValueError):
            continue
        for c in doc.get("campaigns") or []:
            if isinstance(c, dict) and c.get("id") == local_id:
                found = (doc.get("seq") or 0, c) if found is None or (doc.get("seq") or 0) >= found[0] else found
    return found[1] if found else None


def sections(conn: sqlite3.Connection, cfg, rows: list, resource_id) -> tuple[list[dict], dict[str, str]]:
    """``(campaign entries for programme.json, {node_id/cid: why not joined})`` for the adopted ``rows``."""
    channel = cfg["contrib.channel"]
    joined: dict[str, dict] = {}
    skipped = {}
    for r in rows:
        if not r["campaign"]:
            continue
        prefix = channel + "."
        local = r["campaign"][len(prefix):] if r["campaign"].startswith(prefix) else None
        entry = joined.get(local) if local else None
        if local and entry is None:
            entry = latest_definition(cfg, channel, local)
            if entry is not None:
                entry = joined[local] = json.loads(json.dumps(entry))  # a copy to extend
        if entry is None:
            skipped[f"{r['node_id']}/{r['cid']}"] = f"campaign {r['campaign']!r} is not published in {channel}"
            continue
        rid = resource_id(r)
        entry["items"] = [it for it in entry.get("items", []) if it.get("id") != rid]
        entry["items"].append({"id": rid, "title": r["title"], "resource": rid,
                               "description": f"作者：{r['credit'] or '佚名'}"})
    return list(joined.values()), skipped


def record(conn: sqlite3.Connection, cfg, entries: list[dict]) -> None:
    """The hub's own copy of the titles, for its ranking pages."""
    from edgenode.core.fields import parse_time

    for c in entries:
        tally.define_campaign(conn, f"{cfg['contrib.channel']}.{c['id']}", c["title"], parse_time(c["start"], "start", ""),
                              parse_time(c["end"], "end", ""), {it["id"]: it["title"] for it in c["items"]})


def write_programme(src: Path, entries: list[dict]) -> None:
    if entries:
        (src / "programme.json").write_text(json.dumps({"campaigns": entries}, ensure_ascii=False), encoding="utf-8")
