"""The TV mode's tables: playlists, screening slots and the loop playlist, from this point or the county."""

AREA = "tv"

MIGRATIONS = [
    (1, "screenings", """
    -- source: 'local' (the point administrator: admin page or CLI) or 'county:<channel>' (a signed bundle).
    CREATE TABLE tv_playlists (
        id TEXT PRIMARY KEY,                  -- local: as typed; county: <channel>.<id>
        title TEXT NOT NULL CHECK (length(trim(title)) > 0),
        source TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE tv_playlist_items (
        playlist_id TEXT NOT NULL REFERENCES tv_playlists (id) ON DELETE CASCADE,
        pos INTEGER NOT NULL,
        resource_id TEXT NOT NULL,            -- a catalogue id; missing or hidden ones are skipped when playing
        PRIMARY KEY (playlist_id, pos)
    );
    -- A screening (展播): a playlist from start to end, local time of day ('HH:MM'; end before start
    -- runs past midnight), on the given weekdays ('1234567', Monday = 1).
    CREATE TABLE tv_slots (
        num INTEGER PRIMARY KEY,
        start TEXT NOT NULL,
        end TEXT NOT NULL,
        playlist_id TEXT NOT NULL REFERENCES tv_playlists (id) ON DELETE CASCADE,
        days TEXT NOT NULL DEFAULT '1234567',
        source TEXT NOT NULL
    );
    -- What loops between screenings, per source; the point's own choice comes before the county's.
    CREATE TABLE tv_loop (
        source TEXT PRIMARY KEY,
        playlist_id TEXT NOT NULL REFERENCES tv_playlists (id) ON DELETE CASCADE
    );
    """),
]
