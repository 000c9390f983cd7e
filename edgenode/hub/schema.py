"""The hub database's tables (``DATA_DIR/hub.db``), as numbered migrations.

Statistics are stored as per-day aggregates written in the same transaction as
the batch row that contributes them, so a batch counts exactly once: the
batch row's primary key is the dedup guard, and a redelivered batch never
reaches the aggregate upsert.  Unique terminals need the terminal ids, kept
per node, month, column and resource (not per event), which is what the
monthly statistics ask for.
"""

AREA = "hub"

MIGRATIONS = [
    (1, "registry", """
    CREATE TABLE hub_codes (
        code_hash TEXT PRIMARY KEY,        -- sha256 of the normalised code; the code itself is shown once
        hint TEXT NOT NULL,                -- last 4 characters, to tell codes apart in lists
        township TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        used_at REAL, used_by TEXT, revoked_at REAL
    );
    CREATE TABLE hub_nodes (
        node_id TEXT PRIMARY KEY,
        public_key TEXT NOT NULL,          -- base64 raw Ed25519
        kind TEXT NOT NULL DEFAULT 'node', -- 'node', or 'hub' for a downstream hub (tiers)
        name TEXT NOT NULL DEFAULT '',
        township TEXT NOT NULL DEFAULT '',
        version TEXT NOT NULL DEFAULT '',
        enrolled_at REAL NOT NULL,
        revoked_at REAL,
        contiguous INTEGER NOT NULL DEFAULT 0,  -- every batch 1..contiguous is stored
        max_batch_no INTEGER NOT NULL DEFAULT 0,
        batches INTEGER NOT NULL DEFAULT 0,
        events INTEGER NOT NULL DEFAULT 0,
        last_batch_at REAL,
        last_heartbeat_at REAL
    );
    CREATE TABLE hub_staff (
        username TEXT PRIMARY KEY,
        pw_hash TEXT NOT NULL,
        created_at REAL NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0,
        locked_until REAL NOT NULL DEFAULT 0
    );
    CREATE TABLE hub_log (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        level TEXT NOT NULL,               -- info, warning
        code TEXT NOT NULL,                -- E_BAD_SIGNATURE, BATCH_STORED, IMPORT_USB, ...
        node_id TEXT,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX hub_log_node ON hub_log (node_id, id);
    """),
    (2, "ingest", """
    CREATE TABLE hub_batches (
        node_id TEXT NOT NULL,
        batch_no INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        kind TEXT NOT NULL,
        count INTEGER NOT NULL,
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        sealed_at REAL NOT NULL,
        received_at REAL NOT NULL,
        source TEXT NOT NULL,              -- net, usb
        PRIMARY KEY (node_id, batch_no)
    ) WITHOUT ROWID;
    CREATE TABLE hub_daily (
        node_id TEXT NOT NULL,
        day TEXT NOT NULL,                 -- YYYY-MM-DD in hub.utc_offset_hours
        column_key TEXT NOT NULL,          -- '' for none
        resource_id TEXT NOT NULL,         -- '' for none
        kind TEXT NOT NULL,
        n INTEGER NOT NULL,
        seconds REAL NOT NULL,
        u_summarised INTEGER NOT NULL DEFAULT 0,  -- unique terminals from summarised ('daily') batches
        updated_at REAL NOT NULL,          -- what the upstream report must resend
        PRIMARY KEY (node_id, day, column_key, resource_id, kind)
    ) WITHOUT ROWID;
    CREATE INDEX hub_daily_day ON hub_daily (day);
    CREATE TABLE hub_terminals (
        node_id TEXT NOT NULL,
        month TEXT NOT NULL,               -- YYYY-MM
        column_key TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        terminal TEXT NOT NULL,
        PRIMARY KEY (node_id, month, column_key, resource_id, terminal)
    ) WITHOUT ROWID;
    CREATE TABLE hub_heartbeats (
        id INTEGER PRIMARY KEY,
        node_id TEXT NOT NULL,
        received_at REAL NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX hub_heartbeats_node ON hub_heartbeats (node_id, id);
    CREATE TABLE hub_latest (
        node_id TEXT PRIMARY KEY,
        received_at REAL NOT NULL,
        signed_ts INTEGER,                 -- the node's X-Edgenode-Timestamp: recorded, never used to refuse
        body TEXT NOT NULL
    );
    """),
    (3, "fleet", """
    CREATE TABLE hub_alerts (
        id INTEGER PRIMARY KEY,
        rule TEXT NOT NULL,                -- offline, disk, behind, clock, integrity, conflict, gap
        node_id TEXT NOT NULL,
        subject TEXT NOT NULL DEFAULT '',  -- e.g. the channel or batch number
        detail TEXT NOT NULL DEFAULT '',
        raised_at REAL NOT NULL,
        cleared_at REAL,
        notified_at REAL
    );
    CREATE UNIQUE INDEX hub_alerts_open ON hub_alerts (rule, node_id, subject) WHERE cleared_at IS NULL;
    CREATE TABLE hub_channels (
        channel TEXT PRIMARY KEY,
        latest_seq INTEGER NOT NULL,
        bundle_dir TEXT NOT NULL,
        published_at REAL NOT NULL
    );
    CREATE TABLE hub_publications (
        channel TEXT NOT NULL,
        seq INTEGER NOT NULL,
        bundle_dir TEXT NOT NULL,
        source TEXT NOT NULL,              -- built here, or accepted from upstream
        published_at REAL NOT NULL,
        PRIMARY KEY (channel, seq)
    );
    """),
    (4, "tiers", """
    -- Aggregates forwarded by downstream hubs: absolute values, replaced on
    -- redelivery, so a resent report never adds twice.
    CREATE TABLE hub_tier_daily (
        origin TEXT NOT NULL,              -- the hub that ingested the node's batches
        node_id TEXT NOT NULL,
        day TEXT NOT NULL,
        column_key TEXT NOT NULL,
        kind TEXT NOT NULL,
        n INTEGER NOT NULL,
        seconds REAL NOT NULL,
        report_no INTEGER NOT NULL,        -- an older report never overwrites a newer value
        updated_at REAL NOT NULL,
        PRIMARY KEY (origin, node_id, day, column_key, kind)
    ) WITHOUT ROWID;
    CREATE TABLE hub_tier_terminals (
        origin TEXT NOT NULL,
        node_id TEXT NOT NULL,
        month TEXT NOT NULL,
        column_key TEXT NOT NULL,          -- '*': all columns of the node that month
        u INTEGER NOT NULL,
        report_no INTEGER NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (origin, node_id, month, column_key)
    ) WITHOUT ROWID;
    CREATE TABLE hub_tier_nodes (
        origin TEXT NOT NULL,
        node_id TEXT NOT NULL,
        name TEXT NOT NULL,
        township TEXT NOT NULL,
        via TEXT NOT NULL,                 -- the downstream hub that sent it
        PRIMARY KEY (origin, node_id)
    ) WITHOUT ROWID;
    CREATE TABLE hub_tier_reports (
        via TEXT NOT NULL,
        report_no INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        received_at REAL NOT NULL,
        rows INTEGER NOT NULL,
        PRIMARY KEY (via, report_no)
    ) WITHOUT ROWID;
    CREATE TABLE hub_upstream (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        url TEXT NOT NULL,
        enrolled_at REAL NOT NULL,
        last_report_no INTEGER NOT NULL DEFAULT 0,
        cutoff REAL NOT NULL DEFAULT 0,    -- rows updated after this are not yet acknowledged upstream
        pending_no INTEGER,                -- a built report is resent byte for byte until acknowledged
        pending_body BLOB,
        pending_cutoff REAL,
        last_sent_at REAL
    );
    """),
    (5, "stats_indexes", """
    -- Monthly statistics filter by month first; the primary key leads with node_id.
    CREATE INDEX hub_terminals_month ON hub_terminals (month);
    CREATE INDEX hub_tier_daily_day ON hub_tier_daily (day);
    """),
    (6, "monthly_rollup", """
    -- The month is what the statistics ask for: a county month is ~30x fewer rows here
    -- than in hub_daily.  Written in the same transaction as hub_daily, from the same batch.
    CREATE TABLE hub_monthly (
        node_id TEXT NOT NULL,
        month TEXT NOT NULL,
        column_key TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        n INTEGER NOT NULL,
        seconds REAL NOT NULL,
        PRIMARY KEY (month, node_id, column_key, resource_id, kind)
    ) WITHOUT ROWID;
    INSERT INTO hub_monthly SELECT node_id, substr(day, 1, 7), column_key, resource_id, kind, sum(n), sum(seconds)
      FROM hub_daily GROUP BY node_id, substr(day, 1, 7), column_key, resource_id, kind;
    CREATE INDEX hub_daily_summarised ON hub_daily (day) WHERE u_summarised > 0;
    """),
    (7, "daily_without_resource", """
    -- Per-resource figures are asked per month (hub_monthly); per day only per column.
    -- Dropping the resource from hub_daily cut the rows a batch upserts there from about one
    -- per event to a few dozen, and a county's yearly hub_daily by the same factor.
    CREATE TABLE hub_daily_v2 (
        node_id TEXT NOT NULL,
        day TEXT NOT NULL,
        column_key TEXT NOT NULL,
        kind TEXT NOT NULL,
        n INTEGER NOT NULL,
        seconds REAL NOT NULL,
        u_summarised INTEGER NOT NULL DEFAULT 0,  -- summed over resources: an upper bound
        updated_at REAL NOT NULL,
        PRIMARY KEY (node_id, day, column_key, kind)
    ) WITHOUT ROWID;
    INSERT INTO hub_daily_v2 SELECT node_id, day, column_key, kind, sum(n), sum(seconds), sum(u_summarised),
           max(updated_at) FROM hub_daily GROUP BY node_id, day, column_key, kind;
    DROP TABLE hub_daily;
    ALTER TABLE hub_daily_v2 RENAME TO hub_daily;
    CREATE INDEX hub_daily_day ON hub_daily (day);
    CREATE INDEX hub_daily_summarised ON hub_daily (day) WHERE u_summarised > 0;
    """),
    (8, "monthly_per_column", """
    -- Most statistics pages group by node, township, column or month: they read these
    -- per-column rollups (a county month: thousands of rows, not hundreds of thousands);
    -- only the per-resource table reads hub_monthly and hub_terminals.
    CREATE TABLE hub_monthly_col (
        month TEXT NOT NULL,
        node_id TEXT NOT NULL,
        column_key TEXT NOT NULL,
        kind TEXT NOT NULL,
        n INTEGER NOT NULL,
        seconds REAL NOT NULL,
        PRIMARY KEY (month, node_id, column_key, kind)
    ) WITHOUT ROWID;
    INSERT INTO hub_monthly_col SELECT month, node_id, column_key, kind, sum(n), sum(seconds)
      FROM hub_monthly GROUP BY month, node_id, column_key, kind;
    CREATE TABLE hub_terminals_col (
        month TEXT NOT NULL,
        node_id TEXT NOT NULL,
        column_key TEXT NOT NULL,
        terminal TEXT NOT NULL,
        PRIMARY KEY (month, node_id, column_key, terminal)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO hub_terminals_col SELECT month, node_id, column_key, terminal FROM hub_terminals;
    """),
    (9, "terminals_per_node_month", """
    -- Unique terminals of a node in a month, for the per-node/township/month tables: with one
    -- row per (month, node, terminal) they are a count(*), not a count(DISTINCT ...).
    CREATE TABLE hub_terminals_node (
        month TEXT NOT NULL,
        node_id TEXT NOT NULL,
        terminal TEXT NOT NULL,
        PRIMARY KEY (month, node_id, terminal)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO hub_terminals_node SELECT month, node_id, terminal FROM hub_terminals_col;
    """),
    (10, "diagnostics_requests", """
    -- County staff asked this node for a diagnostics bundle; the heartbeat answer tells the node,
    -- and the row goes when the bundle arrives (hub/diagnostics.py).
    CREATE TABLE hub_diag_requests (
        node_id TEXT PRIMARY KEY,
        requested_at REAL NOT NULL,
        requested_by TEXT NOT NULL DEFAULT ''
    );
    """),
    # Numbered from 21: issue 18's other half adds its own migrations from 11.
    (21, "resource_titles", """
    -- Resource titles for the reports: from the batch headers (the node's catalogue) and from
    -- the bundles this hub publishes.  The newest title seen wins.
    CREATE TABLE hub_titles (
        resource_id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        updated_at REAL NOT NULL
    ) WITHOUT ROWID;
    """),
    (22, "staff_roles_audit", """
    -- 县级管理员 ('admin') changes things; 查看 ('viewer') only reads.  Accounts made before
    -- roles existed could do everything, so they stay administrators.
    ALTER TABLE hub_staff ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
    CREATE TABLE hub_audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        username TEXT NOT NULL,
        role TEXT NOT NULL,
        action TEXT NOT NULL,              -- the endpoint, or the CLI command
        target TEXT NOT NULL DEFAULT '',   -- the node, code hint or alert it acted on
        detail TEXT NOT NULL DEFAULT '',   -- form fields (never passwords or tokens)
        outcome TEXT NOT NULL              -- HTTP status, 'refused' or 'ok'
    );
    CREATE INDEX hub_audit_at ON hub_audit (at);
    """),
    (23, "resource_rollups", """
    -- The per-resource table of a county's month or year without a scan of every node's rows
    -- (hub_monthly: millions of rows a year at 2,000 nodes): figures per resource and month.
    CREATE TABLE hub_monthly_res (
        month TEXT NOT NULL,
        column_key TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        n INTEGER NOT NULL,
        seconds REAL NOT NULL,
        PRIMARY KEY (month, column_key, resource_id, kind)
    ) WITHOUT ROWID;
    INSERT INTO hub_monthly_res SELECT month, column_key, resource_id, kind, sum(n), sum(seconds)
      FROM hub_monthly WHERE resource_id <> '' GROUP BY month, column_key, resource_id, kind;
    -- Terminal ids per year for the per-column and per-node tables (a year's terminals per node or
    -- column are then a count(*) in key order, not a count(DISTINCT) over every month's ids).  Per
    -- resource this would cost ingest a third more CPU: that table counts from hub_terminals.
    CREATE TABLE hub_terminals_year_col (
        year TEXT NOT NULL,
        node_id TEXT NOT NULL,
        column_key TEXT NOT NULL,
        terminal TEXT NOT NULL,
        PRIMARY KEY (year, node_id, column_key, terminal)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO hub_terminals_year_col SELECT substr(month, 1, 4), node_id, column_key, terminal
      FROM hub_terminals_col;
    CREATE TABLE hub_terminals_year_node (
        year TEXT NOT NULL,
        node_id TEXT NOT NULL,
        terminal TEXT NOT NULL,
        PRIMARY KEY (year, node_id, terminal)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO hub_terminals_year_node SELECT substr(month, 1, 4), node_id, terminal
      FROM hub_terminals_node;
    """),
]
