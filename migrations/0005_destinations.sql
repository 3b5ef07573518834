-- Destinations: a post is owed per article AND destination (one account on X, Mastodon or
-- Bluesky), so each network gets its own row, queue, attempts and outcome. Every post stored
-- by earlier versions was for X: it becomes a post for the destination 'x', with its state,
-- attempts and tweet id as they were, so nothing is sent again.
--
-- post_key: chosen when the row is written (bot.delivery.new_key, a TID), so it is on disk
--           before the first attempt: Mastodon's Idempotency-Key, Bluesky's record key.
-- card:     JSON {title, description, image} of the link card (Bluesky), or NULL.
CREATE TABLE posts_new (
    id              INTEGER PRIMARY KEY,
    entry_id        INTEGER NOT NULL REFERENCES entries (id),
    destination     TEXT NOT NULL DEFAULT 'x',
    text            TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error      TEXT,
    tweet_id        TEXT,           -- the post's id on its network (a tweet id, a status id, an at:// URI)
    created_at      REAL NOT NULL,
    sent_at         REAL,
    post_key        TEXT,
    card            TEXT,
    UNIQUE (entry_id, destination)
);
INSERT INTO posts_new (id, entry_id, destination, text, state, attempts, next_attempt_at,
                       last_error, tweet_id, created_at, sent_at)
SELECT id, entry_id, 'x', text, state, attempts, next_attempt_at, last_error, tweet_id,
       created_at, sent_at
FROM posts;
DROP TABLE posts;
ALTER TABLE posts_new RENAME TO posts;
CREATE INDEX posts_due ON posts (destination, state, next_attempt_at, id);
-- the posts sent in a window (budgets, status, /metrics): a range of sent_at, whatever the
-- history's length; (entry_id, destination)'s UNIQUE index serves the joins from entries
CREATE INDEX posts_sent_at ON posts (sent_at, destination) WHERE sent_at IS NOT NULL;

-- Which destinations a feed's articles go to: names separated by commas
-- (`feeds add URL --to x,mastodon`); NULL: every destination configured.
ALTER TABLE feeds ADD COLUMN destinations TEXT;
