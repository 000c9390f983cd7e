"""The storage area's tables.  Numbered migrations; never edit an applied one.

The catalogue's own tables are not altered: what storage knows about a resource
lives beside it in ``storage_state``, keyed by the resource's ``num``.
"""

AREA = "storage"

MIGRATIONS = [
    (1, "storage", """
    -- Subscriptions set on the admin page; they override the [storage] config lists.
    CREATE TABLE storage_subscriptions (
        channel TEXT PRIMARY KEY,
        mode TEXT NOT NULL CHECK (mode IN ('always', 'on_demand', 'never')),
        updated_at REAL NOT NULL
    );

    -- Per-resource storage facts.  state 'evicted': the main blob was removed to make room;
    -- 'metadata': listed from an on-demand channel, the file was never fetched.  Both are shown
    -- as 可预约下载 until the blob is back (then the row is only history).
    CREATE TABLE storage_state (
        resource_num INTEGER PRIMARY KEY REFERENCES resources (num) ON DELETE CASCADE,
        pinned INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'present' CHECK (state IN ('present', 'evicted', 'metadata')),
        sha256 TEXT,                          -- the blob that was evicted
        reason TEXT NOT NULL DEFAULT '',
        changed_at REAL NOT NULL,
        arrived_at REAL                       -- when an evicted file came back (counts as fresh)
    );
    CREATE INDEX storage_state_state ON storage_state (state);

    -- When each resource was last played, folded incrementally from usage_events.
    CREATE TABLE storage_last_played (
        resource_id TEXT PRIMARY KEY,
        at REAL NOT NULL
    );
    CREATE TABLE storage_meta (
        name TEXT PRIMARY KEY,
        value REAL NOT NULL
    );

    -- Villagers' requests for resources that are not on this node's disk.
    CREATE TABLE storage_requests (
        id INTEGER PRIMARY KEY,
        resource_num INTEGER NOT NULL REFERENCES resources (num) ON DELETE CASCADE,
        resource_id TEXT NOT NULL,
        terminal TEXT NOT NULL,
        requested_at REAL NOT NULL,
        state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'fulfilled')),
        fulfilled_at REAL
    );
    CREATE INDEX storage_requests_open ON storage_requests (state, resource_num);
    CREATE UNIQUE INDEX storage_requests_once ON storage_requests (resource_num, terminal) WHERE state = 'open';

    -- Transcoding of formats browsers cannot play; one row per resource.
    CREATE TABLE transcode_jobs (
        resource_num INTEGER PRIMARY KEY REFERENCES resources (num) ON DELETE CASCADE,
        src_sha256 TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        pid INTEGER,
        out_sha256 TEXT,
        error TEXT NOT NULL DEFAULT '',
        started_at REAL NOT NULL,
        finished_at REAL,
        seconds REAL
    );
    """),
]

# The catalogue's visibility rule keeps a resource listed while its file is away
# (evicted, or never fetched from an on-demand channel): the portal shows 可预约下载
# instead of a player.  Used by ``edgenode.node.catalog.queries.refresh_visibility``.
LISTED_ON_REQUEST = ("EXISTS (SELECT 1 FROM storage_state s WHERE s.resource_num = resources.num "
                     "AND s.state IN ('evicted', 'metadata'))")
