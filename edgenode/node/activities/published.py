"""County-published activities and campaigns inside signed bundles (the pipeline's hook).

Proposed manifest extension (docs/activities.md, "Publishing from the county"):
two optional top-level lists beside ``resources``, covered by the manifest's
minisign signature like everything else in it::

    "activities": [{"id": "lecture-12", "title": "…", "description": "…", "place": "…",
                    "start": "2026-12-01 19:30", "end": "2026-12-01 21:00", "capacity": 40,
                    "audit": true, "resource": "rice-planting-01", "cancelled": false}],
    "campaigns":  [{"id": "qunwen-2026", "title": "…", "rules": "…", "start": "…", "end": "…",
                    "daily_limit": 2, "items": [{"id": "12", "title": "…", "resource": "choir-12"}],
                    "ranking": {"as_of": 1795600000, "nodes": 31, "items": [{"item": "12", "votes": 3266}]}}]

Ids become ``<channel>.<id>`` on the node, like resources; ``resource`` is a
manifest id of the same channel or a full catalogue id (with a dot).  A later
bundle with the same id updates the activity or campaign (``cancelled: true``
cancels an activity and its open bookings).

The pipeline needs two small changes: accept ``"activities"`` and
``"campaigns"`` in ``format.TOP_FIELDS``, and call
``apply_manifest_sections(conn, manifest.channel, manifest.seq, data)`` inside
``_commit``'s transaction (``data`` = the verified manifest bytes).  It may
call :func:`check_manifest_sections` in ``verify`` to refuse a bad bundle
before copying its payload.  Both raise :class:`BundleSectionError`
(``E_MANIFEST_INVALID``), which rolls the whole import back.
"""

from __future__ import annotations

import json
import sqlite3

from edgenode.node.activities import queries as aq
from edgenode.node.activities.model import activity_fields
from edgenode.node.campaigns import queries as cq
from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError

SECTIONS = ("activities", "campaigns")
MAX_ENTRIES = 1000
DEFAULT_DAILY_VOTES = 2
ACTIVITY_FIELDS = {"id", "title", "description", "place", "start", "end", "capacity", "audit", "resource",
                   "cancelled"}
CAMPAIGN_FIELDS = {"id", "title", "rules", "start", "end", "daily_limit", "items", "ranking"}
ITEM_FIELDS = {"id", "title", "description", "resource"}


class BundleSectionError(EdgenodeError):
    def __init__(self, message: str):
        super().__init__("E_MANIFEST_INVALID", message, zh="内容包中的活动或评选信息有误，未导入", status=400)


def _resource(channel: str, value) -> str | None:
    if value in (None, ""):
        return None
    value = str(value)
    return value if "." in value else f"{channel}.{value}"


def _entries(doc: dict, name: str) -> list:
    entries = doc.get(name, [])
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise BundleSectionError(f"{name} must be a list of at most {MAX_ENTRIES} entries")
    return entries


