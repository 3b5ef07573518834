"""Turn a feed entry into tweet text that fits X's 280 weighted characters (pure, no I/O).

The template names fields in braces (``{title} {url}``); ``{{``/``}}`` are literal braces and
newlines are kept.

The link is :func:`bot.links.normalise_link` of the entry's link and is never cut. A link that
is missing, not http(s), or not :func:`bot.links.usable` (longer than X shortens, or X would
link only a part of it) is replaced by the feed's home link in :func:`compose_posts`; when that
is no better, the entry gets an error result instead of a text. The link is set apart by
spaces when the template glues it to text that X would read as part of it.

Text from the feed (title, summary, author, feed title) has no live mentions: an ``@``/``＠``
that X would read as the start of a mention gets U+2060 WORD JOINER after it, so it reads the
same but neither links nor notifies anyone (``keep_mentions=True`` leaves them). The template's
own text is the operator's and stays as written; hashtags and cashtags are left alone.

When the filled text is too long, fields shrink in this order: summary, hashtags (whole tags
dropped from the end), title, feed_title, author. Each is cut to the longest prefix that fits,
counted in grapheme clusters (``regex``'s ``\\X``: an emoji, flag, accented letter or Indic
conjunct is never split), measured by twitter-text (X's weight is not monotonic in length when
the text holds URL-like words, so the cheap bound :func:`weight_at_most` finds a prefix that
surely fits and twitter-text decides above it). A cut falls at the last space before the limit
when that loses at most 20 characters (else mid-word, on a cluster boundary), loses separators
and brackets at its end, and ends with "…". A field that is not cut is kept exactly as it
came (after whitespace is collapsed). A field is never longer than 8192 characters, and a field
that cannot fit (its words alone weigh more than 280) is cut before the search.

A field shrunk to nothing takes the template's separators beside it along
(``{title} — {feed_title}`` -> ``Title``; never characters of another field's value), and a
line left empty by it goes. Spaces collapse on each line; blank lines stay (one in a row).
"""

from __future__ import annotations

import bisect
import logging
import os
import re
import string
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import regex
from twitter_text import extract_urls_with_indices, parse_tweet

from bot.errors import ConfigError
from bot.links import MAX_LINK_LENGTH, normalise_link, tweetable, usable
from bot.models import Entry

log = logging.getLogger(__name__)

FIELDS = ("title", "url", "feed_title", "author", "summary", "hashtags")
MAX_WEIGHT = 280
MAX_CATEGORY_TAGS = 5
ELLIPSIS = "…"
WORD_JOINER = "\u2060"  # after a feed's "@": reads the same, is no mention
WORD_SLACK = 20  # cut mid-word rather than lose more than this many characters to a word boundary
FIELD_MAX_CHARS = 8192  # a text field is first cut to this many characters
_SHRINK_ORDER = ("summary", "hashtags", "title", "feed_title", "author")
_EMPTY = "\x00"  # stand-in while rendering: an emptied field
_MARK = {name: chr(2 + i) for i, name in enumerate(FIELDS)}  # stand-ins: a field's value
_JUNK = re.compile("[\x00-\x1f\x7f\ufeff\ufffe\uffff]")  # control characters and what X rejects
_LITERAL_JUNK = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff\ufffe\uffff]")  # keep \t \n \r
_SEP = "-–—|:·•,;/"
_CUT_TRAIL = " " + _SEP + "(["  # what a cut field loses at its end
_EMPTY_PAIR = re.compile(r"[(\[] ?\x00 ?[)\]]")  # "( )" around an emptied field
_SEP_BEFORE = re.compile(rf" ?[{_SEP}]+ ?(?=\x00)")  # "Title — " before an emptied field
_SEP_AFTER_START = re.compile(rf"^((?:\x00 ?)+)[{_SEP}]+")  # " — Title" after one at line start
_CLUSTER = regex.compile(r"\X")
# twitter-text's mention: "@" or "＠", then [A-Za-z0-9_], not after a letter, digit or one of
# _!#$%&*@＠ (so not in an e-mail address) unless after "RT" or "RT:". A value's first "@" may
# follow any template text, and its last one may be followed by any, so both count.
_MENTION_AT = regex.compile(
    r"(?:(?<=^|[^A-Za-z0-9_!#$%&*@＠])|(?<=(?:^|[^A-Za-z0-9_+~.-])[Rr][Tt]:?))"
    r"([@＠])(?=[A-Za-z0-9_]|$)")
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


def neutralise_mentions(text: str) -> str:
    """``text`` with a word joiner after every "@"/"＠" X could read as a mention."""
    if "@" not in text and "＠" not in text:
        return text
    return _MENTION_AT.sub(lambda m: m.group(1) + WORD_JOINER, text)


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


