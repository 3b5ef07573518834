"""The two fast paths of bot.parse read everything exactly as the slow, general code does.

* ``bot.fastxml`` (C ElementTree) against feedparser, for whole feeds: every corpus file and
  mutated copies of the feeds it reads, legacy encodings included; every field of every
  Entry, its image too (every source of one, in every order, with and without xml:base).
* ``_html_to_text_fast`` (one regex) against html.parser, for the text of an HTML summary:
  hand-written markup, every HTML value of the corpus, and mangled copies of both.

Where a fast path does not answer, the slow one is used; these tests hold it to answering
the same wherever it does answer, and to answering for the ordinary cases.
"""

from __future__ import annotations

import io
import itertools
import random

import feedparser
import pytest

from bot import fastxml
from bot import parse as parse_module
from bot.models import ParsedFeed
from bot.parse import SUMMARY_MAX, parse_feed, shorten
from tests.conftest import NO_SHARED as SHARED_ABSENT
from tests.conftest import SHARED_FEEDS, corpus_files
from tests.feedcompare import mutate, parsed

NO_SHARED = pytest.mark.skipif(not SHARED_FEEDS.is_dir(), reason=SHARED_ABSENT)


# --------------------------------------------------------------------------- fast XML

@NO_SHARED
def test_fast_xml_reads_every_corpus_file_like_feedparser() -> None:
    on_fast_path = []
    for path in corpus_files():
        body, url = path.read_bytes(), f"https://example.org/feeds/{path.name}"
        slow = parsed(body, url, fast=False)
        assert parsed(body, url, fast=True) == slow, path.name
        if fastxml.parse(body, parse_module._content_type(body, None)) is not None:
            on_fast_path.append(path.name)
    # the ordinary feeds, legacy encodings included, take the fast path
    assert {"DaringFireball.atom", "atp.rss", "bio.rdf", "encoding_ISO-8859-1.xml",
            "encoding_WINDOWS-1251.xml", "kc0011.rss"} <= set(on_fast_path)
    assert len(on_fast_path) >= 30


@NO_SHARED
def test_fast_xml_reads_mutated_feeds_like_feedparser() -> None:
    rng = random.Random(7)
    readable = [p for p in corpus_files()
                if fastxml.parse(b := p.read_bytes(), parse_module._content_type(b, None))]
    for i in range(150):
        path = rng.choice(readable)
        body = mutate(path.read_bytes(), rng)
        url = f"https://example.org/feeds/{path.name}"
        assert parsed(body, url, fast=True) == parsed(body, url, fast=False), \
            f"mutation {i} of {path.name}"


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
    "text <!-- a <p> comment --> more <!-- ended --!> end",
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
    # "-- >" does not end a comment in HTML5 (a browser): it runs on to the end
    assert fast_text("text <!-- spaced -- > end", None) == "text"


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


# --------------------------------------------------------------------------- titles, comments

MEDIA_NS = ('xmlns:media="http://search.yahoo.com/mrss/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"')
TITLES = {
    "title": "<title>Plain title</title>",
    "media": "<media:title>Media title</media:title>",
    "dc": "<dc:title>DC title</dc:title>",
    "group": "<media:group><media:title>Group title</media:title></media:group>",
    "empty": "<title></title>",
    "html": "<media:title type='html'>Tom &amp;amp; &amp;lt;b&amp;gt;Jerry&amp;lt;/b&amp;gt;"
            "</media:title>",
}


def rss_doc(item: str, channel: str = "<title>Blog</title>", *, linked: bool = True,
            body: str = "<description>Body</description>") -> bytes:
    link = "<link>https://example.org/1</link>" if linked else ""
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" {MEDIA_NS}><channel>'
            f"{channel}<link>https://example.org/</link><item>{item}{link}"
            f"{body}</item></channel></rss>").encode()


def atom_doc(item: str, channel: str = "<title>Blog</title>", *, linked: bool = True,
            body: str = "<summary>Body</summary>") -> bytes:
    link = '<link href="https://example.org/1"/>' if linked else ""
    return ('<?xml version="1.0" encoding="utf-8"?>'
            f'<feed xmlns="http://www.w3.org/2005/Atom" {MEDIA_NS}>{channel}'
            f'<link href="https://example.org/"/><entry>{item}{link}'
            f"{body}</entry></feed>").encode()


