"""Campaigns: definition, voting with a per-terminal daily limit, local counts, county rankings.

A vote is accepted only inside the campaign's window and while the terminal
has votes left today (local day of the appliance).  The check and the two
writes (``camp_votes`` row + ``vote`` usage event) share one ``BEGIN
IMMEDIATE`` transaction, so two clicks at once cannot both take the last
vote.  The usage event (``x = {"campaign", "item"}``) travels upstream in the
sealed batches, whose sequence numbers make the hub count it exactly once.

A terminal is the random ``tid`` cookie (see ``edgenode/node/usage/beacons.py``), so
the limit is per browser, like the county platforms' per-account limit;
clearing cookies gives a new terminal (docs/activities.md discusses this).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from datetime import datetime

from edgenode.core.fields import clean_text, format_time, invalid, parse_int, parse_time
from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError, NotFound
from edgenode.node.usage import events

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
MAX_ITEMS = 500


def _id(value, what: str) -> str:
    text = str(value or "").strip()
    if not ID_RE.match(text):
        raise invalid("E_CAMPAIGN_INVALID", f"{what} must match {ID_RE.pattern}", f"{what}格式不正确")
    return text


def campaign_fields(doc: dict, *, default_limit: int) -> dict:
    """A validated campaign definition (CLI JSON file or bundle section)."""
    if not isinstance(doc, dict):
        raise invalid("E_CAMPAIGN_INVALID", "a campaign must be a JSON object", "评选活动格式不正确")
    items = doc.get("items")
    if not isinstance(items, list) or not 0 < len(items) <= MAX_ITEMS:
        raise invalid("E_CAMPAIGN_INVALID", f"items must be a list of 1 to {MAX_ITEMS} entries",
                      "评选活动需要参评作品")
    out_items, seen = [], set()
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            raise invalid("E_CAMPAIGN_INVALID", f"items[{i}] must be an object", "参评作品格式不正确")
        iid = _id(it.get("id"), f"items[{i}].id")
        if iid in seen:
            raise invalid("E_CAMPAIGN_INVALID", f"items[{i}].id {iid!r} is repeated", "参评作品编号重复")
        seen.add(iid)
        out_items.append({"item_id": iid, "title": clean_text(it.get("title"), f"items[{i}].title", "作品名称",
                                                              max_len=100),
                          "description": clean_text(it.get("description"), "description", "作品介绍",
                                                    max_len=2000, required=False, multiline=True),
                          "resource_id": clean_text(it.get("resource_id"), "resource_id", "关联资源", max_len=128,
                                                    required=False) or None,
                          "position": i})
    f = {"id": _id(doc.get("id"), "id"),
         "title": clean_text(doc.get("title"), "title", "评选名称", max_len=100),
         "rules": clean_text(doc.get("rules"), "rules", "投票规则", max_len=4000, required=False, multiline=True),
         "start_at": parse_time(doc.get("start"), "start", "开始时间"),
         "end_at": parse_time(doc.get("end"), "end", "结束时间"),
         "daily_limit": parse_int(doc.get("daily_limit", default_limit), "daily_limit", "每日票数", low=1, high=100),
         "items": out_items}
    if f["end_at"] <= f["start_at"]:
        raise invalid("E_TIME_ORDER", "end must be after start", "结束时间应晚于开始时间")
    return f


def save_campaign(conn: sqlite3.Connection, f: dict, *, campaign_id: str | None = None, origin: str = "local",
                  source: str = "cli") -> str:
    """Insert or replace a campaign and its items (caller may hold the transaction).  Votes
    already cast stay, including for items a newer definition drops."""
    cid = campaign_id or f["id"]
    with transaction(conn):
        conn.execute("""INSERT INTO camp_campaigns (id, title, rules, start_at, end_at, daily_limit, origin, source,
                        created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (id) DO UPDATE SET title = excluded.title, rules = excluded.rules,
                        start_at = excluded.start_at, end_at = excluded.end_at, daily_limit = excluded.daily_limit,
                        source = excluded.source""",
                     (cid, f["title"], f["rules"], f["start_at"], f["end_at"], f["daily_limit"], origin, source,
                      time.time()))
        conn.execute("DELETE FROM camp_items WHERE campaign_id = ?", (cid,))
        conn.executemany("INSERT INTO camp_items (campaign_id, item_id, title, description, resource_id, position) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         [(cid, it["item_id"], it["title"], it["description"], it["resource_id"], it["position"])
                          for it in f["items"]])
    return cid


def create_campaign(conn: sqlite3.Connection, cfg, doc: dict, *, source: str = "cli") -> dict:
    f = campaign_fields(doc, default_limit=cfg["campaigns.daily_votes"])
    if conn.execute("SELECT 1 FROM camp_campaigns WHERE id = ?", (f["id"],)).fetchone():
        raise EdgenodeError("E_CAMPAIGN_EXISTS", f"campaign {f['id']!r} exists", zh="该评选活动已存在", status=409)
    return get_campaign(conn, save_campaign(conn, f, source=source))


def _campaign(row, now: float) -> dict:
    c = dict(row)
    c["start"], c["end"] = format_time(c["start_at"]), format_time(c["end_at"])
    c["state"] = "upcoming" if now < c["start_at"] else "ended" if now > c["end_at"] else "open"
    return c


def get_campaign(conn: sqlite3.Connection, cid: str, *, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    row = conn.execute("SELECT * FROM camp_campaigns WHERE id = ?", (str(cid)[:128],)).fetchone()
    if row is None:
        raise NotFound(f"no campaign {cid!r}", zh="没有找到这个评选活动")
    c = _campaign(row, now)
    counts = local_counts(conn, c["id"])
    c["items"] = [{**dict(r), "votes": counts.get(r["item_id"], 0)} for r in conn.execute(
        "SELECT item_id, title, description, resource_id, position FROM camp_items WHERE campaign_id = ? "
        "ORDER BY position, item_id", (c["id"],))]
    c["local_total"] = sum(counts.values())
    c["county"] = county_ranking(conn, c["id"], titles={i["item_id"]: i["title"] for i in c["items"]})
    return c


def list_campaigns(conn: sqlite3.Connection, *, current: bool = False, now: float | None = None) -> list[dict]:
    """Every campaign newest first; ``current``: not yet ended."""
    now = time.time() if now is None else now
    sql = "SELECT * FROM camp_campaigns" + (" WHERE end_at >= ?" if current else " WHERE ? = ?")
    rows = conn.execute(sql + " ORDER BY start_at DESC", (now,) if current else (1, 1)).fetchall()
    return [_campaign(r, now) for r in rows]


def local_day(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d")


def votes_left(conn: sqlite3.Connection, cid: str, terminal: str, *, now: float | None = None) -> int:
    now = time.time() if now is None else now
    row = conn.execute("SELECT daily_limit FROM camp_campaigns WHERE id = ?", (cid,)).fetchone()
    if row is None:
        return 0
    used = conn.execute("SELECT count(*) FROM camp_votes WHERE campaign_id = ? AND terminal = ? AND day = ?",
                        (cid, terminal, local_day(now))).fetchone()[0]
    return max(row[0] - used, 0)


def vote(conn: sqlite3.Connection, cid: str, item_id: str, *, terminal: str, now: float | None = None) -> dict:
    """Cast one vote; refused outside the window, for an unknown item, or over today's limit."""
    now = time.time() if now is None else now
    with transaction(conn):
        c = conn.execute("SELECT * FROM camp_campaigns WHERE id = ?", (str(cid)[:128],)).fetchone()
        if c is None:
            raise NotFound(f"no campaign {cid!r}", zh="没有找到这个评选活动")
        item = conn.execute("SELECT item_id, title FROM camp_items WHERE campaign_id = ? AND item_id = ?",
                            (c["id"], str(item_id)[:128])).fetchone()
        if item is None:
            raise NotFound(f"no item {item_id!r} in campaign {cid!r}", zh="没有找到这个参评作品")
        if now < c["start_at"]:
            raise EdgenodeError("E_VOTE_NOT_STARTED", "voting has not started yet",
                                zh=f"投票尚未开始，开始时间：{format_time(c['start_at'])}", status=409)
        if now > c["end_at"]:
            raise EdgenodeError("E_VOTE_ENDED", "voting has ended",
                                zh=f"投票已于 {format_time(c['end_at'])} 结束，不能再投票", status=409)
        day = local_day(now)
        used = conn.execute("SELECT count(*) FROM camp_votes WHERE campaign_id = ? AND terminal = ? AND day = ?",
                            (c["id"], terminal, day)).fetchone()[0]
        if used >= c["daily_limit"]:
            raise EdgenodeError("E_VOTE_LIMIT", f"this terminal used its {c['daily_limit']} votes for today",
                                zh=f"每人每天限投{c['daily_limit']}票，今天的票已经投完了，明天再来吧", status=429)
        conn.execute("INSERT INTO camp_votes (campaign_id, item_id, terminal, day, at) VALUES (?, ?, ?, ?, ?)",
                     (c["id"], item["item_id"], terminal, day, now))
        events.record(conn, [{"kind": "vote", "terminal": terminal, "at": now,
                              "data": {"campaign": c["id"], "item": item["item_id"]}}])
    return {"campaign": c["id"], "item": item["item_id"], "title": item["title"],
            "left": c["daily_limit"] - used - 1, "daily_limit": c["daily_limit"]}


def local_counts(conn: sqlite3.Connection, cid: str) -> dict[str, int]:
    return {r[0]: r[1] for r in conn.execute(
        "SELECT item_id, count(*) FROM camp_votes WHERE campaign_id = ? GROUP BY item_id", (cid,))}


# -- county-wide ranking ---------------------------------------------------------------------------

def campaign_ids(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT id FROM camp_campaigns")}


def has_campaigns(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM camp_campaigns LIMIT 1").fetchone() is not None


def store_ranking(conn: sqlite3.Connection, cid: str, ranking: list, *, as_of: float, nodes: int = 0) -> bool:
    """Keep the hub's ranking unless we already hold a newer one.  Returns whether it was stored."""
    clean = []
    for r in ranking if isinstance(ranking, list) else []:
        if isinstance(r, dict) and isinstance(r.get("item"), str) and isinstance(r.get("votes"), int) \
                and not isinstance(r.get("votes"), bool) and r["votes"] >= 0:
            clean.append({"item": r["item"][:128], "votes": r["votes"]})
    clean.sort(key=lambda r: (-r["votes"], r["item"]))
    with transaction(conn):
        cur = conn.execute("""INSERT INTO camp_rankings (campaign_id, ranking, nodes, as_of, received_at)
                              VALUES (?, ?, ?, ?, ?) ON CONFLICT (campaign_id) DO UPDATE SET
                              ranking = excluded.ranking, nodes = excluded.nodes, as_of = excluded.as_of,
                              received_at = excluded.received_at WHERE excluded.as_of >= camp_rankings.as_of""",
                           (cid, json.dumps(clean, ensure_ascii=False), int(nodes), float(as_of), time.time()))
    return cur.rowcount == 1


def county_ranking(conn: sqlite3.Connection, cid: str, *, titles: dict | None = None) -> dict | None:
    row = conn.execute("SELECT * FROM camp_rankings WHERE campaign_id = ?", (cid,)).fetchone()
    if row is None:
        return None
    items = json.loads(row["ranking"])
    for rank, it in enumerate(items, 1):
        it["rank"] = rank
        it["title"] = (titles or {}).get(it["item"], it["item"])
    return {"items": items, "nodes": row["nodes"], "as_of": format_time(row["as_of"]),
            "received": format_time(row["received_at"])}
