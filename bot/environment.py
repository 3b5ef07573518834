"""Which names in the environment are not settings: the ``.env``-aware :class:`Environment`
and the warnings about unknown or misspelt names (``POLL_INTERVALL``, ``DRYRUN``)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping

NEAR_MISS = 0.8  # difflib's ratio above which a name is taken for a misspelt setting


class Environment(dict[str, str]):
    """The settings' source: the process environment over a ``.env`` file's values, which
    remembers the names that came from the file (a misspelt one there is surely a mistake)."""

    def __init__(self, values: Mapping[str, str], dotenv_keys: Iterable[str] = ()) -> None:
        super().__init__(values)
        self.dotenv_keys = frozenset(dotenv_keys)


def _unknown_settings(env: Mapping[str, str], names: set[str]) -> Iterator[str]:
    """Warnings for the settings that are not: every unknown name in ``.env``, and a variable
    of the environment that is close to a setting's name (``POLL_INTERVALL``, ``DRYRUN``)."""
    dotenv_keys: frozenset[str] = getattr(env, "dotenv_keys", frozenset())
    guesses = dict(_near_misses(env, names))
    for key in sorted(env):
        guess = guesses.get(key)
        hint = f"; did you mean {guess}?" if guess else ""
        if key in dotenv_keys and key not in names:
            yield f"{key} (in .env) is not a setting, and is ignored{hint}"
        elif guess and guess not in env:
            yield f"{key} is not a setting, and is ignored{hint}"


def _near_misses(env: Mapping[str, str], names: set[str]) -> Iterator[tuple[str, str]]:
    """(variable, setting) for each variable set in ``env`` that is no setting but whose name
    is close to one's."""
    for key in env:
        if key not in names:
            # MASTODON_ACESS_TOKEN__NEWS: the name before the account's suffix is misspelt
            base, sep, suffix = key.partition("__")
            suffix = sep + suffix if sep and base and suffix else ""
            probe = base if suffix else key
            for guess in difflib.get_close_matches(probe, names, n=1, cutoff=NEAR_MISS):
                yield key, guess + suffix
