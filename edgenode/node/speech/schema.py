"""朗读's table: resources waiting for their speech files.  Numbered migrations; never edit an applied one."""

AREA = "speech"

MIGRATIONS = [
    (1, "speech queue", """
    -- Filled by the import's commit hook in the import's own transaction, emptied by the speech job;
    -- the files themselves live under DATA_DIR/speech, named by what they say (voice.py).
    CREATE TABLE speech_queue (
        resource_num INTEGER PRIMARY KEY REFERENCES resources (num) ON DELETE CASCADE,
        queued_at REAL NOT NULL
    );
    """),
]
