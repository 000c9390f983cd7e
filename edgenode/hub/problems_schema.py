"""Tables of the problem list (``hub/problems.py``): county staff's acknowledgements and snoozes.

Its own migration area (``hub_problems``), so it numbers its migrations apart from
``hub/schema.py``.
"""

AREA = "hub_problems"

MIGRATIONS = [
    (1, "problem_notes", """
    -- One row per problem (node, kind, subject) a staff member acknowledged or snoozed.
    -- The hourly alert check deletes the row once the problem has ended, so the same
    -- problem coming back later shows as new.
    CREATE TABLE hub_problem_notes (
        node_id TEXT NOT NULL,
        kind TEXT NOT NULL,                -- offline, late, disk, ... (hub/fleet.py PROBLEM_ZH)
        subject TEXT NOT NULL DEFAULT '',  -- e.g. the channel of a 'behind' problem
        action TEXT NOT NULL CHECK (action IN ('ack', 'snooze')),
        reason TEXT NOT NULL,
        by_staff TEXT NOT NULL,
        at REAL NOT NULL,
        until REAL,                        -- a snooze ends here; NULL for an acknowledgement
        PRIMARY KEY (node_id, kind, subject)
    ) WITHOUT ROWID;
    -- Refused uploads of the last days, for the 上传被拒收 problem.
    CREATE INDEX hub_log_warning_at ON hub_log (at) WHERE level = 'warning';
    """),
    (2, "tier_fleet", """
    -- The latest fleet summary each county hub sent with its report (tiers.py "fleet"), for the
    -- province view: an older report never overwrites a newer one.
    CREATE TABLE hub_tier_fleet (
        via TEXT PRIMARY KEY,
        report_no INTEGER NOT NULL,
        body TEXT NOT NULL,
        at REAL NOT NULL
    ) WITHOUT ROWID;
    """),
]
