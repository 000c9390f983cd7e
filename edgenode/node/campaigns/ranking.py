"""Fetching the county-wide ranking from the hub (signed ``GET /api/v1/tally/rankings``).

Called by the uplink after it has sent the batches (so the ranking includes
this node's newest votes), or by hand: ``edgenode campaign fetch-ranking``.
With no link it simply fails with ``E_HUB_UNREACHABLE``; the portal keeps
showing the last ranking it has, with its date.
"""

from __future__ import annotations

import sqlite3

from edgenode.node.campaigns.queries import campaign_ids, has_campaigns, store_ranking
from edgenode.core.identity import load_or_create
from edgenode.node.sync import client

PATH = "/api/v1/tally/rankings"


def fetch_rankings(cfg, conn: sqlite3.Connection, *, base_url: str | None = None) -> dict:
    """Store the hub's ranking of every campaign this node knows; returns what was stored."""
    url = base_url or client.require_hub(cfg, conn)
    answer = client.call(cfg, url, "GET", PATH, ident=load_or_create(cfg))
    known = campaign_ids(conn)
    stored = []
    rankings = answer.get("rankings") if isinstance(answer.get("rankings"), dict) else {}
    as_of = answer.get("as_of") if isinstance(answer.get("as_of"), (int, float)) else 0
    for cid, r in rankings.items():
        if cid in known and isinstance(r, dict):
            nodes = r.get("nodes") if isinstance(r.get("nodes"), int) else 0
            if store_ranking(conn, cid, r.get("items"), as_of=float(as_of), nodes=nodes):
                stored.append(cid)
    return {"stored": stored, "as_of": as_of}


def refresh_quietly(cfg, conn: sqlite3.Connection) -> dict:
    """For the uplink job: fetch the rankings, but never fail the job over them (an older hub
    without the endpoint answers 404; the next uplink tries again)."""
    import logging

    from edgenode.core.errors import EdgenodeError
    if not has_campaigns(conn):
        return {"stored": [], "skipped": "no campaigns"}
    try:
        return fetch_rankings(cfg, conn)
    except EdgenodeError as e:
        logging.getLogger(__name__).warning("W_RANKING_FETCH: %s", e)
        return {"stored": [], "error": e.code}


def after_uplink(cfg, conn: sqlite3.Connection) -> dict:
    """The sync uplink's ``sync.after_uplink`` hook: the rankings ride on the same link window."""
    return {"rankings": refresh_quietly(cfg, conn)}
