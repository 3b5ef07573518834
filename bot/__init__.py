"""feed-tweeter: watch blog feeds and tweet each new article, exactly once."""

__version__ = "0.1.0"