def rdf_doc(item: str, channel: str = "<title>Blog</title>", *, linked: bool = True,
            body: str = "<description>Body</description>") -> bytes:
    link = "<link>https://example.org/1</link>" if linked else ""
    return ('<?xml version="1.0" encoding="utf-8"?><rdf:RDF '
            'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            f'xmlns="http://purl.org/rss/1.0/" {MEDIA_NS}><channel rdf:about="https://example.org/">'
            f"{channel}<link>https://example.org/</link></channel><item>{item}{link}"
            f"{body}</item></rdf:RDF>").encode()


DOCS = {"rss": rss_doc, "atom": atom_doc, "rdf": rdf_doc}
TITLE_ORDERS = [order for n in (1, 2, 3) for order in itertools.permutations(TITLES, n)]


def both_paths(body: bytes) -> tuple[object, object]:
    """(fast path, feedparser only) answers of ``parse_feed``."""
    url = "https://example.org/feed"
    return parsed(body, url, fast=True), parsed(body, url, fast=False)


@pytest.mark.parametrize("kind", sorted(DOCS))
def test_entry_titles_in_every_order_read_alike_on_both_paths(kind: str) -> None:
    on_fast_path = 0
    for order in TITLE_ORDERS:
        for linked in (True, False):  # without a link or guid, the id is a hash of the title
            body = DOCS[kind]("".join(TITLES[t] for t in order), linked=linked)
            fast, slow = both_paths(body)
            assert fast == slow, (kind, order, linked)
            on_fast_path += fastxml.parse(body, "application/xml") is not None
    assert on_fast_path == 2 * len(TITLE_ORDERS)  # all of them, without falling back


@pytest.mark.parametrize("kind", sorted(DOCS))
def test_feed_titles_in_every_order_read_alike_on_both_paths(kind: str) -> None:
    for order in TITLE_ORDERS:
        body = DOCS[kind]("<title>Post</title>", "".join(TITLES[t] for t in order))
        fast, slow = both_paths(body)
        assert fast == slow, (kind, order)
        assert fastxml.parse(body, "application/xml") is not None


@pytest.mark.parametrize(("order", "title"), [
    # media:title and dc:title after <title> are fallbacks only; a dc:title before it wins
    (("title", "media"), "Plain title"),
    (("media", "title"), "Plain title"),
    (("title", "dc"), "Plain title"),
    (("dc", "title"), "DC title"),
    (("media", "dc"), "DC title"),
    (("title", "group", "media"), "Plain title"),
    (("group", "title"), "Plain title"),
    (("media", "group"), "Media title"),
    (("group",), "Group title"),
    (("html",), "Tom & <b>Jerry</b>"),  # an escaped-HTML title: its text, decoded once
])
def test_which_title_an_entry_gets(order: tuple[str, ...], title: str) -> None:
    for doc in DOCS.values():
        body = doc("".join(TITLES[t] for t in order), linked=False)
        for fast in (True, False):
            feed = parsed(body, "https://example.org/feed", fast=fast)
            assert isinstance(feed, ParsedFeed)
            assert feed.entries[0].title == title


def test_title_types_follow_the_element_that_set_them() -> None:
    # feedparser keeps the first media:title's value but takes the later one's type: the
    # value is then read as HTML ("&lt;" decoded), on both paths
    item = ("<media:title>a &amp;lt;b&amp;gt;</media:title><media:group>"
            "<media:title type='html'>x</media:title></media:group>")
    for doc in DOCS.values():
        fast, slow = both_paths(doc(item, linked=False))
        assert fast == slow
        assert isinstance(fast, ParsedFeed) and fast.entries[0].title == "a <b>"


