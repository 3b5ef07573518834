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

from dataclasses import dataclass
from urllib.parse import urlsplit

from twitter_text import extract_urls_with_indices

from bot.fit import MAX_WEIGHT, graphemes, weight_at_most, weighted_length
from bot.links import MAX_LINK_LENGTH, normalise_link, usable

__all__ = [
    "BLUESKY",
    "BLUESKY_MAX_BYTES",
    "NETWORKS",
    "LengthRule",
    "X",
    "display_link",
    "graphemes",
    "mastodon_rule",
    "network_of",
    "rule_for",
]

NETWORKS = ("x", "mastodon", "bluesky")
BLUESKY_MAX_GRAPHEMES = 300
BLUESKY_MAX_BYTES = 3000
MASTODON_MAX_CHARACTERS = 500  # when the instance does not say
MASTODON_URL_CHARACTERS = 23


@dataclass(frozen=True, slots=True)
class LengthRule:
    """How long a post may be on one network, and how a text is measured there. Plain data
    (it crosses to the parsing processes with PARSE_PROCESSES): ``network`` picks the
    measure."""

    network: str
    limit: int
    url_weight: int = 23  # what a URL found in the text counts (Mastodon), at least (X)

    @property
    def name(self) -> str:
        """For messages: "X's 280 weighted characters"."""
        if self.network == "x":
            return f"X's {self.limit} weighted characters"
        if self.network == "mastodon":
            return f"the instance's {self.limit} characters"
        return f"Bluesky's {self.limit} characters"

    def measure(self, text: str) -> int:
        if self.network == "x":
            return weighted_length(text)
        if self.network == "mastodon":
            return _mastodon_length(text, self.url_weight)
        return _bluesky_length(text)

    def bound(self, text: str) -> int:
        """A cheap upper bound of :meth:`measure`."""
        if self.network == "x":
            return weight_at_most(text)
        if self.network == "mastodon":  # every URL Mastodon finds has a "." in its domain
            return len(text) + self.url_weight * text.count(".")
        # a cluster holds one code point or more
        return len(text) if len(text) * 4 <= BLUESKY_MAX_BYTES else _bluesky_length(text)

    @property
    def fit_url_weight(self) -> int:
        """What a URL-like word counts at least, for fit's shortcut (Bluesky counts it like
        any other word: no cap)."""
        return 10**9 if self.network == "bluesky" else self.url_weight

    def link_display(self, link: str) -> str | None:
        """How the post's link is written in the text; None: as it is (the network links
        it). Bluesky's is short, and a facet links it."""
        return display_link(link) if self.network == "bluesky" else None

    def usable_link(self, link: str | None) -> bool:
        """Whether ``link`` (a :func:`~bot.links.normalise_link` result) can be this post's
        link. X and Mastodon find links in the text themselves, so X's rule holds there
        (:func:`~bot.links.usable`: not one they would link only in part); on Bluesky a facet
        carries the link whatever its last character, so any http(s) link will do."""
        if self.network != "bluesky":
            return usable(link)
        return (link is not None and normalise_link(link) == link
                and len(link) <= MAX_LINK_LENGTH and link.startswith(("http://", "https://")))

    def fits(self, text: str) -> bool:
        return self.bound(text) <= self.limit or self.measure(text) <= self.limit


X = LengthRule("x", MAX_WEIGHT)
BLUESKY = LengthRule("bluesky", BLUESKY_MAX_GRAPHEMES, url_weight=0)


def mastodon_rule(max_characters: int = MASTODON_MAX_CHARACTERS,
                  characters_reserved_per_url: int = MASTODON_URL_CHARACTERS) -> LengthRule:
    """The rule of a Mastodon instance whose ``/api/v2/instance`` names these limits."""
    return LengthRule("mastodon", max_characters, characters_reserved_per_url)


def network_of(destination: str) -> str:
    """The network of a destination's name: ``mastodon:news`` -> ``mastodon``."""
    return destination.partition(":")[0]


def rule_for(network: str) -> LengthRule:
    """A network's rule before anything is known of its server."""
    return {"x": X, "mastodon": mastodon_rule(), "bluesky": BLUESKY}[network]


def _mastodon_length(text: str, per_url: int) -> int:
    # Mastodon gives the URL allowance only to URLs with a scheme (StatusLengthValidator)
    urls = extract_urls_with_indices(text, extract_urls_without_protocol=False) \
        if "." in text else []
    total, pos = 0, 0
    for found in urls:
        start, end = found["indices"]
        total += graphemes(text[pos:start]) + per_url
        pos = end
    return total + graphemes(text[pos:])


def _bluesky_length(text: str) -> int:
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
