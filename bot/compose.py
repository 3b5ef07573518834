"""Turn a feed entry into tweet text that fits X's 280 weighted characters (pure, no I/O).

The template names fields in braces (``{title} {url}``); ``{{``/``}}`` are literal braces and
newlines are kept.

The link is :func:`bot.links.normalise_link` of the entry's link and is never cut. A link that
is missing, not http(s), or not :func:`bot.links.usable` (longer than X shortens, or X would
link only a part of it) is replaced by the feed's home link in :func:`compose_posts`; when that
is no better, the entry gets an error result instead of a text. The link is set apart by
spaces when the template glues it to text that X would read as part of it.

Text from the feed (title, summary, author, feed title) is cleaned and has no live mentions
(:mod:`bot.fields`; ``keep_mentions=True`` leaves them). The template's own text is the
operator's and stays as written; hashtags and cashtags are left alone.

When the filled text is too long, fields shrink in this order: summary, hashtags (whole tags
dropped from the end), title, feed_title, author. Each is cut to the longest prefix that fits
(:mod:`bot.fit`: on grapheme-cluster boundaries, preferably at a word's end, ending with "…").
A field that is not cut is kept exactly as it came (after whitespace is collapsed).

A field shrunk to nothing takes the template's separators beside it along
(``{title} — {feed_title}`` -> ``Title``; never characters of another field's value), and a
line left empty by it goes. Spaces collapse on each line; blank lines stay (one in a row).
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from twitter_text import extract_urls_with_indices

from bot.errors import ConfigError
from bot.fields import (
    MAX_CATEGORY_TAGS,
    WORD_JOINER,
    clean_text,
    hashtags_from_categories,
    neutralise_mentions,
)
from bot.fit import (
    ELLIPSIS,
    FIELD_MAX_CHARS,
    MAX_WEIGHT,
    SEPARATORS,
    WORD_SLACK,
    Field,
    longest_fitting,
    weight_at_most,
    weighted_length,
    window_weight,
)
from bot.links import MAX_LINK_LENGTH, normalise_link, tweetable
from bot.models import Entry
from bot.networks import LengthRule, X

__all__ = [  # what bot.compose has always offered, some of it now from bot.fit and bot.fields
    "ELLIPSIS",
    "FIELDS",
    "FIELD_MAX_CHARS",
    "MAX_CATEGORY_TAGS",
    "MAX_WEIGHT",
    "WORD_JOINER",
    "WORD_SLACK",
    "Composed",
    "compose",
    "compose_for_rules",
    "compose_posts",
    "hashtags_from_categories",
    "neutralise_mentions",
    "validate_template",
    "weight_at_most",
    "weighted_length",
]

log = logging.getLogger(__name__)

FIELDS = ("title", "url", "feed_title", "author", "summary", "hashtags")
_SHRINK_ORDER = ("summary", "hashtags", "title", "feed_title", "author")
_EMPTY = "\x00"  # stand-in while rendering: an emptied field
_MARK = {name: chr(2 + i) for i, name in enumerate(FIELDS)}  # stand-ins: a field's value
_LITERAL_JUNK = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff\ufffe\uffff]")  # keep \t \n \r
_SEP = SEPARATORS
_EMPTY_PAIR = re.compile(r"[(\[] ?\x00 ?[)\]]")  # "( )" around an emptied field
_SEP_BEFORE = re.compile(rf" ?[{_SEP}]+ ?(?=\x00)")  # "Title — " before an emptied field
_SEP_AFTER_START = re.compile(rf"^((?:\x00 ?)+)[{_SEP}]+")  # " — Title" after one at line start
_URL_NEIGHBOUR_OK = " \n"
_FIELD_MARKS = frozenset(_MARK.values())


@dataclass(frozen=True, slots=True)
class Composed:
    """What became of one entry: the text to post, or why there is none."""

    text: str | None  # None: this entry cannot become a post
    error: str | None = None  # why not, in words a user reads in `bot posts --state failed`
    link: str | None = None  # the link the text carries (normalised; maybe the feed's home link)


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


def _skeleton(parts: list[tuple[str, str | None]], values: dict[str, str],
              pad_url: bool) -> str:
    """The template with stand-ins for the values, tidied around emptied fields."""
    pieces = []
    for literal, name in parts:
        pieces.append(_LITERAL_JUNK.sub("", literal))
        if name is not None:
            mark = _MARK[name] if values[name] else _EMPTY
            pieces.append(f" {mark} " if pad_url and name == "url" and values[name] else mark)
    lines = []
    for line in "".join(pieces).splitlines():
        tidy = _SEP_BEFORE.sub("", _EMPTY_PAIR.sub(_EMPTY, " ".join(line.split())))
        tidy = " ".join(_SEP_AFTER_START.sub(r"\1", tidy).replace(_EMPTY, " ").split())
        if tidy or _EMPTY not in line:  # drop lines that only held emptied fields
            lines.append(tidy)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _render(parts: list[tuple[str, str | None]], values: dict[str, str],
            pad_url: bool = False) -> str:
    """Fill the template: separators are tidied on the template's text, values go in last."""
    text = _skeleton(parts, values, pad_url)
    for name, mark in _MARK.items():
        if mark in text:
            text = text.replace(mark, values[name])
    return text


