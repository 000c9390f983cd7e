"""The contrib area's tables: uploads in progress (tus) and contributions.

No phone number is ever asked for or kept: ``credit`` is the name the contributor
wants printed under the work, nothing more.
"""

AREA = "contrib"

MIGRATIONS = [
    (1, "uploads_contributions", """
    -- A tus upload in progress.  Its offset is the size of DATA/contrib/uploads/<id>.part:
    -- the bytes on disk are the truth, so a crash can never make the row claim more.
    CREATE TABLE contrib_uploads (
        id TEXT PRIMARY KEY,               -- 32 hex characters, random
        length INTEGER NOT NULL,
        meta TEXT NOT NULL,                -- JSON: title, credit, campaign, consent, filename, ext
        day TEXT NOT NULL,                 -- local YYYY-MM-DD, for the daily cap
        created_at REAL NOT NULL,
        touched_at REAL NOT NULL,
        done INTEGER NOT NULL DEFAULT 0     -- 1 once the whole file arrived (a contribution row exists)
    );
    CREATE INDEX contrib_uploads_day ON contrib_uploads (day);
    -- state: processing → pending (待审核) → approved → uploaded (已上传) → adopted | declined;
    --        or failed (not media: file deleted) or rejected (by the point's admin: file deleted).
    CREATE TABLE contributions (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        credit TEXT NOT NULL DEFAULT '',
        campaign TEXT NOT NULL DEFAULT '',
        consent INTEGER NOT NULL,
        filename TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL DEFAULT '',       -- video, audio, image once probed
        ext TEXT NOT NULL DEFAULT '',        -- of the processed file: mp4, m4a, jpg
        state TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',     -- why rejected, failed or declined (Chinese)
        code TEXT NOT NULL DEFAULT '',       -- E_... for failed
        size INTEGER NOT NULL DEFAULT 0,     -- of the processed file
        sha256 TEXT NOT NULL DEFAULT '',
        duration REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        uploaded_at REAL                     -- when the hub acknowledged the whole file by hash
    );
    CREATE INDEX contributions_state ON contributions (state, created_at);
    """),
]
