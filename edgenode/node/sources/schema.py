"""The sources area's tables: byte counters per source, the upstream list, mirror clients."""

AREA = "sources"

MIGRATIONS = [
    (1, "fanout", """
    -- Bytes received (rx) and sent (tx) per month, source and channel.  Counters only grow
    -- within a month, so the hub can take the larger of two reports and never double-count.
    CREATE TABLE sources_traffic (
        month TEXT NOT NULL,               -- YYYY-MM, local time
        source TEXT NOT NULL CHECK (source IN ('county', 'mirror', 'peer', 'satellite', 'stick')),
        channel TEXT NOT NULL,             -- '' when not known (a stick of several channels)
        direction TEXT NOT NULL CHECK (direction IN ('rx', 'tx')),
        bytes INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (month, source, channel, direction)
    ) WITHOUT ROWID;
    -- Where the pull fetches from, in order (the hub's assignment): mirrors first, the county last.
    CREATE TABLE sources_upstreams (
        pos INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('mirror', 'county')),
        node_id TEXT NOT NULL DEFAULT '',  -- the mirror's node id ('' for the county)
        rsync_url TEXT NOT NULL,
        http_url TEXT NOT NULL DEFAULT '',
        username TEXT NOT NULL DEFAULT '',
        password TEXT NOT NULL DEFAULT '', -- issued by the hub for this node at this mirror only
        updated_at REAL NOT NULL
    );
    -- Mirrors caught serving bytes that fail the manifest's hashes: skipped from then on.
    CREATE TABLE sources_bans (
        node_id TEXT PRIMARY KEY,
        code TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        at REAL NOT NULL,
        reported_at REAL                   -- the heartbeat that told the hub
    );
    -- For a node with the mirror role: the nodes the hub lets pull from it, and their passwords.
    CREATE TABLE sources_mirror_clients (
        node_id TEXT PRIMARY KEY,
        password TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    -- The county's swarm as the hub last listed it: the other nodes' endpoints, and this node's rank.
    CREATE TABLE sources_swarm_peers (
        endpoint TEXT PRIMARY KEY,
        rank INTEGER NOT NULL              -- this node's rank (the same on every row)
    );
    -- The latest sequence per channel the hub has published (to tell a mirror that is behind).
    CREATE TABLE sources_published (
        channel TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    );
    """),
]
