"""The live area's tables.  Numbered migrations; never edit an applied one."""

AREA = "live"

MIGRATIONS = [
    (1, "broadcasts, segments, schedule sequences", """
    CREATE TABLE live_broadcasts (
        key TEXT PRIMARY KEY,                -- <channel>.<id>
        channel TEXT NOT NULL,
        id TEXT NOT NULL,
        title TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        start REAL NOT NULL,
        end REAL NOT NULL,
        stream_url TEXT NOT NULL,
        poster TEXT,
        cancelled INTEGER NOT NULL DEFAULT 0,
        source TEXT NOT NULL,                -- bundle:<channel>:<seq>, schedule:<channel>:<seq>
        updated_at REAL NOT NULL,
        state TEXT NOT NULL DEFAULT 'scheduled',  -- scheduled, live, interrupted, no_stream, ended, stopped
        error_code TEXT,
        error_zh TEXT,
        origin_segments INTEGER,             -- the origin's recording, once its playlist has ended
        replay_state TEXT,                   -- NULL, complete, incomplete
        replay_resource TEXT,
        missing_seconds REAL
    );
    CREATE INDEX live_broadcasts_start ON live_broadcasts (start);

    CREATE TABLE live_segments (
        broadcast TEXT NOT NULL REFERENCES live_broadcasts (key) ON DELETE CASCADE,
        seq INTEGER NOT NULL,                -- the origin's media sequence number
        duration REAL NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        how TEXT NOT NULL,                   -- live, backfill
        fetched_at REAL NOT NULL,
        PRIMARY KEY (broadcast, seq)
    );

    CREATE TABLE live_schedules (
        channel TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        applied_at REAL NOT NULL
    );
    """),
]
