-- How a feed's @names are tweeted: 'keep' (live mentions) or 'neutralise' (a word joiner after
-- the @, so X neither links nor notifies the account); NULL = MENTIONS from the environment.
ALTER TABLE feeds ADD COLUMN mentions TEXT CHECK (mentions IN ('keep', 'neutralise'));

-- Links are now normalised where they enter (bot.links: an IRI becomes a URI, userinfo goes,
-- the host is lower-case). Links stored by earlier versions get the same spelling, so that an
-- article read again after the upgrade still matches the one already tweeted. normalise_link
-- is registered on the connection by bot.store; a link it cannot read is kept as it was.
UPDATE entries SET link = normalise_link(link)
WHERE link IS NOT NULL AND normalise_link(link) IS NOT NULL AND normalise_link(link) <> link;
