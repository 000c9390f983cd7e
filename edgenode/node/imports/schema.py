"""The bundles area's tables: trust store, accepted bundles and import history."""

AREA = "bundles"

MIGRATIONS = [
    (1, "trust and imports", """
    -- Publisher keys (minisign format) and the channels each may publish to.
    CREATE TABLE trust_keys (
        key_id TEXT PRIMARY KEY,              -- 16 upper-case hex digits, as minisign shows it
        public_key TEXT NOT NULL,             -- the base64 line of the minisign public key
        comment TEXT NOT NULL DEFAULT '',
        added_at REAL NOT NULL,
        added_by TEXT NOT NULL DEFAULT 'admin' -- 'admin' or 'keylist:<signer key id>:<seq>'
    );
    CREATE TABLE trust_channels (
        key_id TEXT NOT NULL REFERENCES trust_keys (key_id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        PRIMARY KEY (key_id, channel)
    );
    -- Rollback protection: the highest sequence accepted per channel.
    CREATE TABLE channel_state (
        channel TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        manifest_sha256 TEXT NOT NULL,
        imported_at REAL NOT NULL
    );
    CREATE TABLE trust_meta (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    -- Every accepted bundle's signed manifest, kept so a collection can be re-verified.
    CREATE TABLE bundles (
        channel TEXT NOT NULL,
        seq INTEGER NOT NULL,
        manifest BLOB NOT NULL,
        signature TEXT NOT NULL,
        key_id TEXT NOT NULL,
        manifest_sha256 TEXT NOT NULL,
        imported_at REAL NOT NULL,
        PRIMARY KEY (channel, seq)
    );
    CREATE TABLE imports (
        id INTEGER PRIMARY KEY,
        started_at REAL NOT NULL,
        finished_at REAL NOT NULL,
        source TEXT NOT NULL,                 -- 'usb:<device>', 'spool', 'cli', 'sync'
        bundle TEXT NOT NULL,                 -- the bundle directory as found
        channel TEXT,
        seq INTEGER,
        result TEXT NOT NULL CHECK (result IN ('imported', 'unchanged', 'failed', 'stale')),
        added INTEGER NOT NULL DEFAULT 0,
        updated INTEGER NOT NULL DEFAULT 0,
        withdrawn INTEGER NOT NULL DEFAULT 0,
        files_copied INTEGER NOT NULL DEFAULT 0,
        files_skipped INTEGER NOT NULL DEFAULT 0,
        bytes_copied INTEGER NOT NULL DEFAULT 0,
        bytes_total INTEGER NOT NULL DEFAULT 0,
        duration REAL NOT NULL DEFAULT 0,
        error_code TEXT,
        error TEXT,
        warnings TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX imports_started ON imports (started_at DESC);
    """),
]