COMMENTED = [  # (escaped HTML, the text a browser shows)
    ("safe<!--", "safe"),
    ("sa<!-- -- x >fe", "sa"),
    ("a<!-->b", "ab"),
    ("a<!--->b", "ab"),
    ("a<!---->b", "ab"),
    ("a<!-- hidden", "a"),
    ("a<!-- x --!>b", "ab"),
    ("a<!-- x -- >b", "a"),
    ("a <!-- <p>x</p> --> b", "a b"),
    ("<p>a</p><!--[if IE]><p>old</p><![endif]--><p>b</p>", "a b"),
    ("a<![CDATA[x]]>b", "ab"),
    ("a<!x>b<?php echo 1 ?>c", "abc"),
    ("a<![x[b", "a"),
]


def escape_xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pytest.mark.parametrize(("markup", "text"), COMMENTED)
def test_html_comments_never_reach_the_text(markup: str, text: str) -> None:
    assert parse_module._html_to_text_parser(markup, None) == text
    assert fast_text(markup, None) in (None, text)
    for wrap in (escape_xml, lambda m: f"<![CDATA[{m}]]>"):
        if "]]>" in markup and wrap is not escape_xml:
            continue  # CDATA cannot hold "]]>"
        value = wrap(markup)
        bodies = [
            rss_doc(f"<title>{value}</title>", body=f"<description>{value}</description>"),
            atom_doc(f"<title type='html'>{value}</title>",
                     body=f"<content type='html'>{value}</content>"),
        ]
        for body in bodies:
            fast, slow = both_paths(body)
            assert fast == slow, (markup, body)
            assert isinstance(fast, ParsedFeed)
            entry = fast.entries[0]
            # an RSS title is plain text unless it looks like HTML (feedparser: a close tag
            # or an entity; here also a comment): "a<!x>b" is then a title as it is
            title = text if "<!--" in markup or b"<rss" not in body else markup
            assert (entry.title, entry.summary) == (title, text), (markup, entry)
            assert "<!--" not in entry.title + entry.summary


