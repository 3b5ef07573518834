"""How the user runs the bot's commands on this machine, for the messages that suggest one.

After ``pipx install .`` it is ``feed-tweeter``; after ``make run`` it is
``.venv/bin/feed-tweeter`` (the script is not on PATH); ``python -m bot`` in a checkout. A
message that says "run `feed-tweeter feeds add URL`" should be one that works as written.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys

NAME = "feed-tweeter"


@functools.cache
def command() -> str:
    """The shortest way to run the bot's command line that works from the current folder."""
    script = sys.argv[0] if sys.argv and os.path.basename(sys.argv[0]) == NAME else \
        os.path.join(os.path.dirname(sys.executable), NAME)
    if os.path.exists(script):
        on_path = shutil.which(NAME)
        if on_path and os.path.realpath(on_path) == os.path.realpath(script):
            return NAME
        return _short(script)
    return f"{_short(sys.executable)} -m bot"


def _short(path: str) -> str:
    """``path`` relative to the current folder when that is below it, else absolute."""
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute)
    except ValueError:
        return absolute
    return relative if not relative.startswith("..") else absolute
