"""The hub's periodic work, one call for a systemd timer (``edgenode hub housekeeping``).

Alert rules and the webhook, heartbeat history and log trimming, the report to the
upstream hub when there is one.  Each step is independent: a failing upstream does not
stop the alerts.
"""

from __future__ import annotations

import sqlite3

from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.hub import alerts, heartbeat, heartbeat_queries, queries, registry_queries, tiers, tiers_queries
from edgenode.hub.registry import LOG_KEEP, log_event


def housekeeping(conn: sqlite3.Connection, cfg) -> dict:
    out: dict = {}
    r = alerts.evaluate(conn, cfg)
    out["alerts"] = {"opened": len(r["opened"]), "cleared": len(r["cleared"]), "webhook": r["webhook"]}
    with transaction(conn):
        nodes = heartbeat_queries.nodes_with_history(conn)
        for node_id in nodes:
            heartbeat.prune(conn, node_id, cfg.hub.heartbeat_history)
        top = registry_queries.max_log_id(conn) or 0
        registry_queries.delete_log_up_to(conn, top - LOG_KEEP)
    out["heartbeat_nodes_pruned"] = len(nodes)
    if tiers_queries.upstream(conn) is not None:
        try:
            out["upstream"] = tiers.forward(conn, cfg)
        except EdgenodeError as e:
            # Logged and retried at the next run: the built report stays pending.
            log_event(conn, "warning", e.code, None, f"upstream report: {e.message}")
            out["upstream"] = {"status": "failed", "code": e.code}
        try:  # villagers' works staff chose to forward (hub/contrib_forward.py)
            from edgenode.hub import contrib_forward
            out["contrib_forward"] = contrib_forward.send(conn, cfg)
        except EdgenodeError as e:
            log_event(conn, "warning", e.code, None, f"contribution forward: {e.message}")
            out["contrib_forward"] = {"status": "failed", "code": e.code}
    queries.checkpoint_wal(conn)
    return out
