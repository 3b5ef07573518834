"""A feed's text made ready for a tweet: cleaned, mentions neutralised, hashtags made.

Text from the feed (title, summary, author, feed title) has no live mentions: an ``@``/``＠``
that X would read as the start of a mention gets U+2060 WORD JOINER after it, so it reads the
same but neither links nor notifies anyone. Categories become hashtags.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import regex

MAX_CATEGORY_TAGS = 5
WORD_JOINER = "\u2060"  # after a feed's "@": reads the same, is no mention
_JUNK = re.compile("[\x00-\x1f\x7f\ufeff\ufffe\uffff]")  # control characters and what X rejects
# twitter-text's mention: "@" or "＠", then [A-Za-z0-9_], not after a letter, digit or one of
# _!#$%&*@＠ (so not in an e-mail address) unless after "RT" or "RT:". A value's first "@" may
# follow any template text, and its last one may be followed by any, so both count.
_MENTION_AT = regex.compile(
    r"(?:(?<=^|[^A-Za-z0-9_!#$%&*@＠])|(?<=(?:^|[^A-Za-z0-9_+~.-])[Rr][Tt]:?))"
    r"([@＠])(?=[A-Za-z0-9_]|$)")


def clean_text(text: str) -> str:
    """``text`` in NFC, control characters and runs of whitespace made single spaces."""
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
                   for c in clean_text(phrase) if c not in "'’")
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
