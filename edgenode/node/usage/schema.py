"""Usage events: an append-only table with a monotonic sequence.

``seq`` is AUTOINCREMENT so a number is never reused, even after deletes: the
uplink seals events by sequence range, and a reused number could double-count.
"""

AREA = "usage"

MIGRATIONS = [
    (1, "events", """
    CREATE TABLE usage_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,                 -- wall clock (may be wrong on village PCs)
        mono REAL NOT NULL,               -- time.monotonic() at recording
        boot_id TEXT NOT NULL,            -- /proc/sys/kernel/random/boot_id: orders events across reboots
        terminal TEXT NOT NULL,           -- random cookie id; never an IP address or personal data
        kind TEXT NOT NULL,               -- view, play_start, progress, play_end, search, ...
        resource_id TEXT,
        column_key TEXT,
        seconds REAL NOT NULL DEFAULT 0,  -- watch/listen seconds this event adds
        data TEXT                         -- small JSON extras
    );
    CREATE INDEX usage_events_at ON usage_events (at);
    """),
    (2, "totals", """
    -- All-time figures of events pruned from usage_events (edgenode/node/usage/retention.py), so the
    -- dashboard's all-time list stays whole after old events leave the node.
    CREATE TABLE usage_totals (
        resource_id TEXT PRIMARY KEY,
        plays INTEGER NOT NULL DEFAULT 0,
        views INTEGER NOT NULL DEFAULT 0,
        seconds REAL NOT NULL DEFAULT 0
    );
    CREATE TABLE usage_pruned (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        upto_seq INTEGER NOT NULL,        -- the highest sequence folded and deleted so far
        events INTEGER NOT NULL,          -- how many, in all
        at REAL NOT NULL
    );
    """),
    (3, "resume", """
    -- Where each terminal stopped in each video or audio (继续观看): written with the player's beacons,
    -- never leaves the node, deleted by housekeeping after usage.keep_days (retention.py).
    CREATE TABLE resume_points (
        terminal TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        position REAL NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (terminal, resource_id)
    ) WITHOUT ROWID;
    CREATE INDEX resume_points_at ON resume_points (at);
    """),
]
