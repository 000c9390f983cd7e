"""The sync area's tables: outbox high-water marks, enrolment, link back-off."""

AREA = "sync"

MIGRATIONS = [
    (1, "outbox_enrolment_link", """
    -- One row.  sealed_upto: every event with seq <= it is in a batch file (or acked).
    -- last_batch_no: the highest batch number ever sealed; numbers are never reused.
    CREATE TABLE sync_outbox (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        sealed_upto INTEGER NOT NULL DEFAULT 0,
        last_batch_no INTEGER NOT NULL DEFAULT 0,
        acked_batches INTEGER NOT NULL DEFAULT 0,
        acked_events INTEGER NOT NULL DEFAULT 0,
        summarised_batches INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO sync_outbox (id) VALUES (1);
    CREATE TABLE sync_enrolment (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        hub_url TEXT NOT NULL,
        hub_name TEXT NOT NULL DEFAULT '',
        node_id TEXT NOT NULL,
        enrolled_at REAL NOT NULL
    );
    -- Back-off per link target: failures is capped so the delay (and the row) stays bounded.
    CREATE TABLE sync_link (
        target TEXT PRIMARY KEY,
        failures INTEGER NOT NULL DEFAULT 0,
        next_try_at REAL NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        last_ok_at REAL
    );
    """),
]