def _link_stays_whole(text: str, link: str) -> bool:
    """Whether X finds ``link`` whole in ``text`` (it is known to be tweetable on its own)."""
    start = text.find(link)
    while start >= 0:
        end = start + len(link)
        if not ((start and text[start - 1] not in _URL_NEIGHBOUR_OK)
                or (end < len(text) and text[end] not in _URL_NEIGHBOUR_OK)):
            return True
        start = text.find(link, start + 1)
    return any(found["url"] == link for found in extract_urls_with_indices(text))


def compose(template: str, entry: Entry, *, feed_title: str = "", hashtags: str = "",
            keep_mentions: bool = False, rule: LengthRule = X) -> str:
    """The post for ``entry``: the template filled, shrunk to fit ``rule`` (X's 280 weighted
    characters by default), link intact (written as ``rule.link_display`` has it, if set).

    The link is ``normalise_link(entry.link)`` (none when that is None). ``hashtags`` are extra
    tags ("#a #b") added after those made from the entry's categories. Raises ConfigError for a
    bad template, or when the template's own text plus the link leave no room even with every
    other field emptied.
    """
    validate_template(template)
    parts = [(literal, name) for literal, name, _, _ in string.Formatter().parse(template)]
    texts = {"title": entry.title, "feed_title": feed_title, "author": entry.author,
             "summary": entry.summary}
    values = {name: clean_text(text) for name, text in texts.items()}
    if not keep_mentions:
        values = {name: neutralise_mentions(text) for name, text in values.items()}
    link = normalise_link(entry.link) or ""
    values["hashtags"] = hashtags_from_categories(entry.categories, hashtags)
    used = {name for _, name in parts if name is not None}
    if link and (display := rule.link_display(link)) is not None:
        values["url"] = display  # a facet makes it a link: no padding to worry about
        return _fit(parts, values, used, False, rule)
    values["url"] = link
    return _fit(parts, values, used, _needs_padding(parts, values, used), rule)


def _needs_padding(parts: list[tuple[str, str | None]], values: dict[str, str],
                   used: set[str]) -> bool:
    """Whether the link needs spaces around it for X to see it whole (glued to text)."""
    link = values["url"]
    if "url" not in used or not link:
        return False
    skeleton = _skeleton(parts, values, pad_url=False)
    mark = _MARK["url"]
    start = skeleton.find(mark)
    while start >= 0:
        before = skeleton[start - 1] if start else " "
        after = skeleton[start + 1] if start + 1 < len(skeleton) else " "
        if before in _FIELD_MARKS or after in _FIELD_MARKS:
            return True  # glued to another field: its text may change what X sees
        if before not in _URL_NEIGHBOUR_OK or after not in _URL_NEIGHBOUR_OK:
            break
        start = skeleton.find(mark, start + 1)
    else:
        return False
    if not tweetable(link):
        return False  # spaces would not help
    emptied = {**values, **{name: "" for name in _SHRINK_ORDER if values[name]}}
    return not _link_stays_whole(_render(parts, emptied), link)


def _fit(parts: list[tuple[str, str | None]], values: dict[str, str], used: set[str],
         pad_url: bool, rule: LengthRule = X) -> str:
    weights: dict[str, int] = {}  # measuring is the slow part: never the same text twice
    limit, bound = rule.limit, rule.bound

    def weight(text: str) -> int:
        if text not in weights:
            weights[text] = rule.measure(text)
        return weights[text]

    def fits_text(text: str) -> bool:  # the cheap bound first: most posts fit by far
        return bound(text) <= limit or weight(text) <= limit

    text = _render(parts, values, pad_url)
    if bound(text) <= limit:
        return text  # the usual case: nothing to cut, and the exact measure need not be asked
    fields = {name: Field(name, values[name]) for name in _SHRINK_ORDER if name in used}
    sizes = {}
    for name, field in fields.items():  # a field whose words alone are too heavy: cut it now
        sizes[name] = min(field.size, field.cannot_fit_from(limit, rule.fit_url_weight))
        values[name] = field.cut(sizes[name])
    for name, field in fields.items():
        if fits_text(_render(parts, values, pad_url)):
            break

        def fits(n: int, name: str = name, field: Field = field) -> bool:
            return fits_text(_render(parts, {**values, name: field.cut(n)}, pad_url))

        def surely_fits(n: int, name: str = name, field: Field = field) -> bool:
            text = _render(parts, {**values, name: field.cut(n)}, pad_url)
            return bound(text) <= limit

        ref = _render(parts, {**values, name: field.cut(max(0, sizes[name] - 1))}, pad_url)

        def fits_word(n: int, name: str = name, field: Field = field, ref: str = ref) -> bool:
            text = _render(parts, {**values, name: field.cut(n)}, pad_url)
            return bound(text) <= limit or window_weight(text, ref, weight) <= limit

        keep = longest_fitting(field, sizes[name], fits, surely_fits, fits_word)
        values[name] = field.cut(keep)
    text = _render(parts, values, pad_url)
    if not fits_text(text):
        raise ConfigError(f"TWEET_TEMPLATE leaves no room: its own text and the link weigh "
                          f"{weight(text)} of {rule.name or rule.limit} even with every "
                          "other field emptied")
    return text


