"""``make demo``: the bot against a local blog and local fakes of X, Mastodon and Bluesky,
offline. See __main__."""