def test_a_comment_across_the_parser_s_chunks_is_still_a_comment() -> None:
    for at in (4090, 4093, 4094, 4095, 4096, 4097):
        markup = "x" * at + "<!-- " + "y" * 5000 + " -->after"
        assert parse_module._html_to_text_parser(markup, None) == "x" * at + "after"
        assert fast_text(markup, None) == "x" * at + "after"
        unterminated = "w " * (at // 2) + "<!-- " + "y " * 5000
        assert html_parser_text(unterminated, SUMMARY_MAX) == \
            fast_text(unterminated, SUMMARY_MAX)
        assert "y" not in html_parser_text(unterminated, None)


@pytest.mark.parametrize(("title", "text"), [
    ("AT&amp;amp;T &amp;lt;b&amp;gt;", "AT&amp;T &lt;b&gt;"),  # escaped twice: shown once
    ("AT&amp;amp;T &lt;b&gt;", "AT&amp;T <b>"),
    ("Fish &amp; Chips &lt;3", "Fish & Chips <3"),
    ("a &amp;copy b", "a &copy b"),
])
def test_a_plain_text_atom_title_is_decoded_once(title: str, text: str) -> None:
    for attr in (' type="text"', ""):
        fast, slow = both_paths(atom_doc(f"<title{attr}>{title}</title>",
                                         f"<title{attr}>{title}</title>"))
        assert fast == slow
        assert isinstance(fast, ParsedFeed)
        assert (fast.title, fast.entries[0].title) == (text, text)


@pytest.mark.parametrize(("title", "text"), [
    # feedparser's rule for RSS: a title that looks like escaped HTML is HTML
    ("AT&amp;amp;T", "AT&T"),
    ("&amp;lt;b&amp;gt;x&amp;lt;/b&amp;gt;", "<b>x</b>"),  # HTML text "&lt;b&gt;": once
    # ... and one that does not (an unknown entity) is plain text, shown as it is
    ("AT&amp;amp;T &amp;nosuch;", "AT&amp;T &nosuch;"),
])
def test_an_rss_title_is_decoded_by_feedparser_s_rules(title: str, text: str) -> None:
    fast, slow = both_paths(rss_doc(f"<title>{title}</title>"))
    assert fast == slow
    assert isinstance(fast, ParsedFeed) and fast.entries[0].title == text


# --------------------------------------------------------------------------- images

IMAGE_NS = ('xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/"')
IMAGES = {  # every source of Entry.image, some relative (resolved against xml:base or the URL)
    "thumbnail": "<media:thumbnail url='/t.jpg'/>",
    "thumbnail-text": "<media:thumbnail>t2.jpg</media:thumbnail>",
    "content": "<media:content url='https://img.example.org/c.jpg' medium='image'/>",
    "audio": "<media:content url='https://img.example.org/a.mp3' type='audio/mpeg'>"
             "<media:thumbnail url='https://img.example.org/poster.jpg'/></media:content>",
    "group": "<media:group><media:title>G</media:title>"
             "<media:content url='g.png' type='image/png'/></media:group>",
    "enclosure": "<enclosure url='e.jpg' type='image/jpeg' length='0'/>",
    "atom-enclosure": "<link rel='enclosure' type='image/gif' href='l.gif'/>",
    "itunes": "<itunes:image href='https://img.example.org/i.jpg'/>",
    "empty": "<media:thumbnail url=''/>",
}
IMAGE_ORDERS = [order for n in (1, 2) for order in itertools.permutations(IMAGES, n)]


def with_images(doc: bytes, xml_base: bool) -> bytes:
    doc = doc.replace(b"xmlns:media=", IMAGE_NS.encode() + b" xmlns:media=", 1)
    if xml_base:
        doc = doc.replace(b"<item>", b"<item xml:base='https://base.example.org/d/'>")
        doc = doc.replace(b"<entry>", b"<entry xml:base='https://base.example.org/d/'>")
    return doc


@pytest.mark.parametrize("kind", sorted(DOCS))
def test_entry_images_in_every_order_read_alike_on_both_paths(kind: str) -> None:
    html = {"rss": "<description>&lt;img src='h.png'&gt;</description>",
            "rdf": "<description>&lt;img src='h.png'&gt;</description>",
            "atom": "<summary type='html'>&lt;img src='h.png'&gt;</summary>"}[kind]
    seen = set()
    for order in IMAGE_ORDERS:
        for xml_base in (False, True):
            body = with_images(DOCS[kind]("<title>Post</title>" + "".join(
                IMAGES[i] for i in order), body=html), xml_base)
            fast, slow = both_paths(body)
            assert fast == slow, (kind, order, xml_base)
            assert fastxml.parse(body, "application/xml") is not None, (kind, order)
            assert isinstance(fast, ParsedFeed)
            seen.add(fast.entries[0].image)
    # every source won somewhere, relative ones resolved against the base or the feed URL
    assert {"https://example.org/t.jpg", "https://base.example.org/t.jpg",
            "https://example.org/t2.jpg", "https://base.example.org/d/t2.jpg",
            "https://img.example.org/c.jpg", "https://img.example.org/poster.jpg",
            "https://example.org/g.png", "https://base.example.org/d/g.png",
            "https://img.example.org/i.jpg", "https://example.org/h.png",
            "https://base.example.org/d/h.png"} <= seen
    # (<enclosure> in the Atom namespace is an enclosure for feedparser too)
    assert {"https://example.org/e.jpg", "https://base.example.org/d/e.jpg",
            "https://example.org/l.gif", "https://base.example.org/d/l.gif"} <= seen


@pytest.mark.parametrize("where", [
    "<author><name>A</name><media:thumbnail url='https://img.example.org/a.jpg'/></author>",
    "<itunes:subtitle>s<media:thumbnail url='https://img.example.org/s.jpg'/></itunes:subtitle>",
    "<media:thumbnail url='https://img.example.org/n.jpg'><x:y xmlns:x='urn:x'/>"
    "</media:thumbnail>",
    "<media:content x:url='https://img.example.org/n.jpg' xmlns:x='urn:x' medium='image'/>",
])
def test_images_the_fast_path_leaves_to_feedparser(where: str) -> None:
    for kind, doc in DOCS.items():
        body = with_images(doc("<title>Post</title>" + where), False)
        fast, slow = both_paths(body)
        assert fast == slow, (kind, where)
        assert fastxml.parse(body, "application/xml") is None
