"""Each network's length rule: how long a post may be and how a text is measured there.

The composer (:mod:`bot.compose`) fills the same template for every destination and shrinks
fields until the text fits the destination's :class:`LengthRule`:

- **X**: 280 of X's weighted characters (twitter-text: a URL weighs 23, CJK and emoji 2);
- **Mastodon**: the instance's ``max_characters`` (500 by default) in grapheme clusters, each
  URL counting ``characters_reserved_per_url`` (23), as Mastodon's StatusLengthValidator does;
- **Bluesky**: 300 grapheme clusters and 3,000 bytes of UTF-8. The link is written in the
  text as Bluesky's apps show it (:func:`display_link`: host and the start of the path) and
  made clickable by a link facet to the full URL, so a long link costs few characters.

``bound`` is a cheap upper bound of ``measure``: when it says a text fits, the exact (and
slower) measure need not be asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import regex
from twitter_text import extract_urls_with_indices

from bot.fit import MAX_WEIGHT, weight_at_most, weighted_length

__all__ = [
    "BLUESKY",
    "BLUESKY_MAX_BYTES",
    "NETWORKS",
    "LengthRule",
    "X",
    "display_link",
    "graphemes",
    "mastodon_rule",
]

NETWORKS = ("x", "mastodon", "bluesky")
BLUESKY_MAX_GRAPHEMES = 300
BLUESKY_MAX_BYTES = 3000
MASTODON_MAX_CHARACTERS = 500  # when the instance does not say
MASTODON_URL_CHARACTERS = 23
_CLUSTER = regex.compile(r"\X")


def graphemes(text: str) -> int:
    """How many user-perceived characters (extended grapheme clusters) ``text`` has."""
    return len(text) if text.isascii() else len(_CLUSTER.findall(text))


@dataclass(frozen=True, slots=True)
class LengthRule:
    """How long a post may be on one network, and how a text is measured there."""

    network: str
    limit: int
    measure: Callable[[str], int] = field(compare=False)
    bound: Callable[[str], int] = field(compare=False)
    url_weight: int = 23  # what a URL found in the text counts, at least (fit's shortcuts)
    # how the post's link is written in the text; None: as it is (the network links it)
    link_display: Callable[[str], str] | None = field(default=None, compare=False)
    name: str = ""  # for messages: "X's 280 weighted characters"

    def fits(self, text: str) -> bool:
        return self.bound(text) <= self.limit or self.measure(text) <= self.limit


X = LengthRule("x", MAX_WEIGHT, weighted_length, weight_at_most,
               name=f"X's {MAX_WEIGHT} weighted characters")


def mastodon_rule(max_characters: int = MASTODON_MAX_CHARACTERS,
                  characters_reserved_per_url: int = MASTODON_URL_CHARACTERS) -> LengthRule:
    """The rule of a Mastodon instance whose ``/api/v2/instance`` names these limits."""
    per_url = characters_reserved_per_url

    def measure(text: str) -> int:
        urls = extract_urls_with_indices(text)
        if not urls:
            return graphemes(text)
        total, pos = 0, 0
        for found in urls:
            start, end = found["indices"]
            total += graphemes(text[pos:start]) + per_url
            pos = end
        return total + graphemes(text[pos:])

    def bound(text: str) -> int:  # every URL Mastodon finds has a "." in its domain
        return len(text) + per_url * text.count(".")

    return LengthRule("mastodon", max_characters, measure, bound, url_weight=per_url,
                      name=f"the instance's {max_characters} characters")


def _bluesky_measure(text: str) -> int:
    if len(text.encode("utf-8")) > BLUESKY_MAX_BYTES:
        return BLUESKY_MAX_GRAPHEMES + 1 + len(text)  # over, and growing with the text
    return graphemes(text)


def display_link(url: str) -> str:
    """A link as Bluesky's apps write it in a post: no scheme, the host, and at most 13
    characters of the rest followed by "..." (the facet holds the full URL)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return url
    rest = url.split(parts.netloc, 1)[1]
    if rest == "/":
        rest = ""
    return parts.netloc + (rest[:13] + "..." if len(rest) > 15 else rest)


def _bluesky_bound(text: str) -> int:  # a cluster holds one code point or more
    return len(text) if len(text) * 4 <= BLUESKY_MAX_BYTES else _bluesky_measure(text)


# Bluesky counts a URL-like word in a title like any other word: url_weight is "no cap"
BLUESKY = LengthRule("bluesky", BLUESKY_MAX_GRAPHEMES, _bluesky_measure, _bluesky_bound,
                     url_weight=10**9, link_display=display_link,
                     name=f"Bluesky's {BLUESKY_MAX_GRAPHEMES} characters")
