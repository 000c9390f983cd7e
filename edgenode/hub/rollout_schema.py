"""The hub's tables for software rollouts (area ``hub_rollout``, docs/updates.md).

A rollout names one release version and puts every chosen node in a ring.  Each
node's row moves waiting → go (its ring is open: the heartbeat answer tells it to
install) → updated (it reports the version, health gate passed) or failed (it rolled
back, with the node's code and reason).  ``hub_rollout_log`` is the timestamped
record staff read, and the acceptance test reads for ring order.
"""

AREA = "hub_rollout"

MIGRATIONS = [
    (1, "rollouts", """
    CREATE TABLE hub_rollouts (
        id INTEGER PRIMARY KEY,
        version TEXT NOT NULL,
        state TEXT NOT NULL,                 -- running, halted, done, cancelled
        ring INTEGER NOT NULL DEFAULT 0,     -- the ring now open (0 = the first)
        max_fail_share REAL NOT NULL,
        created_at REAL NOT NULL,
        created_by TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        reason_zh TEXT NOT NULL DEFAULT '',
        finished_at REAL
    );
    CREATE TABLE hub_rollout_nodes (
        rollout_id INTEGER NOT NULL REFERENCES hub_rollouts(id),
        node_id TEXT NOT NULL,
        ring INTEGER NOT NULL,
        state TEXT NOT NULL,                 -- waiting, go, updated, failed
        go_at REAL,
        done_at REAL,
        code TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (rollout_id, node_id)
    );
    CREATE INDEX hub_rollout_nodes_node ON hub_rollout_nodes (node_id, state);
    CREATE TABLE hub_rollout_log (
        id INTEGER PRIMARY KEY,
        rollout_id INTEGER NOT NULL,
        at REAL NOT NULL,
        event TEXT NOT NULL,                 -- started, ring_open, node_updated, node_failed, halted, done
        ring INTEGER,
        node_id TEXT,
        detail TEXT NOT NULL DEFAULT ''
    );
    """),
]
