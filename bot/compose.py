"""Turn a feed entry into tweet text that fits X's 280 weighted characters (pure, no I/O).

The template names fields in braces (``{title} {url}``); ``{{``/``}}`` are literal braces and
newlines are kept. When the filled text is too long, fields shrink in this order: summary, hashtags
(whole tags dropped from the end), title, feed_title, author. Text fields are cut at the last space
before the limit and end with "…"; they are cut at the character limit instead when the last word
would lose more than 20 characters (CJK text, very long words); an emoji, flag or accented letter
is never split. Each text field is first capped at 280 characters. The URL is never cut. A field
shrunk to nothing takes the separators beside it along (``{title} — {feed_title}`` -> ``Title``),
and a line left empty by it goes. Spaces collapse on each line; blank lines stay (one in a row).
"""

from __future__ import annotations

import functools
import logging
import re
import string
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import replace

from twitter_text import parse_tweet

from bot.errors import ConfigError
from bot.models import Entry

log = logging.getLogger(__name__)

FIELDS = ("title", "url", "feed_title", "author", "summary", "hashtags")
MAX_WEIGHT = 280
MAX_CATEGORY_TAGS = 5
ELLIPSIS = "…"
WORD_SLACK = 20  # cut mid-word rather than lose more than this many characters to a word boundary
FIELD_CAP = MAX_WEIGHT  # characters: longer only fits thanks to links in it, so cut first
_SHRINK_ORDER = ("summary", "hashtags", "title", "feed_title", "author")
_EMPTY, _URL = "\x00", "\x01"  # stand-ins while rendering: an emptied field, the link
_JUNK = re.compile("[\x00-\x1f\x7f\ufeff\ufffe\uffff]")  # control characters and what X rejects
_LITERAL_JUNK = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff\ufffe\uffff]")  # keep \t \n \r
_SEP = "-–—|:·•,;/"
_EMPTY_PAIR = re.compile(r"[(\[] ?\x00 ?[)\]]")  # "( )" around an emptied field
_SEP_BEFORE = re.compile(rf" ?[{_SEP}]+ ?(?=\x00)")  # "Title — " before an emptied field
_SEP_AFTER_START = re.compile(rf"^((?:\x00 ?)+)[{_SEP}]+")  # " — Title" after one at line start
_ZWJ = "\u200d"
_FLAG_HALVES = "".join(map(chr, range(0x1F1E6, 0x1F200)))  # regional indicators, 2 per flag


def validate_template(template: str) -> None:
    """Raise ConfigError unless the template is plain text plus at least one known ``{field}``."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"TWEET_TEMPLATE has malformed braces ({exc}); "
                          "write {{ and }} for literal braces") from None
    allowed = ", ".join(f"{{{name}}}" for name in FIELDS)
    names = [name for _, name, _, _ in parts if name is not None]
    for _, name, spec, conversion in parts:
        if name is not None and name not in FIELDS:
            raise ConfigError(f'TWEET_TEMPLATE has unknown field "{{{name}}}"; allowed: {allowed}')
        if spec or conversion:
            raise ConfigError(f'TWEET_TEMPLATE field "{{{name}}}" takes no !conversion or :format')
    if not names:
        raise ConfigError(f"TWEET_TEMPLATE names no field; use some of: {allowed}")


def weighted_length(text: str) -> int:
    """X's weighted length: NFC, every URL weighs 23, CJK and emoji weigh 2."""
    return parse_tweet(text).weightedLength


def weight_at_most(text: str) -> int:
    """An upper bound of :func:`weighted_length`, a thousand times cheaper (0.7 µs).

    ``parse_tweet`` (twitter-text) costs 0.3-0.7 ms for a tweet, most of it finding URLs and
    emoji; when the bound says a text fits, compose() need not ask it. In twitter-text a
    character weighs 1 or 2 (every ASCII character 1), an emoji weighs 2 and always holds a
    character that is not ASCII (a keycap's digit comes with U+20E3), and a URL weighs 23
    whatever its length. Every URL it finds has a "." in its domain, so there are at most as
    many URLs as dots. Hence, on the NFC text it measures (NFC can lengthen a text): 1 for
    each character, 1 more for each one that is not ASCII, and 23 for each dot.
    ``tests/test_compose.py`` holds it to parse_tweet on thousands of texts.
    """
    text = unicodedata.normalize("NFC", text)
    extra = 0 if text.isascii() else len(text) - len(text.encode("ascii", "ignore"))
    return len(text) + extra + 23 * text.count(".")


