"""feed-tweeter: watch blog feeds and tweet each new article, exactly once."""

from bot import _pkg_resources

__version__ = "0.1.0"

_pkg_resources.install()  # before anything imports twitter-text-parser (see that module)
