"""Alert rows: raised once per (rule, node, subject) while open, cleared when the condition ends."""

from __future__ import annotations

import sqlite3
import time

from edgenode.core.db import transaction
from edgenode.hub import alerts_queries as q, ingest_queries
from edgenode.hub.problems import forget_ended_notes


def raise_alert(conn: sqlite3.Connection, rule: str, node_id: str, subject: str = "", detail: str = "") -> bool:
    """Open an alert unless the same one is already open; True when it is new."""
    with transaction(conn):
        return q.insert_alert_unless_open(conn, rule, node_id, subject, detail, time.time())


def open_alerts(conn: sqlite3.Connection, node_id: str | None = None) -> list[dict]:
    return q.open_alerts(conn, node_id)


# Rules evaluated over the fleet; 'conflict' alerts are raised by ingest and stay open
# until a staff member acknowledges them, because nothing later resolves them by itself.
FLEET_RULES = ("offline", "late", "never", "disk", "integrity", "clock", "behind", "backlog", "imports", "security")


def evaluate(conn: sqlite3.Connection, cfg, *, now: float | None = None, notify: bool = True) -> dict:
    """Open alerts for current fleet problems, clear those that ended; returns what changed."""
    from edgenode.hub.fleet import fleet

    current: dict[tuple, str] = {}
    for row in fleet(conn, cfg, now=now):
        for p in row["problems"]:
            if p["rule"] in FLEET_RULES:
                current[(p["rule"], row["node_id"], p["subject"])] = f"{row['name']}: {p['detail']}"
    stamp = time.time() if now is None else now
    opened, cleared = [], []
    with transaction(conn):
        existing = q.open_alert_ids(conn, FLEET_RULES)
        for key, detail in current.items():
            if key not in existing:
                q.insert_alert(conn, *key, detail, stamp)
                opened.append({"rule": key[0], "node_id": key[1], "subject": key[2], "detail": detail})
            else:
                q.set_alert_detail(conn, existing[key], detail)
        for key, alert_id in existing.items():
            if key not in current:
                q.clear_alert(conn, alert_id, stamp)
                cleared.append({"rule": key[0], "node_id": key[1], "subject": key[2]})
        forget_ended_notes(conn, set(current))
    result = {"opened": opened, "cleared": cleared, "webhook": None}
    if notify and cfg.hub.webhook_url:
        result["webhook"] = notify_webhook(conn, cfg.hub.webhook_url)
    return result


def acknowledge(conn: sqlite3.Connection, alert_id: int) -> int:
    with transaction(conn):
        return q.clear_open_alert(conn, alert_id, time.time())


def notify_webhook(conn: sqlite3.Connection, url: str, timeout: float = 10.0) -> str:
    """POST open, not yet notified alerts as one JSON document; marks them notified on a 2xx."""
    import json
    import urllib.error
    import urllib.request

    pending = q.open_unnotified(conn)
    if not pending:
        return "nothing new"
    body = json.dumps({"source": "edgenode-hub", "alerts": pending}, ensure_ascii=False).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status = resp.status
    except (urllib.error.URLError, OSError) as e:
        # Not fatal: alerts stay un-notified and go out with the next evaluation.
        from edgenode.hub.registry import log_event
        log_event(conn, "warning", "E_WEBHOOK", None, f"webhook failed: {getattr(e, 'reason', e)}")
        return "failed"
    if 200 <= status < 300:
        with transaction(conn):
            q.mark_notified(conn, [(time.time(), a["id"]) for a in pending])
        return f"sent {len(pending)}"
    return f"failed: HTTP {status}"


def metrics_text(conn: sqlite3.Connection, cfg, *, now: float | None = None) -> str:
    """Prometheus text format for the hub: fleet status, problems, alerts, channels, ingest totals."""
    from edgenode.hub.fleet import fleet, latest_channels, summary

    rows = fleet(conn, cfg, now=now)
    s = summary(rows, latest_channels(conn))
    out = ["# HELP edgenode_hub_nodes Enrolled nodes by heartbeat status.", "# TYPE edgenode_hub_nodes gauge"]
    out += [f'edgenode_hub_nodes{{status="{k}"}} {v}' for k, v in s["by_status"].items()]
    out += ["# HELP edgenode_hub_problems Current fleet problems by rule.", "# TYPE edgenode_hub_problems gauge"]
    counts = {r: 0 for r in (*FLEET_RULES, "conflict")}
    for row in rows:
        for p in row["problems"]:
            counts[p["rule"]] += 1
    out += [f'edgenode_hub_problems{{rule="{k}"}} {v}' for k, v in counts.items()]
    out += ["# HELP edgenode_hub_alerts_open Open alerts by rule.", "# TYPE edgenode_hub_alerts_open gauge"]
    open_counts = q.open_counts_by_rule(conn)
    out += [f'edgenode_hub_alerts_open{{rule="{k}"}} {open_counts.get(k, 0)}' for k in (*FLEET_RULES, "conflict")]
    out += ["# HELP edgenode_hub_channel_latest_seq Latest published sequence per channel.",
            "# TYPE edgenode_hub_channel_latest_seq gauge"]
    out += [f'edgenode_hub_channel_latest_seq{{channel="{_esc(k)}"}} {v["latest"]}' for k, v in s["channels"].items()]
    out += ["# HELP edgenode_hub_channel_nodes_at_latest Nodes holding the latest sequence of a channel.",
            "# TYPE edgenode_hub_channel_nodes_at_latest gauge"]
    out += [f'edgenode_hub_channel_nodes_at_latest{{channel="{_esc(k)}"}} {v["at_latest"]}'
            for k, v in s["channels"].items()]
    b, e = ingest_queries.stored_totals(conn)
    out += ["# HELP edgenode_hub_batches_stored_total Usage batches stored.", "# TYPE edgenode_hub_batches_stored_total counter",
            f"edgenode_hub_batches_stored_total {b}",
            "# HELP edgenode_hub_events_stored_total Usage events stored.", "# TYPE edgenode_hub_events_stored_total counter",
            f"edgenode_hub_events_stored_total {e}"]
    return "\n".join(out) + "\n"


def _esc(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