def _clean(text: str) -> str:
    return " ".join(_JUNK.sub(" ", unicodedata.normalize("NFC", text or "")).split())


def _hashtag(phrase: str, min_length: int) -> str:
    """"machine learning" -> "#MachineLearning"; "" when nothing usable (no letter) is left."""
    kept = "".join(c if c == "_" or unicodedata.category(c)[0] in "LM" or
                   unicodedata.category(c) == "Nd" else " "
                   for c in _clean(phrase) if c not in "'’")
    words = kept.split()
    if len(words) > 1:
        words = [word[:1].upper() + word[1:] for word in words]
    tag = "".join(words)
    has_letter = any(unicodedata.category(c)[0] == "L" for c in tag)
    return "#" + tag if has_letter and len(tag) >= min_length else ""


def hashtags_from_categories(categories: Iterable[str], extra: str = "") -> str:
    """Up to 5 hashtags from the categories, then the ``extra`` ones ("#a #b"), deduplicated.

    Characters hashtags cannot hold are dropped (apostrophes silently, others split words),
    multi-word categories are CamelCased, and categories that leave no letter ("2024") or a
    single character ("C++" -> "C") are skipped. Duplicates compare case-insensitively.
    """
    tags: list[str] = []
    seen: set[str] = set()

    def add(tag: str) -> None:
        if tag and tag.casefold() not in seen:
            seen.add(tag.casefold())
            tags.append(tag)

    for category in categories:
        if len(tags) >= MAX_CATEGORY_TAGS:
            break
        add(_hashtag(category, min_length=2))
    for token in re.split(r"[\s,]+", extra or ""):
        add(_hashtag(token, min_length=1))
    return " ".join(tags)


def _extends(c: str) -> bool:
    """Whether ``c`` belongs to the character before it (accent, ZWJ, variation selector...)."""
    o = ord(c)
    return (unicodedata.category(c) in ("Mn", "Me", "Mc") or c == _ZWJ
            or 0xFE00 <= o <= 0xFE0F or 0x1F3FB <= o <= 0x1F3FF
            or 0xE0020 <= o <= 0xE007F or 0xE0100 <= o <= 0xE01EF)


def _splits_cluster(before: str, after: str) -> bool:
    if not before or not after:
        return False
    if before[-1] == _ZWJ or _extends(after[0]):
        return True
    halves = len(before) - len(before.rstrip(_FLAG_HALVES))
    return halves % 2 == 1 and after[0] in _FLAG_HALVES