def _clip(text: str, size: int = 100) -> str:
    return text if len(text) <= size else text[:size] + ELLIPSIS


def _why_not(raw: str | None, link: str | None) -> str:
    """Why a link cannot be tweeted, for the error a user reads."""
    if not (raw or "").strip():
        return "the entry has no link"
    if link is None:
        return "it is not an absolute http(s) link"
    if len(link) > MAX_LINK_LENGTH:
        return (f"it is {len(link)} characters long and X shortens links of at most "
                f"{MAX_LINK_LENGTH}")
    return "X would link only a part of it (its end is not part of the link for X)"


def compose_posts(template: str, entries: Iterable[Entry], feed_title: str,
                  feed_link: str | None, hashtags: str = "", *,
                  keep_mentions: bool = False, rule: LengthRule = X) -> list[Composed]:
    """What to post for a feed's new entries: one :class:`Composed` per entry, in order.

    Hashtags asked for (``HASHTAGS``, a feed's own) go at the end when the template has no
    ``{hashtags}``. An entry whose link is missing, not http(s) or not
    :func:`~bot.links.usable` (too long, or X would link only a part of it) is tweeted with
    the feed's home link when that one is usable; else it gets an error result. A
    template that leaves no room for an entry falls back to ``{title} {url}``. An entry that
    already carries an ``error`` (found while parsing) keeps it. Nothing about one entry
    raises: whatever goes wrong becomes that entry's error.
    """
    if hashtags and "{hashtags}" not in template:
        template += " {hashtags}"
    try:
        validate_template(template)
        needs_link = "{url}" in template.replace("{{", "")
    except ConfigError:
        needs_link = True  # the fallback template has one
    home = normalise_link(feed_link)
    home = home if rule.usable_link(home) else None
    results = []
    for entry in entries:
        try:
            results.append(_compose_one(template, entry, feed_title, home, hashtags,
                                        keep_mentions, needs_link, rule))
        except Exception as exc:  # one entry never stops the others
            log.exception("compose_failed entry=%r", entry.id)
            results.append(Composed(None, error=f"could not compose this entry: "
                                    f"{type(exc).__name__}: {_clip(str(exc), 200)}"))
    return results


def compose_for_rules(rules: Sequence[LengthRule], template: str, entries: Sequence[Entry],
                      feed_title: str, feed_link: str | None, hashtags: str = "", *,
                      keep_mentions: bool = False) -> list[list[Composed]]:
    """:func:`compose_posts` under each rule (one call, for one trip to a parsing process)."""
    return [compose_posts(template, entries, feed_title, feed_link, hashtags,
                          keep_mentions=keep_mentions, rule=rule) for rule in rules]


def _compose_one(template: str, entry: Entry, feed_title: str, home: str | None,
                 hashtags: str, keep_mentions: bool, needs_link: bool,
                 rule: LengthRule = X) -> Composed:
    found = getattr(entry, "error", None)  # found while reading the feed: it stands
    if found:
        return Composed(None, error=found)
    link = normalise_link(entry.link)
    if not rule.usable_link(link):
        if needs_link and home is None:
            return Composed(None, error=f"link {_clip(entry.link or '')!r} cannot be tweeted: "
                            f"{_why_not(entry.link, link)}; and the feed has no usable home "
                            "link to tweet instead")
        link = home
    entry = replace(entry, link=link)
    options = {"feed_title": feed_title, "hashtags": hashtags, "keep_mentions": keep_mentions,
               "rule": rule}
    carries_link = needs_link
    try:
        text = compose(template, entry, **options)  # type: ignore[arg-type]
    except ConfigError as exc:
        log.error("template_unusable template=%r error=%s (using '{title} {url}')",
                  template, exc)
        carries_link = True
        try:
            text = compose("{title} {url}", entry, **options)  # type: ignore[arg-type]
        except ConfigError as again:
            return Composed(None, error=f"no text fits: {again}")
    if not text.strip():
        return Composed(None, error="nothing to post: every field the template names is empty "
                        "for this entry")
    return Composed(text, link=link if carries_link and link else None)
