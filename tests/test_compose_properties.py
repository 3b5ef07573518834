"""What compose_posts promises for any entry and any valid template (Hypothesis)."""

from __future__ import annotations

import re
import string
import unicodedata

import regex
from hypothesis import assume, event, example, given
from hypothesis import strategies as st
from twitter_text import extract_urls_with_indices, parse_tweet

from bot.compose import ELLIPSIS, MAX_WEIGHT, compose, compose_posts, validate_template
from bot.errors import ConfigError
from bot.links import normalise_link, tweetable, usable
from bot.models import Entry

MENTION = re.compile(  # twitter-text's valid mention (extractMentionsOrListsWithIndices)
    r"(?:^|[^a-zA-Z0-9_!#$%&*@＠]|(?:^|[^a-zA-Z0-9_+~.-])(?:rt|RT|rT|Rt):?)([@＠])"
    r"[a-zA-Z0-9_]{1,20}(?![@＠a-zA-Z0-9_]|://)")
URL = "https://x.org/a"

# ---------------------------------------------------------------- strategies

_WORDS = st.sampled_from([
    "feed", "Q&A:", "Part 2 -", "a", "the", "example.com", "x.co/y", "v1.2.3", "node.js",
    "@guido", "＠alice", "RT@bob", "me@example.org", "@", "#tag", "$CASH", "—", "|", ":", "(",
    ")", "日本語のテキスト", "👨\u200d👩\u200d👧", "🇯🇵", "👍🏽", "1️⃣", "क्षि", "ｶﾞ", "e\u0301",
    "https://example.org/page", "www.example.org", "x" * 60, "\n", "  ", "\u2060", "…",
])
TEXT = st.one_of(
    st.lists(_WORDS, max_size=60).map(" ".join),
    st.lists(_WORDS, min_size=30, max_size=80).map(" ".join),
    st.text(max_size=80),
    st.lists(_WORDS, max_size=12).map("".join),
)
LINKS = st.one_of(
    st.none(),
    st.sampled_from([
        "https://blog.example.org/2026/post", "https://ja.wikipedia.org/wiki/日本語の文字",
        "https://bücher.example/ä?q=ü#frag", "https://user:pw@example.org/x",
        "javascript:alert(1)", "mailto:me@example.org", "https://exa mple.org/x",
        "https://example.org/a b", "https://example.org/end.", "/relative", "",
        "https://example.org/" + "a" * 5000, "https://example.org/@name",
        "https://example.org/" + "p" * 4000,
    ]),
    st.text(max_size=30).map(lambda path: "https://example.org/" + path),
)
FEED_LINKS = st.sampled_from([None, "https://blog.example.org/", "https://blog.example/",
                              "javascript:x", "https://bücher.example.org"])
_LITERALS = st.sampled_from(["", " ", "\n", "\n\n", " — ", ": ", " | ", "(", ")", "{{", "}}",
                             "📰 ", "via ", "New:", "x" * 140, "-", ", ", "\t"])
_FIELDS = st.sampled_from(["{title}", "{url}", "{summary}", "{author}", "{feed_title}",
                           "{hashtags}"])


def _valid(template: str) -> bool:
    try:
        validate_template(template)
    except ConfigError:
        return False
    return True


TEMPLATES = st.tuples(st.lists(st.one_of(_LITERALS, _FIELDS), max_size=8), _FIELDS,
                      st.integers(0, 8)).map(
    lambda t: "".join(t[0][:t[2]]) + t[1] + "".join(t[0][t[2]:])).filter(_valid)


def entries() -> st.SearchStrategy[Entry]:
    return st.builds(Entry, id=st.just("id"), link=LINKS, title=TEXT, summary=TEXT,
                     author=TEXT, categories=st.lists(TEXT, max_size=6).map(tuple))


def _literal_text(template: str) -> str:
    return "".join(literal for literal, _, _, _ in string.Formatter().parse(template))


def _url_fields(template: str) -> int:
    return sum(name == "url" for _, name, _, _ in string.Formatter().parse(template))


# ---------------------------------------------------------------- the promise


@given(TEMPLATES, st.lists(entries(), min_size=1, max_size=3), TEXT, FEED_LINKS,
       st.sampled_from(["", "#Blog", "#a #b"]))
@example("{title}{url}", [Entry("id", "https://example.org/x", "Hello")], "", None, "")
@example("{url}{title}", [Entry("id", "https://example.org/x", ".com/more")], "", None, "")
@example("x" * 140 + "x" * 140 + "{title}", [Entry("id", None, "Hi")], "", None, "")
@example("{title}", [Entry("id", None, "")], "", None, "")
@example("{title} {url}", [Entry("id", "https://example.org/" + "a" * 5000, "Hi")], "",
         "https://blog.example.org/", "")