class _Field:
    """One field's full value and how to cut it to its first n units (clusters or tags)."""

    def __init__(self, name: str, full: str) -> None:
        self.name, self.full = name, full
        if name == "hashtags":
            self.tags = full.split()
            self.size = len(self.tags)
            self.run_ends: list[int] = list(range(self.size + 1))
            return
        self.ends = [m.end() for m in _CLUSTER.finditer(full)]  # cluster i ends at ends[i]
        self.size = len(self.ends)
        self.run_ends = [i + 1 for i in range(self.size - 1) if full[self.ends[i]] == " "]

    def cut(self, n: int) -> str:
        """The first n tags; or n clusters, back to a space when that loses ≤ 20, and "…"."""
        if n >= self.size:
            return self.full
        if self.name == "hashtags":
            return " ".join(self.tags[:n])
        full, ends = self.full, self.ends
        limit = ends[n - 1] if n else 0
        space = full.rfind(" ", 0, limit)
        if full[limit] != " " and space > 0 and limit - space <= WORD_SLACK:
            i = bisect.bisect_right(ends, space)  # the cluster boundary at or before the space
            limit = ends[i - 1] if i else 0
        kept = full[:limit].rstrip(_CUT_TRAIL)
        return kept + ELLIPSIS if kept else ""

    def cannot_fit_from(self) -> int:
        """A size from which no cut can fit: its words alone weigh more than MAX_WEIGHT.

        Counted are the words after the first (which may join the template's text before it),
        each with the space before it (1). X finds URLs only where there is a ".", so a word
        without one weighs at least one per cluster; a word with one at least min(23, its
        clusters). A cut of n units whose text reaches past the space after such words holds
        them all whole (its end may lose separators, which are not counted).
        """
        if self.name == "hashtags":
            return self.size + 1
        total, pos = 0, 0
        limit = min(self.size, bisect.bisect_left(self.ends, FIELD_MAX_CHARS) + 1)
        for index, word in enumerate(self.full.split(" ")[:-1]):
            pos += len(word) + 1  # past the space after this word
            core = word.rstrip(_CUT_TRAIL)
            if index and core:
                clusters = len(core) if core.isascii() else len(_CLUSTER.findall(core))
                total += 1 + (min(23, clusters) if "." in core else clusters)
            if total > MAX_WEIGHT or pos > FIELD_MAX_CHARS:
                return min(limit, bisect.bisect_left(self.ends, pos) + 1)
        return limit if limit < self.size else self.size + 1

    def dotted(self, lo: int, hi: int) -> bool:
        """Whether the words holding clusters lo..hi have a "." (X may see a URL there)."""
        start = self.ends[lo - 1] if lo else 0
        start = self.full.rfind(" ", 0, start) + 1
        return "." in self.full[start:self.ends[hi - 1]]


def _longest_fitting(field: _Field, size: int, fits: Callable[[int], bool],
                     surely_fits: Callable[[int], bool],
                     fits_word: Callable[[int], bool]) -> int:
    """The largest n < size with fits(n) (fits(size) is false), or 0.

    ``surely_fits`` (the cheap bound) implies ``fits`` and, like X's weight between spaces,
    grows with n: a bisection on it gives a start that surely fits. Between the ends of whole
    words X's weight grows too, so a bisection with ``fits`` over word ends finds the last word
    that fits whole. Inside the next word ``fits_word`` (the same answer, measuring only that
    word) decides: a bisection when the word has no "." (no URL can appear in it), else every
    cut from the word's end down (64 at most; below those, a bisection, which in a long word
    full of dots may stop short of the longest). The answer is checked with ``fits``.
    """
    lo, hi = 0, size
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if surely_fits(mid) else (lo, mid)
    ends = [n for n in field.run_ends if lo < n < size]
    i, j = -1, len(ends)
    while j - i > 1:
        mid = (i + j) // 2
        i, j = (mid, j) if fits(ends[mid]) else (i, mid)
    if i >= 0:
        lo = ends[i]
    top = ends[i + 1] if i + 1 < len(ends) else size
    if field.name != "hashtags" and top - lo > 1 and field.dotted(lo, top):
        bottom = max(lo, top - 65)
        for n in range(top - 1, bottom, -1):
            if fits_word(n) and fits(n):
                return n
        top = bottom + 1
    start = lo
    for check in (fits_word, fits):
        lo, hi = start, top
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if check(mid) else (lo, mid)
        if lo == start or fits(lo):
            return lo
    return start  # pragma: no cover - fits and fits_word agree


