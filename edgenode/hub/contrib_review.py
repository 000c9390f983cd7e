"""The county's review of contributions: adopt (credit, column), decline with a reason, and publish
the adopted ones as an ordinary signed bundle ("本县群众作品") that every node pulls."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time

from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.hub import contrib_campaigns, contrib_queries as q
from edgenode.hub import publish as hub_publish
from edgenode.hub.contrib import root, work_path
from edgenode.protocol.metadata import COLUMNS

TAG = "本县群众作品"
STATE_ZH = {"receiving": "接收中", "received": "待审核", "adopted": "已采用", "declined": "未采用"}


def get(conn: sqlite3.Connection, node_id: str, cid: str) -> dict:
    row = q.row(conn, node_id, cid)
    if row is None:
        raise EdgenodeError("E_CONTRIB_UNKNOWN", f"no contribution {node_id}/{cid}", zh="没有这个作品。", status=404)
    return dict(row)


def listing(conn: sqlite3.Connection, states: tuple[str, ...] = ()) -> list[dict]:
    return [{**dict(r), "state_zh": STATE_ZH.get(r["state"], r["state"])} for r in q.listing(conn, states)]


def adopt(conn: sqlite3.Connection, node_id: str, cid: str, *, title: str = "", credit: str | None = None,
          column: str = "shequ", campaign: str | None = None) -> dict:
    row = get(conn, node_id, cid)
    if column not in COLUMNS:
        raise EdgenodeError("E_CONTRIB_COLUMN", f"unknown column {column!r}", zh="没有这个栏目。")
    fields = {"state": "adopted", "reason": "", "column_key": column, "reviewed_at": time.time(),
              "title": " ".join(title.split())[:60] or row["title"],
              "credit": row["credit"] if credit is None else " ".join(credit.split())[:30],
              "campaign": row["campaign"] if campaign is None else campaign.strip()[:128]}
    with transaction(conn):
        if not q.update(conn, node_id, cid, expect=("received", "declined"), **fields):
            raise _state_error(row)
    return {"node_id": node_id, "cid": cid, "state": "adopted"}


def decline(conn: sqlite3.Connection, node_id: str, cid: str, reason: str) -> dict:
    reason = " ".join((reason or "").split())[:200]
    if not reason:
        raise EdgenodeError("E_CONTRIB_REASON", "give a reason", zh="请填写未采用的原因。")
    row = get(conn, node_id, cid)
    with transaction(conn):
        if not q.update(conn, node_id, cid, state="declined", reason=reason, reviewed_at=time.time(),
                        expect=("received", "adopted")) or row["published_seq"]:
            raise _state_error(row)
    return {"node_id": node_id, "cid": cid, "state": "declined"}


def _state_error(row) -> EdgenodeError:
    return EdgenodeError("E_CONTRIB_STATE", f"contribution is {row['state']}" +
                         (" and published" if row["published_seq"] else ""),
                         zh=f"这个作品现在是“{STATE_ZH.get(row['state'])}”，不能这样操作。", status=409)


def resource_id(row) -> str:
    return f"qz-{row['cid'][:16]}"


def publish(conn: sqlite3.Connection, cfg) -> dict:
    """Every adopted, unpublished work in one new bundle of ``contrib.channel``, signed by the county key."""
    rows = q.unpublished_adopted(conn)
    if not rows:
        raise EdgenodeError("E_CONTRIB_NOTHING", "no adopted work waits to be published", zh="没有待发布的作品。")
    src = root(cfg, "publish") / f"src-{os.getpid()}-{time.time_ns()}"
    src.mkdir()
    try:
        resources = []
        for r in rows:
            name = f"{resource_id(r)}.{r['ext']}"
            os.link(work_path(cfg, r), src / name)  # build_bundle copies (link=False): the work stays put
            who = r["credit"] or "佚名"
            resources.append({"id": resource_id(r), "path": name, "title": r["title"], "column": r["column_key"],
                              "description": f"作者：{who}。来自：{r['node_name'] or r['node_id']}。", "tags": [TAG],
                              "kind": r["kind"]})
        (src / "resources.json").write_text(json.dumps(resources, ensure_ascii=False), encoding="utf-8")
        entries, skipped = contrib_campaigns.sections(conn, cfg, rows, resource_id)
        contrib_campaigns.write_programme(src, entries)
        out = hub_publish.publish(conn, cfg, src, cfg["contrib.channel"])
        contrib_campaigns.record(conn, cfg, entries)
    finally:
        shutil.rmtree(src, ignore_errors=True)
    with transaction(conn):
        for r in rows:
            q.update(conn, r["node_id"], r["cid"], published_seq=out["seq"])
    return {**out, "works": len(rows), "campaigns": [c["id"] for c in entries], "not_joined": skipped}