def _shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text`` plus "…", cut between words when reasonable."""
    if limit >= len(text):
        return text
    kept = text[:limit]
    space = kept.rfind(" ")
    if text[limit] != " " and space > 0 and limit - space <= WORD_SLACK:
        kept = kept[:space]
    while _splits_cluster(kept, text[len(kept):len(kept) + 1]):
        kept = kept[:-1]
    kept = kept.rstrip(" " + _SEP + "([")
    return kept + ELLIPSIS if kept else ""


def _cut(name: str, full: str, n: int) -> str:
    """The first n tags of the hashtags, or the first n characters (and "…") of a text field."""
    return " ".join(full.split()[:n]) if name == "hashtags" else _shorten(full, n)


def _largest_fitting(size: int, fits: Callable[[int], bool]) -> int:
    """Binary search: the largest n < size with fits(n), or 0. fits(size) is known false."""
    lo, hi = 0, size
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def _fill(name: str | None, values: dict[str, str]) -> str:
    if name is None:
        return ""
    if not values[name]:
        return _EMPTY
    return _URL if name == "url" else values[name]


def _render(parts: list[tuple[str, str | None]], values: dict[str, str]) -> str:
    """Fill the template, collapse spaces on each line, tidy up around emptied fields."""
    raw = "".join(_LITERAL_JUNK.sub("", literal) + _fill(name, values) for literal, name in parts)
    lines = []
    for line in raw.splitlines():
        tidy = _SEP_BEFORE.sub("", _EMPTY_PAIR.sub(_EMPTY, " ".join(line.split())))
        tidy = " ".join(_SEP_AFTER_START.sub(r"\1", tidy).replace(_EMPTY, " ").split())
        if tidy or _EMPTY not in line:  # drop lines that only held emptied fields
            lines.append(tidy)
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return text.replace(_URL, values["url"])


def _fits_cut(fits: Callable[[dict[str, str]], bool], values: dict[str, str], name: str,
              full: str, n: int) -> bool:
    return fits({**values, name: _cut(name, full, n)})


def compose(template: str, entry: Entry, *, feed_title: str = "", hashtags: str = "") -> str:
    """The tweet for ``entry``: the template filled, shrunk to fit MAX_WEIGHT, link intact.

    ``hashtags`` are extra tags ("#a #b") added after those made from the entry's categories.
    Raises ConfigError for a bad template, or when the template's own text plus the link
    leave no room even with every other field emptied.
    """
    validate_template(template)
    parts = [(literal, name) for literal, name, _, _ in string.Formatter().parse(template)]
    values = {name: _shorten(_clean(text), FIELD_CAP) for name, text in (
        ("title", entry.title), ("feed_title", feed_title), ("author", entry.author),
        ("summary", entry.summary))}
    values["url"] = _JUNK.sub("", entry.link or "").strip()
    values["hashtags"] = hashtags_from_categories(entry.categories, hashtags)

    weights: dict[str, int] = {}  # measuring is the slow part: never the same text twice

    def weight(text: str) -> int:
        if text not in weights:
            weights[text] = weighted_length(text)
        return weights[text]

    def fits_text(text: str) -> bool:  # the cheap bound first: most tweets fit by far
        return weight_at_most(text) <= MAX_WEIGHT or weight(text) <= MAX_WEIGHT

    def fits(candidate: dict[str, str]) -> bool:
        return fits_text(_render(parts, candidate))

    used = {name for _, name in parts}
    for name in (name for name in _SHRINK_ORDER if name in used):
        if fits(values):
            break
        full = values[name]
        size = len(full.split()) if name == "hashtags" else len(full)
        keep = _largest_fitting(size, functools.partial(_fits_cut, fits, values, name, full))
        values[name] = _cut(name, full, keep)
    text = _render(parts, values)
    if not fits_text(text):
        total = weight(text)
        raise ConfigError(f"TWEET_TEMPLATE leaves no room: its own text and the link weigh "
                          f"{total} of {MAX_WEIGHT} even with every other field emptied")
    return text


def compose_posts(template: str, entries: Iterable[Entry], feed_title: str,
                  feed_link: str | None, hashtags: str = "") -> list[str]:
    """The tweets for a feed's new entries, as the worker posts them and `preview` shows them.

    Hashtags asked for (``HASHTAGS``, a feed's own) go at the end when the template has no
    ``{hashtags}``; an entry without a link is tweeted with the feed's home page link; a
    template that leaves no room for an entry falls back to ``{title} {url}``.
    """
    if hashtags and "{hashtags}" not in template:
        template += " {hashtags}"
    texts = []
    for entry in entries:
        if not entry.link and feed_link:
            entry = replace(entry, link=feed_link)
        try:
            texts.append(compose(template, entry, feed_title=feed_title, hashtags=hashtags))
        except ConfigError as exc:
            log.error("template_unusable template=%r error=%s (using '{title} {url}')",
                      template, exc)
            texts.append(compose("{title} {url}", entry, feed_title=feed_title))
    return texts