def parse_sections(doc: dict, channel: str) -> dict:
    """Validated ``{"activities": [(id, fields, cancelled)], "campaigns": [(id, fields, ranking)]}``."""
    out: dict = {"activities": [], "campaigns": []}
    seen: set = set()
    for i, e in enumerate(_entries(doc, "activities")):
        if not isinstance(e, dict) or set(e) - ACTIVITY_FIELDS:
            raise BundleSectionError(f"activities[{i}]: not an object or unknown field(s) "
                                     f"{', '.join(sorted(map(str, set(e) - ACTIVITY_FIELDS))) if isinstance(e, dict) else ''}")
        try:
            eid = cq._id(e.get("id"), f"activities[{i}].id")
            f = activity_fields({**e, "resource_id": _resource(channel, e.get("resource"))})
        except EdgenodeError as err:
            raise BundleSectionError(f"activities[{i}]: {err.message}") from None
        if eid in seen:
            raise BundleSectionError(f"activities[{i}]: id {eid!r} is repeated")
        seen.add(eid)
        out["activities"].append((f"{channel}.{eid}", f, e.get("cancelled") is True))
    seen = set()
    for i, e in enumerate(_entries(doc, "campaigns")):
        if not isinstance(e, dict) or set(e) - CAMPAIGN_FIELDS:
            raise BundleSectionError(f"campaigns[{i}]: not an object or has unknown fields")
        items = e.get("items")
        if isinstance(items, list):
            for j, it in enumerate(items):
                if isinstance(it, dict) and set(it) - ITEM_FIELDS:
                    raise BundleSectionError(f"campaigns[{i}].items[{j}]: unknown fields")
            items = [{**it, "resource_id": _resource(channel, it.get("resource"))} if isinstance(it, dict) else it
                     for it in items]
        try:
            f = cq.campaign_fields({**e, "items": items}, default_limit=DEFAULT_DAILY_VOTES)
        except EdgenodeError as err:
            raise BundleSectionError(f"campaigns[{i}]: {err.message}") from None
        if f["id"] in seen:
            raise BundleSectionError(f"campaigns[{i}]: id {f['id']!r} is repeated")
        seen.add(f["id"])
        ranking = e.get("ranking")
        if ranking is not None and not (isinstance(ranking, dict) and isinstance(ranking.get("items"), list)
                                        and isinstance(ranking.get("as_of"), (int, float))):
            raise BundleSectionError(f"campaigns[{i}].ranking must be {{as_of, nodes, items: [...]}}")
        out["campaigns"].append((f"{channel}.{f['id']}", f, ranking))
    return out


def _doc(manifest_bytes: bytes) -> dict:
    try:
        doc = json.loads(manifest_bytes)
    except (ValueError, UnicodeDecodeError):
        raise BundleSectionError("manifest is not JSON") from None
    if not isinstance(doc, dict):
        raise BundleSectionError("manifest is not an object")
    return doc


def check_manifest_sections(manifest_bytes: bytes, channel: str) -> dict:
    """Validate without writing; returns counts (for ``verify`` and dry runs)."""
    parsed = parse_sections(_doc(manifest_bytes), channel)
    return {k: len(v) for k, v in parsed.items()}


def apply_manifest_sections(conn: sqlite3.Connection, channel: str, seq: int, manifest_bytes: bytes) -> dict:
    """Insert or update the bundle's activities and campaigns.  Joins the caller's transaction."""
    doc = _doc(manifest_bytes)
    if not any(k in doc for k in SECTIONS):
        return {"activities": 0, "campaigns": 0}
    parsed = parse_sections(doc, channel)
    source = f"bundle:{channel}:{int(seq)}"
    with transaction(conn):
        for aid, f, cancelled in parsed["activities"]:
            aq.upsert_published(conn, aid, f, source=source, cancelled=cancelled)
        for cid, f, ranking in parsed["campaigns"]:
            cq.save_campaign(conn, f, campaign_id=cid, origin="county", source=source)
            if ranking:
                cq.store_ranking(conn, cid, ranking["items"], as_of=ranking["as_of"],
                                 nodes=ranking.get("nodes") if isinstance(ranking.get("nodes"), int) else 0)
    return {k: len(v) for k, v in parsed.items()}


PROGRAMME_FILE = "programme.json"  # beside resources.json in a publisher's source folder


def sections_from_source(src_dir) -> dict:
    """The publisher's side (``bundles.build.build_bundle``): ``SRC/programme.json`` holding
    ``{"activities": [...], "campaigns": [...]}`` becomes the manifest's sections.  Checked here
    with the node's own rules, so the county cannot publish what nodes would refuse."""
    from pathlib import Path
    path = Path(src_dir) / PROGRAMME_FILE
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise BundleSectionError(f"{path}: not JSON: {e}") from None
    if not isinstance(doc, dict) or set(doc) - set(SECTIONS):
        raise BundleSectionError(f"{path}: expected an object with only {', '.join(SECTIONS)}")
    parse_sections(doc, "x")  # ids and fields; the channel prefix does not change validity
    return {k: doc[k] for k in SECTIONS if k in doc}


def commit_hook(conn, manifest, data, result) -> None:
    """The import pipeline's ``imports.commit`` hook: the county's activities and campaigns."""
    apply_manifest_sections(conn, manifest.channel, manifest.seq, data)
