"""The hub's fan-out tables (``hub.db``, their own migration list): mirrors, byte counters, reports."""

AREA = "fanout"

MIGRATIONS = [
    (1, "fanout", """
    -- Nodes county staff gave the mirror role; their URLs come from their own heartbeats.
    CREATE TABLE hub_mirrors (
        node_id TEXT PRIMARY KEY,
        rsync_url TEXT NOT NULL DEFAULT '',
        http_url TEXT NOT NULL DEFAULT '',
        assigned_at REAL NOT NULL,
        suspended_at REAL,                 -- caught serving tampered bytes: assigned to nobody
        suspended_why TEXT NOT NULL DEFAULT ''
    );
    -- Each node's byte counters as its heartbeats carry them (monotonic within a month: MAX on upsert).
    CREATE TABLE hub_traffic (
        node_id TEXT NOT NULL,
        month TEXT NOT NULL,
        source TEXT NOT NULL,
        channel TEXT NOT NULL,
        rx INTEGER NOT NULL DEFAULT 0,
        tx INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (node_id, month, source, channel)
    ) WITHOUT ROWID;
    CREATE INDEX hub_traffic_month ON hub_traffic (month, channel);
    -- Where each node's swarm listens (its own word, swarm.advertise), for the other nodes' peer lists.
    CREATE TABLE hub_swarm (
        node_id TEXT PRIMARY KEY,
        endpoint TEXT NOT NULL,            -- host:port
        seen_at REAL NOT NULL
    );
    CREATE TABLE hub_mirror_reports (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        reporter TEXT NOT NULL,
        mirror TEXT NOT NULL,
        code TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    """),
]
