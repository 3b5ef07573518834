-- Where a feed is fetched from after a permanent redirect (301/308). The feed keeps its
-- configured url (its identity, matched against FEED_URLS at start-up); NULL = fetch url.
ALTER TABLE feeds ADD COLUMN fetch_url TEXT;