def _window_weight(text: str, ref: str, weight: Callable[[str], int]) -> int:
    """``weight(text)``, measuring anew only the words where ``text`` differs from ``ref``.

    X's weight adds up over pieces split at a space: a space weighs 1, and no URL, emoji or
    NFC composition reaches across one; so the unchanged words before and after are measured
    once (``weight`` remembers them).
    """
    p = len(os.path.commonprefix((text, ref)))  # noqa: RUF071 - of two strings, not paths
    s, most = 0, min(len(text), len(ref)) - p
    while s < most and text[-1 - s] == ref[-1 - s]:
        s += 1
    a = text.rfind(" ", 0, p)
    b = text.find(" ", max(len(text) - s, a + 1))
    head = weight(text[:a]) + 1 if a >= 0 else 0
    tail = weight(text[b:]) if b >= 0 else 0
    return head + weight(text[a + 1:b] if b >= 0 else text[a + 1:]) + tail


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
            keep_mentions: bool = False) -> str:
    """The tweet for ``entry``: the template filled, shrunk to fit MAX_WEIGHT, link intact.

    The link is ``normalise_link(entry.link)`` (none when that is None). ``hashtags`` are extra
    tags ("#a #b") added after those made from the entry's categories. Raises ConfigError for a
    bad template, or when the template's own text plus the link leave no room even with every
    other field emptied.
    """
    validate_template(template)
    parts = [(literal, name) for literal, name, _, _ in string.Formatter().parse(template)]
    texts = {"title": entry.title, "feed_title": feed_title, "author": entry.author,
             "summary": entry.summary}
    values = {name: _clean(text) for name, text in texts.items()}
    if not keep_mentions:
        values = {name: neutralise_mentions(text) for name, text in values.items()}
    values["url"] = normalise_link(entry.link) or ""
    values["hashtags"] = hashtags_from_categories(entry.categories, hashtags)
    used = {name for _, name in parts if name is not None}
    return _fit(parts, values, used, _needs_padding(parts, values, used))


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
         pad_url: bool) -> str:
    weights: dict[str, int] = {}  # measuring is the slow part: never the same text twice

    def weight(text: str) -> int:
        if text not in weights:
            weights[text] = weighted_length(text)
        return weights[text]

    def fits_text(text: str) -> bool:  # the cheap bound first: most tweets fit by far
        return weight_at_most(text) <= MAX_WEIGHT or weight(text) <= MAX_WEIGHT

    text = _render(parts, values, pad_url)
    if weight_at_most(text) <= MAX_WEIGHT:
        return text  # the usual case: nothing to cut, and twitter-text need not be asked
    fields = {name: _Field(name, values[name]) for name in _SHRINK_ORDER if name in used}
    sizes = {}
    for name, field in fields.items():  # a field whose words alone are too heavy: cut it now
        sizes[name] = min(field.size, field.cannot_fit_from())
        values[name] = field.cut(sizes[name])
    for name, field in fields.items():
        if fits_text(_render(parts, values, pad_url)):
            break

        def fits(n: int, name: str = name, field: _Field = field) -> bool:
            return fits_text(_render(parts, {**values, name: field.cut(n)}, pad_url))

        def surely_fits(n: int, name: str = name, field: _Field = field) -> bool:
            text = _render(parts, {**values, name: field.cut(n)}, pad_url)
            return weight_at_most(text) <= MAX_WEIGHT

        ref = _render(parts, {**values, name: field.cut(max(0, sizes[name] - 1))}, pad_url)

        def fits_word(n: int, name: str = name, field: _Field = field, ref: str = ref) -> bool:
            text = _render(parts, {**values, name: field.cut(n)}, pad_url)
            return (weight_at_most(text) <= MAX_WEIGHT
                    or _window_weight(text, ref, weight) <= MAX_WEIGHT)

        keep = _longest_fitting(field, sizes[name], fits, surely_fits, fits_word)
        values[name] = field.cut(keep)
    text = _render(parts, values, pad_url)
    if not fits_text(text):
        raise ConfigError(f"TWEET_TEMPLATE leaves no room: its own text and the link weigh "
                          f"{weight(text)} of {MAX_WEIGHT} even with every other field emptied")
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
                  keep_mentions: bool = False) -> list[Composed]:
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
    home = home if usable(home) else None
    results = []
    for entry in entries:
        try:
            results.append(_compose_one(template, entry, feed_title, home, hashtags,
                                        keep_mentions, needs_link))
        except Exception as exc:  # one entry never stops the others
            log.exception("compose_failed entry=%r", entry.id)
            results.append(Composed(None, error=f"could not compose this entry: "
                                    f"{type(exc).__name__}: {_clip(str(exc), 200)}"))
    return results


def _compose_one(template: str, entry: Entry, feed_title: str, home: str | None,
                 hashtags: str, keep_mentions: bool, needs_link: bool) -> Composed:
    found = getattr(entry, "error", None)  # found while reading the feed: it stands
    if found:
        return Composed(None, error=found)
    link = normalise_link(entry.link)
    if not usable(link):
        if needs_link and home is None:
            return Composed(None, error=f"link {_clip(entry.link or '')!r} cannot be tweeted: "
                            f"{_why_not(entry.link, link)}; and the feed has no usable home "
                            "link to tweet instead")
        link = home
    entry = replace(entry, link=link)
    options = {"feed_title": feed_title, "hashtags": hashtags, "keep_mentions": keep_mentions}
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
