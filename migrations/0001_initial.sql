-- The feeds we watch, the articles we have seen, and the posts we owe.
-- Applied once, in a transaction, by bot.store; PRAGMA user_version records it.

CREATE TABLE feeds (
    id                   INTEGER PRIMARY KEY,
    url                  TEXT NOT NULL UNIQUE,
    title                TEXT NOT NULL DEFAULT '',
    -- 'env' feeds follow FEED_URLS; 'cli' feeds were added by `bot feeds add`.
    origin               TEXT NOT NULL DEFAULT 'env' CHECK (origin IN ('env', 'cli')),
    -- active = polled. A URL dropped from FEED_URLS becomes inactive; its history stays.
    active               INTEGER NOT NULL DEFAULT 1,
    paused               INTEGER NOT NULL DEFAULT 0,
    gone                 INTEGER NOT NULL DEFAULT 0,
    baselined            INTEGER NOT NULL DEFAULT 0,   -- first successful poll done
    etag                 TEXT,
    last_modified        TEXT,
    last_status          INTEGER,
    last_error           TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_polled_at       REAL,
    last_success_at      REAL,
    next_poll_at         REAL NOT NULL DEFAULT 0,
    -- per-feed settings; NULL means "use the environment's default"
    template             TEXT,
    hashtags             TEXT,
    include_re           TEXT,
    exclude_re           TEXT,
    backfill             INTEGER,
    created_at           REAL NOT NULL
);

CREATE TABLE entries (
    id            INTEGER PRIMARY KEY,
    feed_id       INTEGER NOT NULL REFERENCES feeds (id),
    entry_key     TEXT NOT NULL,        -- the entry's id/guid, else link, else content hash
    link          TEXT,
    title         TEXT NOT NULL DEFAULT '',
    published_at  REAL,
    first_seen_at REAL NOT NULL,
    UNIQUE (feed_id, entry_key)
);
CREATE INDEX entries_by_link ON entries (link) WHERE link IS NOT NULL;

-- pending -> sending (claimed, committed before the call to X) -> sent | failed
CREATE TABLE posts (
    id              INTEGER PRIMARY KEY,
    entry_id        INTEGER NOT NULL UNIQUE REFERENCES entries (id),
    text            TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error      TEXT,
    tweet_id        TEXT,
    created_at      REAL NOT NULL,
    sent_at         REAL
);
CREATE INDEX posts_due ON posts (state, next_attempt_at, id);
CREATE INDEX posts_sent_at ON posts (sent_at) WHERE sent_at IS NOT NULL;

-- small durable facts: the rate-limit gate, so a restart does not hammer X
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
