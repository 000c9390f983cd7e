"""The catalogue's tables.  Numbered migrations; never edit an applied one."""

AREA = "catalog"


def _search_by_words(db) -> None:
    """The word index (catalog/search.py) replaces the trigram and gram tables; every visible resource is re-indexed."""
    from edgenode.node.catalog.search import sync_index
    conn = db.conn
    conn.execute("DROP TABLE IF EXISTS search_tri")
    conn.execute("DROP TABLE IF EXISTS search_gram")
    # prefix: short prefix queries (玉*, p_shui*) read one index entry instead of merging every word.
    conn.execute("CREATE VIRTUAL TABLE search_words USING fts5 (tw, tg, py, pyrun, ini, inirun, lead, leadini, "
                 "dg, facets, tokenize = \"unicode61 tokenchars '_'\", prefix = '1 2 3 4')")
    sync_index(conn)


MIGRATIONS = [
    (1, "resources", """
    CREATE TABLE resources (
        num INTEGER PRIMARY KEY,              -- stable rowid shared with the search tables
        id TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL CHECK (length(trim(title)) > 0),
        description TEXT NOT NULL DEFAULT '',
        column_key TEXT NOT NULL CHECK (column_key IN ('sannong', 'pushi', 'xinchengshi', 'shequ')),
        kind TEXT NOT NULL CHECK (kind IN ('video', 'audio', 'pdf', 'epub', 'image')),
        sha256 TEXT NOT NULL,                 -- the main file
        size INTEGER NOT NULL,
        mime TEXT NOT NULL,
        ext TEXT NOT NULL DEFAULT '',
        duration REAL,
        width INTEGER,
        height INTEGER,
        codecs TEXT NOT NULL DEFAULT '',
        playable INTEGER NOT NULL DEFAULT 1,  -- 0: needs transcoding for browsers
        poster_sha256 TEXT,
        language TEXT NOT NULL DEFAULT 'zh',
        source TEXT NOT NULL,                 -- 'cli', 'demo', 'bundle:<channel>:<seq>'
        channel TEXT,
        added_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        withdrawn_at REAL,
        visible INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX resources_visible_added ON resources (visible, added_at DESC);
    CREATE INDEX resources_column ON resources (column_key, visible, added_at DESC);
    CREATE INDEX resources_channel ON resources (channel);

    CREATE TABLE resource_tags (
        resource_num INTEGER NOT NULL REFERENCES resources (num) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        PRIMARY KEY (resource_num, tag)
    );
    CREATE INDEX resource_tags_tag ON resource_tags (tag, resource_num);

    -- Every blob a resource needs; the store's gc keeps exactly these.
    CREATE TABLE resource_blobs (
        resource_num INTEGER NOT NULL REFERENCES resources (num) ON DELETE CASCADE,
        sha256 TEXT NOT NULL,
        role TEXT NOT NULL,                   -- 'main', 'poster'
        PRIMARY KEY (resource_num, role)
    );
    CREATE INDEX resource_blobs_sha ON resource_blobs (sha256);

    -- What the store holds and what the last verify found.
    CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('ok', 'bad', 'missing')),
        checked_at REAL NOT NULL
    );

    CREATE TABLE store_checks (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        checked INTEGER NOT NULL,
        bad INTEGER NOT NULL,
        missing INTEGER NOT NULL
    );
    """),
    (2, "search", """
    -- Only visible resources are indexed, so counts need no join.  ``facets``
    -- holds column/kind/tag markers so filters stay inside one FTS query.
    -- Substring search for queries of 3+ characters, including pinyin.
    CREATE VIRTUAL TABLE search_tri USING fts5 (title, tags, pinyin, description, facets, tokenize = 'trigram');
    -- 1-2 character queries: text pre-split into CJK unigrams and bigrams, pinyin
    -- syllables and initial pairs, so a short word is one token lookup.
    CREATE VIRTUAL TABLE search_gram USING fts5 (title, tags, pinyin, description, facets, tokenize = 'unicode61');
    """),
    (3, "series and subtitles", """
    -- A series (系列/专辑): episodes are resources pointing at it, ordered by season and episode.
    CREATE TABLE series (
        num INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,              -- <channel>.<series id>, like resources
        title TEXT NOT NULL CHECK (length(trim(title)) > 0),
        description TEXT NOT NULL DEFAULT '',
        column_key TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '',        -- space-separated, for search
        channel TEXT,
        source TEXT NOT NULL,
        added_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    ALTER TABLE resources ADD COLUMN series_num INTEGER REFERENCES series (num);
    ALTER TABLE resources ADD COLUMN season INTEGER;
    ALTER TABLE resources ADD COLUMN episode INTEGER;
    CREATE INDEX resources_series ON resources (series_num, season, episode);

    -- WebVTT files (sanitised on import) shown through <track>; their blobs are resource_blobs 'sub:<lang>'.
    CREATE TABLE resource_subtitles (
        resource_num INTEGER NOT NULL REFERENCES resources (num) ON DELETE CASCADE,
        language TEXT NOT NULL,
        label TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        is_default INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (resource_num, language)
    );
    """),
    (4, "search by words", _search_by_words),
    (5, "catalogue version", """
    -- One counter that moves whenever what the portal shows moves, kept by triggers, so the page
    -- caches (portal/pagecache.py) read one row per request instead of scanning every resource.
    CREATE TABLE catalog_version (one INTEGER PRIMARY KEY CHECK (one = 1), n INTEGER NOT NULL);
    INSERT INTO catalog_version VALUES (1, 0);
    CREATE TRIGGER catalog_version_resource_add AFTER INSERT ON resources
        BEGIN UPDATE catalog_version SET n = n + 1; END;
    CREATE TRIGGER catalog_version_resource_drop AFTER DELETE ON resources
        BEGIN UPDATE catalog_version SET n = n + 1; END;
    -- Only changes a visitor can see: refresh_visibility rewrites every row and must not bump it 100,000 times.
    CREATE TRIGGER catalog_version_resource_change AFTER UPDATE ON resources
        WHEN OLD.visible IS NOT NEW.visible OR OLD.updated_at IS NOT NEW.updated_at
          OR OLD.withdrawn_at IS NOT NEW.withdrawn_at
        BEGIN UPDATE catalog_version SET n = n + 1; END;
    CREATE TRIGGER catalog_version_series_add AFTER INSERT ON series
        BEGIN UPDATE catalog_version SET n = n + 1; END;
    CREATE TRIGGER catalog_version_series_drop AFTER DELETE ON series
        BEGIN UPDATE catalog_version SET n = n + 1; END;
    CREATE TRIGGER catalog_version_series_change AFTER UPDATE ON series
        BEGIN UPDATE catalog_version SET n = n + 1; END;
    """),
]
