"""The point administrator's decision: nothing leaves the node before it is approved here.

A rejected contribution's files are deleted at once; its row stays (title, reason)
so the admin page can say what happened.
"""

from __future__ import annotations

import sqlite3
import time

from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.node.contrib import queries as q
from edgenode.node.contrib import uploads

STATE_ZH = {"processing": "处理中", "pending": "待审核", "approved": "已批准，等待上传", "uploaded": "已上传",
            "adopted": "县中心已采用", "declined": "未采用", "rejected": "未通过（文件已删除）", "failed": "无法使用（文件已删除）"}


def get(conn: sqlite3.Connection, cid: str) -> dict:
    row = q.contribution(conn, cid) if uploads.UID.match(cid or "") else None
    if row is None:
        raise EdgenodeError("E_CONTRIB_UNKNOWN", f"no contribution {cid!r}", zh="没有这个作品。", status=404)
    return dict(row)


def listing(conn: sqlite3.Connection) -> list[dict]:
    return [{**dict(r), "state_zh": STATE_ZH.get(r["state"], r["state"])} for r in q.contributions(conn)]


def files_of(cfg, cid: str) -> list:
    return [p for p in uploads.area(cfg, "ready").glob(f"{cid}.*")]


def approve(cfg, conn: sqlite3.Connection, cid: str) -> dict:
    row = get(conn, cid)
    with transaction(conn):
        if not q.update(conn, cid, time.time(), state="approved", expect=("pending",)):
            raise EdgenodeError("E_CONTRIB_STATE", f"contribution is {row['state']}, not pending",
                                zh=f"这个作品现在是“{STATE_ZH.get(row['state'])}”，不能批准。", status=409)
    return {"id": cid, "state": "approved"}


def reject(cfg, conn: sqlite3.Connection, cid: str, reason: str) -> dict:
    reason = " ".join((reason or "").split())[:200]
    if not reason:
        raise EdgenodeError("E_CONTRIB_REASON", "give a reason", zh="请填写不通过的原因。")
    row = get(conn, cid)
    with transaction(conn):
        if not q.update(conn, cid, time.time(), state="rejected", reason=reason, expect=("pending", "approved")):
            raise EdgenodeError("E_CONTRIB_STATE", f"contribution is {row['state']}",
                                zh=f"这个作品现在是“{STATE_ZH.get(row['state'])}”，不能退回。", status=409)
    for p in files_of(cfg, cid):
        p.unlink(missing_ok=True)
    return {"id": cid, "state": "rejected"}
