"""The hub's table of villagers' contributions (area ``hub_contrib``; docs/contrib.md).

``(node_id, cid)`` is the dedup guard: a contribution offered again, a chunk
replayed or a stick imported after the network already brought the file
changes nothing, so each arrives exactly once.
"""

AREA = "hub_contrib"

MIGRATIONS = [
    (1, "contributions", """
    CREATE TABLE hub_contrib (
        node_id TEXT NOT NULL,
        cid TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        kind TEXT NOT NULL,
        ext TEXT NOT NULL,
        title TEXT NOT NULL,
        credit TEXT NOT NULL DEFAULT '',
        campaign TEXT NOT NULL DEFAULT '',
        duration REAL,
        -- receiving → received (county review: 待审核) → adopted | declined
        state TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        column_key TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT 'net',   -- net, usb
        offered_at REAL NOT NULL,
        completed_at REAL,
        reviewed_at REAL,
        published_seq INTEGER,                -- the bundle that carried it
        PRIMARY KEY (node_id, cid)
    ) WITHOUT ROWID;
    CREATE INDEX hub_contrib_state ON hub_contrib (state, completed_at);
    """),
    (2, "forward_upstream", """
    -- Staff chose to send this adopted work on to the upstream (e.g. provincial) hub; when it
    -- arrived there whole (same hash) forwarded_at is set.
    ALTER TABLE hub_contrib ADD COLUMN forward INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE hub_contrib ADD COLUMN forwarded_at REAL;
    """),
]
