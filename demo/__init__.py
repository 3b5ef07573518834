"""``make demo``: the bot against a local blog and a local fake X, offline. See __main__."""
