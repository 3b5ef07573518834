"""Cut a field's text to the longest prefix that still lets the tweet fit X's weight.

A field is cut in grapheme clusters (``regex``'s ``\\X``: an emoji, flag, accented letter or
Indic conjunct is never split), measured by twitter-text (X's weight is not monotonic in length
when the text holds URL-like words, so the cheap bound :func:`weight_at_most` finds a prefix
that surely fits and twitter-text decides above it). A cut falls at the last space before the
limit when that loses at most 20 characters (else mid-word, on a cluster boundary), loses
separators and brackets at its end, and ends with "…". A field that is not cut is kept exactly
as it came. A field is never longer than 8192 characters, and a field that cannot fit (its
words alone weigh more than 280) is cut before the search. Hashtags are cut as whole tags,
dropped from the end.
"""

from __future__ import annotations

import bisect
import os
import unicodedata
from collections.abc import Callable

import regex
from twitter_text import parse_tweet

MAX_WEIGHT = 280
ELLIPSIS = "…"
WORD_SLACK = 20  # cut mid-word rather than lose more than this many characters to a word boundary
FIELD_MAX_CHARS = 8192  # a text field is first cut to this many characters
SEPARATORS = "-–—|:·•,;/"  # what separates fields in a template
CUT_TRAIL = " " + SEPARATORS + "(["  # what a cut field loses at its end
_CLUSTER = regex.compile(r"\X")


def graphemes(text: str) -> int:
    """How many user-perceived characters (extended grapheme clusters) ``text`` has."""
    return len(text) if text.isascii() else len(_CLUSTER.findall(text))


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


class Field:
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
        kept = full[:limit].rstrip(CUT_TRAIL)
        return kept + ELLIPSIS if kept else ""

    def cannot_fit_from(self, limit: int = MAX_WEIGHT, url_weight: int = 23) -> int:
        """A size from which no cut can fit: its words alone weigh more than ``limit``
        (a URL found in the text weighing ``url_weight``).

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
            core = word.rstrip(CUT_TRAIL)
            if index and core:
                clusters = graphemes(core)
                total += 1 + (min(url_weight, clusters) if "." in core else clusters)
            if total > limit or pos > FIELD_MAX_CHARS:
                return min(limit, bisect.bisect_left(self.ends, pos) + 1)
        return limit if limit < self.size else self.size + 1

    def dotted(self, lo: int, hi: int) -> bool:
        """Whether the words holding clusters lo..hi have a "." (X may see a URL there)."""
        start = self.ends[lo - 1] if lo else 0
        start = self.full.rfind(" ", 0, start) + 1
        return "." in self.full[start:self.ends[hi - 1]]


def longest_fitting(field: Field, size: int, fits: Callable[[int], bool],
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


def window_weight(text: str, ref: str, weight: Callable[[str], int]) -> int:
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