def test_every_entry_gets_a_fitting_text_with_its_link_or_a_reason(
    template: str, items: list[Entry], feed_title: str, feed_link: str | None, hashtags: str
) -> None:
    results = compose_posts(template, items, feed_title, feed_link, hashtags)
    assert len(results) == len(items)
    home = normalise_link(feed_link)
    for item, result in zip(items, results, strict=True):
        if result.text is None:
            assert result.error and result.link is None
            event("error: " + result.error.split(":")[0])
            continue
        event("cut" if ELLIPSIS in result.text and ELLIPSIS not in item.title + item.summary
              else "whole")
        assert result.error is None
        parsed = parse_tweet(result.text)
        assert parsed.valid and parsed.weightedLength <= MAX_WEIGHT, result.text
        own = normalise_link(item.link)
        if result.link is not None:
            assert result.link == (own if usable(own) else home)
            assert result.link in result.text
            if tweetable(result.link):  # X links it, whole
                found = extract_urls_with_indices(result.text)
                assert result.link in [u["url"] for u in found], result.text
            else:  # X shows it as plain text, whole: it finds no link in it
                assert not any(u["url"] in result.link
                               for u in extract_urls_with_indices(result.text)), result.text
            feed_text = " ".join((item.title, item.summary, item.author, feed_title,
                                  *item.categories))
            if result.link not in feed_text:  # once, or as often as the template names it
                assert result.text.count(result.link) in (1, _url_fields(template))
        elif "{url}" in template.replace("{{", ""):
            assert not usable(own)  # only without any usable link
        urls = [range(*u["indices"]) for u in extract_urls_with_indices(result.text)]
        if "@" not in _literal_text(template) and "＠" not in _literal_text(template):
            for mention in MENTION.finditer(result.text):
                assert any(mention.start(1) in span for span in urls), result.text


# ---------------------------------------------------------------- titles intact

_TITLE_CHARS = st.sampled_from([*"abcXYZ &:-–—|·•,;/()[]!?.'\"0123456789",
                                "é", "日", "👍🏽", "Q&A:", "x.com", "…"])


@given(st.lists(_TITLE_CHARS, min_size=1, max_size=40).map("".join),
       st.sampled_from(["{title} {summary} {url}", "{title} — {feed_title}\n{url}",
                        "{feed_title}: {title} ({author}) {url}", "{title}"]))
@example("Q&A:", "{title} {summary} {url}")
@example("Part 2 -", "{title} — {feed_title}\n{url}")
@example("See https://x.org/page", "{title} — {feed_title}\n{url}")
def test_a_title_that_fits_is_never_changed(title: str, template: str) -> None:
    title = " ".join(title.split())
    assume(title)
    text = compose(template, Entry("id", URL, title))
    assert title in text


# ---------------------------------------------------------------- cuts


def _cluster_ends(text: str) -> set[int]:
    return {m.end() for m in regex.finditer(r"\X", text)}


_CUT_PIECES = st.sampled_from(["a", "bc", " ", "日本", "👨\u200d👩\u200d👧", "🇯🇵🇫🇷", "e\u0301",
                               "क्षि", "ｶﾞ", "x.co", "com", "é", "👍🏽", "—", "1️⃣", "\u0e01\u0e48",
                               "a\u0332", " ", "ab cd", "ｱ"])


@given(st.lists(_CUT_PIECES, min_size=100, max_size=220).map("".join))
@example("🇯🇵" * 150)
@example("क्षि" * 100)
def test_a_cut_never_splits_a_grapheme_cluster(title: str) -> None:
    title = unicodedata.normalize("NFC", " ".join(title.split()))
    text = compose("{title} {url}", Entry("id", URL, title))
    assert parse_tweet(text).weightedLength <= MAX_WEIGHT
    if text == f"{title} {URL}":
        return
    shown = text.removesuffix(" " + URL)
    assert shown.endswith(ELLIPSIS)
    kept = shown.removesuffix(ELLIPSIS)
    assert title.startswith(kept)
    assert len(kept) in _cluster_ends(title)


@given(st.lists(st.sampled_from(["a", "b", ".", "com", "co", "org", "x", "é", "日", "👍🏽",
                                 "/", "-"]), min_size=60, max_size=150).map("".join))
@example("abc.de" * 60)
def test_a_cut_inside_one_long_word_is_the_longest_that_fits(title: str) -> None:
    text = compose("{title} {url}", Entry("id", URL, title))
    if text == f"{title} {URL}":
        return
    kept = text.removesuffix(" " + URL).removesuffix(ELLIPSIS).rstrip()
    assert title.startswith(kept)
    ends = sorted(e for e in _cluster_ends(title) if e > len(kept))
    longer = title[:ends[0]]
    stripped = longer.rstrip(" -–—|:·•,;/([")
    if len(stripped) <= len(kept):
        return  # one more cluster is only separators the cut drops anyway
    assert parse_tweet(f"{stripped}{ELLIPSIS} {URL}").weightedLength > MAX_WEIGHT, (title, kept)
