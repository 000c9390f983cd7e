"""The hub's tables for votes, requests and feedback (area ``hub_tally``).

``hub/schema.py`` keeps usage as per-day aggregates, which drop the event
extras a vote needs (campaign, item) and the text of a request.  These rows
are written by ``tally.ingest`` inside the same transaction as the batch row
(``ingest.ingest_batch``), and keyed by ``(node_id, seq)``: the batch row
already stops a redelivered batch, and the key makes a replay of the same
event harmless on its own.
"""

AREA = "hub_tally"

MIGRATIONS = [
    (1, "votes_requests", """
    CREATE TABLE hub_votes (
        node_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        campaign TEXT NOT NULL,
        item TEXT NOT NULL,
        terminal TEXT NOT NULL,
        at REAL NOT NULL,                  -- the node's clock
        day TEXT NOT NULL,                 -- YYYY-MM-DD in hub.utc_offset_hours
        PRIMARY KEY (node_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX hub_votes_campaign ON hub_votes (campaign, item);
    CREATE TABLE hub_requests (
        node_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,                -- request, feedback
        resource_id TEXT,
        text TEXT NOT NULL DEFAULT '',
        rating INTEGER,
        at REAL NOT NULL,
        day TEXT NOT NULL,
        PRIMARY KEY (node_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX hub_requests_at ON hub_requests (at);
    -- Campaign definitions the county loaded here, for titles and the voting window.
    CREATE TABLE hub_campaigns (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        start_at REAL NOT NULL,
        end_at REAL NOT NULL,
        items TEXT NOT NULL                -- JSON {item_id: title}
    );
    """),
]
