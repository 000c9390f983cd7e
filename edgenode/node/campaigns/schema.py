"""Campaigns (评选/点赞), their items, local votes and the last county-wide ranking.

A vote is written twice in one transaction: a ``camp_votes`` row (for the
per-terminal daily limit and the local counts) and a usage event of kind
``vote`` that travels to the hub in the sealed batches.
"""

AREA = "campaigns"

MIGRATIONS = [
    (1, "campaigns", """
    CREATE TABLE camp_campaigns (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        rules TEXT NOT NULL DEFAULT '',
        start_at REAL NOT NULL,
        end_at REAL NOT NULL,
        daily_limit INTEGER NOT NULL CHECK (daily_limit > 0),
        origin TEXT NOT NULL DEFAULT 'local',
        source TEXT NOT NULL DEFAULT 'cli',
        created_at REAL NOT NULL
    );
    CREATE TABLE camp_items (
        campaign_id TEXT NOT NULL REFERENCES camp_campaigns (id),
        item_id TEXT NOT NULL,
        title TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        resource_id TEXT,                  -- e.g. a cached choir performance
        position INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (campaign_id, item_id)
    ) WITHOUT ROWID;
    -- Local votes: the limit check and the local counts.  The same vote also goes
    -- upstream as a usage event (kind 'vote'), written in the same transaction.
    CREATE TABLE camp_votes (
        id INTEGER PRIMARY KEY,
        campaign_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        terminal TEXT NOT NULL,
        day TEXT NOT NULL,                 -- YYYY-MM-DD, the appliance's local day
        at REAL NOT NULL
    );
    CREATE INDEX camp_votes_limit ON camp_votes (campaign_id, terminal, day);
    CREATE INDEX camp_votes_item ON camp_votes (campaign_id, item_id);
    -- The last county-wide ranking the hub sent (signed bundle or signed fetch).
    CREATE TABLE camp_rankings (
        campaign_id TEXT PRIMARY KEY,
        ranking TEXT NOT NULL,             -- JSON [{"item": id, "votes": n}, ...] best first
        nodes INTEGER NOT NULL DEFAULT 0,
        as_of REAL NOT NULL,               -- when the hub computed it
        received_at REAL NOT NULL
    );
    """),
]
