"""Activities and their bookings (活动预约, 取票码).

Personal data lives only in ``act_bookings.name`` and ``act_bookings.phone``;
both are blanked by ``privacy.purge`` a configured number of days after the
activity, and the file is vacuumed so the bytes leave the disk.  The pickup
code itself is never stored: only an HMAC of it under a key kept outside the
database (``DATA_DIR/activities.key``), so a copy of the database alone does
not reveal or enumerate codes.
"""

AREA = "activities"

MIGRATIONS = [
    (1, "activities", """
    CREATE TABLE act_activities (
        id TEXT PRIMARY KEY,               -- local-xxxxxxxx, or <channel>.<id> from a county bundle
        title TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        place TEXT NOT NULL DEFAULT '',
        start_at REAL NOT NULL,
        end_at REAL NOT NULL,
        capacity INTEGER NOT NULL CHECK (capacity > 0),
        audit INTEGER NOT NULL DEFAULT 0,  -- 1: bookings wait for the administrator (待审核)
        resource_id TEXT,                  -- a cached recording shown at a screening (收看点)
        origin TEXT NOT NULL DEFAULT 'local',  -- local, county
        source TEXT NOT NULL DEFAULT 'admin',  -- admin, cli, bundle:<channel>:<seq>
        created_at REAL NOT NULL,
        cancelled_at REAL,
        purged_at REAL                     -- personal data of its bookings removed
    );
    CREATE INDEX act_activities_start ON act_activities (start_at);
    CREATE TABLE act_bookings (
        order_id TEXT PRIMARY KEY,         -- 20-digit, like the county platforms' 订单ID
        activity_id TEXT NOT NULL REFERENCES act_activities (id),
        name TEXT NOT NULL,                -- '' once purged
        phone TEXT NOT NULL,               -- 11-digit mobile; '' once purged
        seats INTEGER NOT NULL CHECK (seats > 0),
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'cancelled', 'checked_in')),
        code_hash TEXT NOT NULL UNIQUE,    -- HMAC-SHA256 of the 8-digit pickup code
        terminal TEXT,                     -- the booking terminal's random cookie id (flood limits); NULL once purged
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        checked_in_at REAL
    );
    CREATE INDEX act_bookings_activity ON act_bookings (activity_id, status);
    CREATE INDEX act_bookings_terminal ON act_bookings (terminal, created_at);
    """),
    (2, "lookup_failures", """
    -- Wrong codes tried against one order id: after a few the lookup locks for a while, so
    -- someone who learnt an order id cannot try the 10^8 codes (cookies do not matter here).
    CREATE TABLE act_lookup_failures (
        order_id TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX act_lookup_failures_order ON act_lookup_failures (order_id, at);
    """),
]
