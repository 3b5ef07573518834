"""The two fast paths of bot.parse read everything exactly as the slow, general code does.

* ``bot.fastxml`` (C ElementTree) against feedparser, for whole feeds: every corpus file and
  mutated copies of the feeds it reads, legacy encodings included.
* ``_html_to_text_fast`` (one regex) against html.parser, for the text of an HTML summary:
  hand-written markup, every HTML value of the corpus, and mangled copies of both.

Where a fast path does not answer, the slow one is used; these tests hold it to answering
the same wherever it does answer, and to answering for the ordinary cases.
"""

from __future__ import annotations

import io
import random

import feedparser
import pytest

from bot import fastxml
from bot import parse as parse_module
from bot.errors import FeedParseError
from bot.parse import SUMMARY_MAX, parse_feed, shorten
from tests.conftest import NO_SHARED as SHARED_ABSENT
from tests.conftest import SHARED_FEEDS, corpus_files

NO_SHARED = pytest.mark.skipif(not SHARED_FEEDS.is_dir(), reason=SHARED_ABSENT)


def parsed(body: bytes, url: str, *, fast: bool, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setattr(parse_module, "FAST_PATH", fast)
    try:
        return parse_feed(body, url)
    except FeedParseError as exc:
        return ("error", str(exc))


# --------------------------------------------------------------------------- fast XML

@NO_SHARED
def test_fast_xml_reads_every_corpus_file_like_feedparser(
        monkeypatch: pytest.MonkeyPatch) -> None:
    on_fast_path = []
    for path in corpus_files():
        body, url = path.read_bytes(), f"https://example.org/feeds/{path.name}"
        slow = parsed(body, url, fast=False, monkeypatch=monkeypatch)
        assert parsed(body, url, fast=True, monkeypatch=monkeypatch) == slow, path.name
        if fastxml.parse(body, parse_module._content_type(body, None)) is not None:
            on_fast_path.append(path.name)
    # the ordinary feeds, legacy encodings included, take the fast path
    assert {"DaringFireball.atom", "atp.rss", "bio.rdf", "encoding_ISO-8859-1.xml",
            "encoding_WINDOWS-1251.xml", "kc0011.rss"} <= set(on_fast_path)
    assert len(on_fast_path) >= 30


@NO_SHARED
# an emptied <pubDate> makes bot.parse ask feedparser for "updated", which falls back to
# "published" with a DeprecationWarning (an error under this suite's filterwarnings)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fast_xml_reads_mutated_feeds_like_feedparser(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.fastxml_check import mutate

    rng = random.Random(7)
    readable = [p for p in corpus_files()
                if fastxml.parse(b := p.read_bytes(), parse_module._content_type(b, None))]
    for i in range(150):
        path = rng.choice(readable)
        body = mutate(path.read_bytes(), rng)
        url = f"https://example.org/feeds/{path.name}"
        assert parsed(body, url, fast=True, monkeypatch=monkeypatch) == \
            parsed(body, url, fast=False, monkeypatch=monkeypatch), f"mutation {i} of {path.name}"


def test_a_windows_1251_feed_is_read_on_the_fast_path() -> None:
    title = "Новости недели"
    body = ("<?xml version='1.0' encoding='windows-1251'?><rss version='2.0'><channel>"
            f"<title>Блог</title><link>https://example.org/</link><item><title>{title}</title>"
            "<link>https://example.org/1</link><description>&lt;p&gt;Текст&lt;/p&gt;"
            "</description></item></channel></rss>").encode("windows-1251")
    assert fastxml.parse(body, "application/rss+xml") is not None
    feed = parse_feed(body, "https://example.org/feed", "application/rss+xml")
    assert feed.title == "Блог"
    assert [(e.title, e.summary, e.link) for e in feed.entries] == [
        (title, "Текст", "https://example.org/1")]


# --------------------------------------------------------------------------- fast HTML text

SAMPLES = [
    "<p>Hello <b>world</b></p><p>Second&nbsp;para &amp; more</p>",
    '<ul>\n<li><a href="https://x.org/a?b=1&amp;c=2" title=\'q > r\'>Link</a></li></ul>',
    "<div class=a><img src=/x.png alt=\"\"/>caption<br/>next<br>line</div>",
    "<script type=\"text/javascript\">var a = '<p>not text</p>';</script>After",
    "<STYLE>p { color: red }</STYLE>Styled<SCRIPT>x()</SCRIPT >done",
    "text <!-- a <p> comment --> more <!-- spaced -- > end",
    "&lt;code&gt; &#8217;quoted&#x2019; &amp &copy 5 &lt 6",
    "<h1>Title</h1><table><tr><td>a</td><td>b</td></tr></table>tail &hellip;",
    "<blockquote class=\"twitter-tweet\"><p lang=\"en\">Tweet</p>&mdash; Someone</blockquote>"
    "<script async src=\"https://platform.twitter.com/widgets.js\" charset=\"utf-8\"></script>",
    "<p>" + "word " * 400 + "</p><p>" + "more " * 400 + "</p>",
]
JUNK = ["<", ">", "&", "&amp;", "&#x41;", "&lt;", '"', "'", "<script>", "</script>",
        "<style>x</style>", "<!--", "-->", "<br/>", "<p>", "</p>", " ", "\u3000", "\xa0",
        "<a href=x>", '<a href="x>y">', "</ p>", "<!DOCTYPE x>", "<?php ?>", "<![CDATA[x]]>",
        "</>", "<SCRIPT >", "</SCRIPT >", "<img src=a/>", "<x-y>", "<a\vb>", "&amp", "=", "/",
        "<b\n>", "<script/>", "<script src=x/>", "\x01", "<a b='c'd>", "<p/x>"]


def html_parser_text(markup: str, limit: int | None) -> str:
    text = parse_module._html_to_text_parser(markup, limit)
    return shorten(text, limit) if limit else text


def fast_text(markup: str, limit: int | None) -> str | None:
    text = parse_module._html_to_text_fast(markup, limit)
    if text is None:
        return None
    return shorten(text, limit) if limit else text


def mangle(markup: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 4)):
        i, op = rng.randrange(len(markup) + 1), rng.random()
        if op < 0.5:
            markup = markup[:i] + rng.choice(JUNK) + markup[i:]
        elif op < 0.8:
            markup = markup[:i] + markup[i + rng.randint(1, 20):]
        else:
            markup = markup[:i]
    return markup


