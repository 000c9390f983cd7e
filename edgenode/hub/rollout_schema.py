"""The hub's tables for software rollouts (area ``hub_rollout``, docs/updates.md).

A rollout names one release version and puts every chosen node in a ring.  Each
node's row moves waiting → go (its ring is open: the heartbeat answer tells it to
install) → updated (it reports the version, health gate passed) or failed (it rolled
back, with the node's code and reason).  ``hub_rollout_log`` is the timestamped
record staff read, and the acceptance test reads for ring order.

Migration 2 (a province's rollout to its counties, docs/updates.md): a rollout's ``kind``
says whether its members are village nodes or county hubs; ``upstream_id`` marks, at a
county, the rollout the province asked for.  ``hub_tier_software`` is, at a province, each
county's latest software section (hub version, its nodes' versions, its rollout);
``hub_upstream_rollouts`` is, at a county, what each province rollout asked and how far it
got here.
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
    (2, "province rollouts", """
    ALTER TABLE hub_rollouts ADD COLUMN kind TEXT NOT NULL DEFAULT 'node';   -- node, or hub (county hubs)
    ALTER TABLE hub_rollouts ADD COLUMN upstream_id INTEGER;                 -- at a county: the province's rollout
    CREATE TABLE hub_tier_software (
        via TEXT PRIMARY KEY,                -- the county hub
        report_no INTEGER NOT NULL,          -- an older report never overwrites a newer one
        version TEXT NOT NULL,               -- the county hub's own version
        body TEXT NOT NULL,                  -- the cleaned section (JSON)
        at REAL NOT NULL
    );
    CREATE TABLE hub_upstream_rollouts (
        upstream_id INTEGER PRIMARY KEY,     -- the province's rollout id
        version TEXT NOT NULL,
        state TEXT NOT NULL,                 -- waiting, failed, started, done
        code TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        reason_zh TEXT NOT NULL DEFAULT '',
        local_id INTEGER,                    -- this hub's rollout to its nodes, once started
        at REAL NOT NULL
    );
    """),
]
