"""Votes, requests and feedback at the hub: stored per event, tallied and listed per node and keyword.

``ingest(conn, node_id, header, lines)`` is called by ``ingest.ingest_batch``
inside the transaction that stores the batch row, so a batch contributes its
votes exactly once (a redelivered batch never gets that far; the
``(node_id, seq)`` key is a second guard).  ``daily`` batches -- old events
the node summarised to fit its outbox cap -- carry no extras, so their votes
cannot be attributed to items; they show in ``hub_daily`` as kind ``vote``
only (docs/activities.md).

A campaign's window is enforced at the node, whose clock decides.  When the
county has loaded the campaign here (``define_campaign``), the ranking also
leaves out votes stamped outside the window, a guard against a node whose
clock was wrong.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time

from edgenode.core.db import transaction
from edgenode.hub import tally_queries as q
from edgenode.hub.days import local_day

VOTE, REQUEST, FEEDBACK = "vote", "request", "feedback"
MAX_TEXT = 400
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _text(v) -> str:
    return v[:MAX_TEXT] if isinstance(v, str) else ""


def ingest(conn: sqlite3.Connection, node_id: str, header: dict, lines: list[dict], *,
           offset_hours: float = 8.0) -> dict:
    """Store the votes, requests and feedback of one verified batch.  Joins the caller's transaction."""
    if header.get("kind") == "daily":  # a summarised batch keeps its tally events whole under "e"
        lines = [{"k": a["k"], "r": a["r"], **e} for a in lines for e in a.get("e", ())]
    elif header.get("kind") != "events":
        return {"votes": 0, "requests": 0}
    votes, reqs = [], []
    for e in lines:
        k, x = e["k"], e["x"] if isinstance(e["x"], dict) else {}
        if k == VOTE:
            c, i = x.get("campaign"), x.get("item")
            if isinstance(c, str) and isinstance(i, str) and _ID.match(c) and _ID.match(i):
                votes.append((node_id, e["s"], c, i, e["m"][:64], e["t"], local_day(e["t"], offset_hours)))
        elif k in (REQUEST, FEEDBACK):
            rating = x.get("rating")
            rating = rating if isinstance(rating, int) and not isinstance(rating, bool) and 1 <= rating <= 5 else None
            text = _text(x.get("text")) or _text(x.get("comment"))
            reqs.append((node_id, e["s"], k, (e["r"] or None), text, rating, e["t"], local_day(e["t"], offset_hours)))
    with transaction(conn):
        if votes:
            q.insert_votes(conn, votes)
        if reqs:
            q.insert_requests(conn, reqs)
    return {"votes": len(votes), "requests": len(reqs)}


# -- campaigns -------------------------------------------------------------------------------------

def define_campaign(conn: sqlite3.Connection, campaign_id: str, title: str, start_at: float, end_at: float,
                    items: dict[str, str]) -> None:
    """Record a campaign's titles and window here (the county publishes the same definition in a bundle)."""
    with transaction(conn):
        q.replace_campaign(conn, campaign_id, title, float(start_at), float(end_at),
                           json.dumps(items, ensure_ascii=False))


def campaigns(conn: sqlite3.Connection) -> list[dict]:
    """Every campaign with votes or a definition: id, title, votes, nodes."""
    return q.campaign_list(conn)


def ranking(conn: sqlite3.Connection, campaign: str) -> dict:
    """County-wide totals per item, best first, with the per-node breakdown."""
    window = q.campaign_window(conn, campaign)
    titles_row = q.campaign_titles(conn, campaign)
    titles = json.loads(titles_row["items"]) if titles_row else {}
    items = [{"item": r["item"], "votes": r["votes"], "title": titles.get(r["item"], r["item"])}
             for r in q.votes_per_item(conn, campaign, window)]
    for rank, it in enumerate(items, 1):
        it["rank"] = rank
    per_node = q.votes_per_node_and_item(conn, campaign, window)
    outside = 0
    if window is not None:
        outside = q.votes_outside(conn, campaign, window)
    return {"campaign": campaign, "title": titles_row["title"] if titles_row else campaign, "items": items,
            "total": sum(i["votes"] for i in items), "nodes": len({r["node_id"] for r in per_node}),
            "per_node": per_node, "outside_window": outside, "as_of": time.time()}


def rankings_for_nodes(conn: sqlite3.Connection) -> dict:
    """The compact form nodes fetch (``GET /api/v1/tally/rankings``)."""
    out = {}
    for c in campaigns(conn):
        r = ranking(conn, c["id"])
        out[c["id"]] = {"items": [{"item": i["item"], "votes": i["votes"]} for i in r["items"]], "nodes": r["nodes"]}
    return {"ok": True, "as_of": time.time(), "rankings": out}


# -- requests and feedback -------------------------------------------------------------------------

def requests(conn: sqlite3.Connection, *, node_id: str | None = None, keyword: str | None = None,
             kind: str | None = None, limit: int = 500) -> list[dict]:
    """Requests and feedback, newest first, filtered by node and a keyword in the text or resource id."""
    # Any other kind (None, a typo in a query string) lists both.
    return q.requests(conn, node_id=node_id, kind=kind if kind in (REQUEST, FEEDBACK) else None,
                      keyword=keyword, limit=limit)


def request_summary(conn: sqlite3.Connection, *, limit: int = 50) -> list[dict]:
    """Per node: how many requests and feedback, and the average rating."""
    return q.request_summary(conn, limit)