def assert_same_text(values: list[str]) -> int:
    answered = 0
    for markup in values:
        for limit in (None, SUMMARY_MAX, 40):
            fast = fast_text(markup, limit)
            if fast is not None:
                answered += 1
                assert fast == html_parser_text(markup, limit), (markup[:300], limit)
    return answered


def test_fast_html_text_reads_ordinary_markup_like_html_parser() -> None:
    assert assert_same_text(SAMPLES) == 3 * len(SAMPLES)  # every sample on the fast path
    assert fast_text(SAMPLES[0], None) == "Hello world Second para & more"
    assert fast_text(SAMPLES[3], None) == "After"
    assert fast_text(SAMPLES[5], None) == "text more end"


def test_fast_html_text_gives_up_or_agrees_on_mangled_markup() -> None:
    rng = random.Random(3)
    mangled = [mangle(rng.choice(SAMPLES), rng) for _ in range(3000)]
    answered = assert_same_text(mangled)
    assert 0.3 * 3 * len(mangled) < answered < 3 * len(mangled)  # it does give up, sometimes


@NO_SHARED
def test_fast_html_text_reads_every_corpus_summary_like_html_parser() -> None:
    values = []
    for path in corpus_files():
        if path.read_bytes().lstrip().startswith(b"{"):
            continue
        d = feedparser.parse(io.BytesIO(path.read_bytes()), sanitize_html=False,
                             resolve_relative_uris=False)
        for e in d.entries:
            for detail in (e.get("summary_detail"), e.get("title_detail"), *e.get("content", ())):
                if detail and "<" in (detail.get("value") or ""):
                    values.append(detail["value"])
    assert len(values) > 500
    # all on the fast path but the adversarial corpus's stray "<>"
    assert assert_same_text(values) >= 0.99 * 3 * len(values)
    rng = random.Random(5)
    assert_same_text([mangle(rng.choice(values)[:3000], rng) for _ in range(1500)])
