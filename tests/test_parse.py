"""bot.parse against the shared real-world corpus, its ill-formed twins and hostile input."""

from __future__ import annotations

import json
import pickle
import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import parse as parse_module
from bot.errors import FeedParseError
from bot.links import normalise_link
from bot.models import ParsedFeed
from bot.parse import SUMMARY_MAX, parse_feed

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "feeds"
REAL = SHARED / "real"
ADVERSARIAL = SHARED / "adversarial"

pytestmark = pytest.mark.skipif(
    not SHARED.is_dir(),
    reason="../shared/feeds is absent: corpus tests need the shared feed corpus beside the project",
)

MANIFEST = (
    {m["file"]: m for m in json.loads((SHARED / "manifest.json").read_text("utf-8"))}
    if SHARED.is_dir() else {}
)
REAL_FILES = sorted(p.name for p in REAL.iterdir()) if SHARED.is_dir() else []
ADVERSARIAL_FILES = sorted(p.name for p in ADVERSARIAL.iterdir()) if SHARED.is_dir() else []

# feedparser 6.0.14 reads neither; the manifest's "plain-json" counts (every item complete).
PLAIN_JSON_COUNTS = {"pxlnv.json": 20, "ScriptingNews.json": 50}


def feed_url(name: str) -> str:
    return f"https://example.org/feeds/{name}"


def parse_file(directory: Path, name: str) -> ParsedFeed:
    return parse_feed((directory / name).read_bytes(), feed_url(name))


def is_http_url(link: str) -> bool:
    return re.match(r"https?://[^/\s]+", link) is not None


# --------------------------------------------------------------------------- real/

def test_corpus_is_complete() -> None:
    assert len(REAL_FILES) == 43
    assert len(ADVERSARIAL_FILES) == 26


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_feed(name: str) -> None:
    facts = MANIFEST[name]
    feed = parse_file(REAL, name)
    again = parse_file(REAL, name)

    expected = PLAIN_JSON_COUNTS.get(name, facts["entries"])
    assert len(feed.entries) == expected
    assert [e.position for e in feed.entries] == list(range(expected))
    assert feed.title

    ids = [e.id for e in feed.entries]
    assert all(i and i == i.strip() for i in ids)
    assert len(set(ids)) == len(ids)  # repeats are disambiguated, see test_duplicate_guids
    assert ids == [e.id for e in again.entries]
    assert feed == again

    with_link = PLAIN_JSON_COUNTS.get(name, facts["with_link"])
    links = [e.link for e in feed.entries if e.link is not None]
    assert len(links) == with_link
    assert all(is_http_url(link) for link in links)
    assert feed.link is None or is_http_url(feed.link)

    untitled = [e for e in feed.entries if not e.title]
    if name == "no_encoding_ISO-8859-1.xml":  # one <item> whose every child is empty
        assert [(e.position, e.link, e.summary) for e in untitled] == [(3, None, "")]
        assert untitled[0].id.startswith("sha256:")
    else:
        assert untitled == []

    dated = name in PLAIN_JSON_COUNTS or facts["with_published"] or facts["with_updated"]
    published = [e.published for e in feed.entries if e.published is not None]
    assert len(published) == (expected if dated else 0)
    assert all(p.tzinfo is not None and p.utcoffset() == timedelta(0) for p in published)
    for entry in feed.entries:
        assert len(entry.summary) <= SUMMARY_MAX
        # a link card's picture: absolute http(s), normalised, not too long (test_entry_image)
        assert entry.image is None or (is_http_url(entry.image) and len(entry.image) <= 2048
                                       and normalise_link(entry.image) == entry.image)
        assert all(c and c == c.strip() for c in entry.categories)
        assert len(set(entry.categories)) == len(entry.categories)


def test_duplicate_guids_are_disambiguated() -> None:
    """scriptingNews.rss repeats two guids for different posts: later ones get a suffix."""
    entries = parse_file(REAL, "scriptingNews.rss").entries
    suffixed = [(e.position, e.id) for e in entries if re.search(r"#[0-9a-f]{12}$", e.id)]
    assert [pos for pos, _ in suffixed] == [12, 24]
    for position, entry_id in suffixed:
        guid = entry_id[:-13]
        firsts = [e for e in entries if e.id == guid]
        assert len(firsts) == 1 and firsts[0].position < position
        assert firsts[0].link == entries[position].link == guid  # same permalink, too
        assert firsts[0].summary != entries[position].summary


def test_ids_are_raw_and_do_not_depend_on_the_feed_url() -> None:
    body = (REAL / "livemint.xml").read_bytes()
    here = parse_feed(body, "https://example.org/feeds/livemint.xml").entries
    there = parse_feed(body, "http://mirror.example.net/rss").entries
    assert [e.id for e in here] == [e.id for e in there]
    assert here[0].id == "1559104147038"  # a numeric guid, not a URL under the feed URL
    assert parse_file(REAL, "qemu.atom").entries[0].id == "/2025/08/26/qemu-10-1-0"


def test_guid_is_a_link_only_when_it_is_an_absolute_url() -> None:
    body = (b'<rss version="2.0"><channel><title>t</title>'
            b"<item><guid>12345</guid><title>A</title></item>"
            b"<item><guid>https://example.org/b</guid><title>B</title></item>"
            b"</channel></rss>")
    entries = parse_feed(body, "https://example.org/feed").entries
    assert [(e.id, e.link) for e in entries] == [("12345", None),
                                                 ("https://example.org/b", "https://example.org/b")]


def test_identical_repeated_entry_is_dropped() -> None:
    item = b"<item><guid>g1</guid><title>Same</title><description>x</description></item>"
    body = b'<rss version="2.0"><channel><title>t</title>' + item * 3 + b"</channel></rss>"
    feed = parse_feed(body, "https://example.org/feed")
    assert [(e.id, e.position) for e in feed.entries] == [("g1", 0)]


# --------------------------------------------------------------------------- cross-format links

@pytest.mark.parametrize("pair", [
    ("DaringFireball.atom", "DaringFireball.json"),
    ("allthis.atom", "allthis.json"),
    ("scriptingNews.rss", "ScriptingNews.json"),
])
def test_same_site_in_two_formats_gives_the_same_links(pair: tuple[str, str]) -> None:
    first, second = (parse_file(REAL, name) for name in pair)
    first_links = {e.link for e in first.entries}
    second_links = {e.link for e in second.entries}
    assert first_links == second_links
    by_title = {e.title: e.link for e in second.entries}
    for entry in first.entries:
        if entry.title in by_title:
            assert by_title[entry.title] == entry.link


def test_daring_fireball_links_are_df_permalinks_not_linked_articles() -> None:
    entries = parse_file(REAL, "DaringFireball.atom").entries
    assert all(e.link and e.link.startswith("https://daringfireball.net/") for e in entries)
    virgin = next(e for e in entries if e.title.startswith("Virgin Mobile"))
    assert virgin.link == "https://daringfireball.net/linked/2017/06/26/virgin-mobile-iphone-only"
    talk_show = entries[0]  # alternate is another DF page (the podcast), related the post
    assert talk_show.link == "https://daringfireball.net/linked/2017/06/26/the-talk-show-195"


def test_json_feed_prefers_url_over_external_url() -> None:
    entries = parse_file(REAL, "pxlnv.json").entries
    assert all(e.link and e.link.startswith("https://pxlnv.com/") for e in entries)


# --------------------------------------------------------------------------- relative links

def test_qemu_root_relative_links_resolve_against_feed_url() -> None:
    feed = parse_file(REAL, "qemu.atom")
    assert feed.link == "https://example.org/"
    assert all(e.link and e.link.startswith("https://example.org/20") for e in feed.entries)
    assert feed.entries[0].link == "https://example.org/2025/08/26/qemu-10-1-0/"


def test_yakubin_and_xml_base_links() -> None:
    yakubin = parse_file(REAL, "yakubin.atom").entries
    assert all(e.link and e.link.startswith("https://example.org/notes/") for e in yakubin)
    pappacoda = parse_file(REAL, "pappacoda.atom").entries
    assert [e.link for e in pappacoda][:2] == [
        "https://andrea.pappacoda.it/blog/favicon_2026/",
        "https://andrea.pappacoda.it/blog/tesi.pdf",  # its only alternate is a PDF
    ]
    tsunami = parse_file(REAL, "OneFootTsunami.atom").entries
    assert all(e.link and e.link.startswith("http") for e in tsunami)


def test_non_http_links_become_none() -> None:
    body = (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
            b'<entry><id>a</id><title>A</title><link href="javascript:alert(1)"/></entry>'
            b'<entry><id>b</id><title>B</title><link href="mailto:x@example.org"/></entry>'
            b'<entry><id>c</id><title>C</title><link href="post/c"/></entry></feed>')
    feed = parse_feed(body, "https://example.org/blog/feed.atom")
    assert [e.link for e in feed.entries] == [None, None, "https://example.org/blog/post/c"]


# --------------------------------------------------------------------------- text and dates

@pytest.mark.parametrize(("name", "codec", "title"), [
    ("kc0011.rss", "gb18030", "建国35周年纪念，华表，和平鸽"),
    ("encoding_WINDOWS-1251.xml", "windows-1251", "Цитата #17703"),
    ("encoding_ISO-8859-1.xml", "iso-8859-1",
     "Machine Learning: Von KI erstelltes Porträt für 432.500 US.Dollar versteigert"),
    ("no_encoding_ISO-8859-1.xml", "iso-8859-1",
     "Caroline Eliacheff : « Dolto reste authentiquement subversive »"),
    ("donthitsave.xml", "utf-8-sig", "Skipping Around"),
    ("urdu_UTF8.xml", "utf-8",
     "امریکہ کے ساتھ خفیہ معلومات کا تبادلہ اور فوجی تعاون معطل کر دیا: وزیر دفاع"),
])
def test_encodings_decode(name: str, codec: str, title: str) -> None:
    raw = (REAL / name).read_bytes()
    assert title.replace("« ", "«").split()[0] in raw.decode(codec)  # the title is really there
    assert title in [e.title for e in parse_file(REAL, name).entries]


def test_kc0011_dates_read_correctly() -> None:
    first = parse_file(REAL, "kc0011.rss").entries[0]
    assert first.published == datetime(2020, 1, 10, 14, 33, tzinfo=UTC)  # feedparser: 11-01


def test_untitled_items_take_their_first_words() -> None:
    for entry in parse_file(REAL, "markdown2.rss").entries:
        assert entry.title and len(entry.title) <= 100
        assert len(entry.title.split()) <= 12
        assert entry.summary.startswith(entry.title.removesuffix("…"))
    first = parse_file(REAL, "markdown2.rss").entries[0]
    assert first.title == "ICE and CBP Agents Are Scanning Peoples’ Faces on the Street To…"
    manton = parse_file(REAL, "manton.rss").entries[0]
    assert manton.title == "This week’s Core Intuition is out with a discussion about new and…"


def test_json_titles_decode_entities_once() -> None:
    entries = parse_file(REAL, "rose.json").entries
    assert entries[0].title == "Workflow: Add Task & Sub Tasks To OmniFocus"
    assert all("&amp;" not in e.title for e in entries)


def test_curt_json_dates_without_zone_are_utc() -> None:
    entries = parse_file(REAL, "curt.json").entries
    assert entries[0].published == datetime(2018, 1, 6, 8, 0, tzinfo=UTC)
    assert all(e.published is not None for e in entries)


def test_other_dates() -> None:
    medscape = parse_file(REAL, "medscape.rss").entries[0]  # "Wed, 5 Nov 2025 13:52:10  EST"
    assert medscape.published == datetime(2025, 11, 5, 18, 52, 10, tzinfo=UTC)
    bio = parse_file(REAL, "bio.rdf").entries[0]  # dc:date only
    assert bio.published == datetime(2019, 8, 27, tzinfo=UTC)
    future = datetime.now(UTC).replace(microsecond=0) + timedelta(days=400)
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [
        {"id": "1", "title": "Later", "date_published": future.isoformat()}]}).encode()
    assert parse_feed(body, "https://example.org/f.json").entries[0].published == future


def test_entry_fields() -> None:
    entry = parse_file(REAL, "cloudblog.rss").entries[0]
    assert entry.author == "Diane Chaleff"
    assert entry.categories == ("Perspectives", "Drive", "Inside Google Cloud",
                                "Productivity & Collaboration")
    item = parse_file(REAL, "3960.json").entries[1]
    assert item.categories == ("Fliegerei", "Simulation") and item.author == "Frank Boës"


def test_html_is_reduced_to_text() -> None:
    body = ("<rss version='2.0'><channel><title>t</title><item><title>T &amp;amp; &#8217;x</title>"
            "<description><![CDATA[<p>Hello&nbsp;<b>world</b></p><script>evil()</script>"
            "<style>p{}</style><p>Second &#x2603; para" + " word" * 2000
            + "</p>]]></description></item></channel></rss>").encode()
    entry = parse_feed(body, "https://example.org/f").entries[0]
    assert entry.title == "T & ’x"
    assert entry.summary.startswith("Hello world Second ☃ para word")
    assert "evil" not in entry.summary and "p{}" not in entry.summary
    assert len(entry.summary) <= SUMMARY_MAX and entry.summary.endswith("…")


def test_id_falls_back_to_link_then_hash() -> None:
    body = (b'<rss version="2.0"><channel><title>t</title>'
            b"<item><title>A</title><link>https://example.org/a</link></item>"
            b"<item><title>B</title><pubDate>Mon, 01 Jan 2024 00:00:00 GMT</pubDate></item>"
            b"</channel></rss>")
    first = parse_feed(body, "https://example.org/f").entries
    second = parse_feed(body, "https://example.org/f").entries
    assert first[0].id == "https://example.org/a"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", first[1].id) and first[1].id == second[1].id


# --------------------------------------------------------------------------- adversarial/

# Exactly what each ill-formed file gives: an entry count, or an error containing the text.
ADVERSARIAL_OUTCOMES: dict[str, int | str] = {
    "allthis-partial.json": "invalid JSON",
    "always_strip_doctype.xml": 0,
    "authors.json": 4,
    "bozo_bogus_encoding.xml": 0,
    "bozo_double-encoded-html.xml": 1,
    "bozo_invalid-bytes-with-bom.xml": "unclosed token",
    "bozo_linenoise.xml": 1,
    "doesnotexist.xml": "undefined entity",
    "empty.atom": 1,
    "empty.json": 1,
    "empty.rss": 1,
    "http_high_bit_date.xml": 0,
    "invalid-prolog.xml": 1,
    "invalid.json": 8,
    "rdf_channel_empty_textinput.xml": 1,
    "relative.atom": 1,
    "relative.rss": 1,
    "rss_empty_document.xml": "no element found",
    "rss_incomplete_cdata.xml": "truncated",  # cut inside <![CD: an error, never a half entry
    "rss_item_link_corrupted_ampersands.xml": 1,
    "shiftjis.xml": 1,
    "shopify-namespace.rss": 1,
    "undeclared_namespace.xml": "unbound prefix",
    "unknown.json": "unknown JSON Feed version 'https://jsonfeed.org/version/1234'",
    "utf8-incorrect-prolog.xml": 1,
    "windows-1252-incorrect-prolog.xml": 0,
}


@pytest.mark.parametrize("name", ADVERSARIAL_FILES)
def test_adversarial_file(name: str) -> None:
    expected = ADVERSARIAL_OUTCOMES[name]
    try:
        feed = parse_file(ADVERSARIAL, name)
    except FeedParseError as exc:
        assert isinstance(expected, str), f"unexpected error: {exc}"
        assert expected in str(exc) and str(exc).startswith("not a feed: ")
        return
    assert isinstance(feed, ParsedFeed)
    assert len(feed.entries) == expected
    for entry in feed.entries:
        assert entry.id
        assert entry.link is None or is_http_url(entry.link)


def test_adversarial_specifics() -> None:
    relative = parse_file(ADVERSARIAL, "relative.atom")
    assert relative.link == "https://example.org/feeds/file.html"
    assert relative.entries[0].link == "https://example.org/feeds/entries/entry.html"
    assert relative.entries[0].summary == "one two three"
    rss = parse_file(ADVERSARIAL, "relative.rss").entries[0]
    assert rss.link == "https://example.org/feeds/blog/post/1"

    invalid = parse_file(ADVERSARIAL, "invalid.json").entries
    assert [e.id for e in invalid][:2] == ["2", "3.1415"]
    assert invalid[1].title == "float id" and invalid[0].link is None
    assert invalid[-1].author == "Jane"

    authors = parse_file(ADVERSARIAL, "authors.json").entries
    assert [e.author for e in authors] == ["Root Author 1, Root Author 2", "Legacy Item Author",
                                           "Item Author 1, Item Author 2",
                                           "Item Author 1, Item Author 2"]
    assert parse_file(ADVERSARIAL, "empty.json").entries[0].title == "content"
    link = parse_file(ADVERSARIAL, "rss_item_link_corrupted_ampersands.xml").entries[0].link
    assert link == "http://link/get?a=1&b=2"
    assert parse_file(ADVERSARIAL, "shopify-namespace.rss").entries[0].title == "Real Product Title"
    assert parse_file(ADVERSARIAL, "always_strip_doctype.xml").title == "found"


def test_mislabelled_utf8_is_read_as_utf8() -> None:
    """Documented choice: a legacy charset label on valid non-ASCII UTF-8 bytes is wrong."""
    assert parse_file(ADVERSARIAL, "windows-1252-incorrect-prolog.xml").title == "Euro €"
    utf8 = parse_file(ADVERSARIAL, "utf8-incorrect-prolog.xml")
    assert utf8.title == "테스트 피드" and utf8.entries[0].title == "Café"
    body = '<rss version="2.0"><channel><title>Grüße</title></channel></rss>'.encode()
    feed = parse_feed(body, "https://example.org/f", "text/xml; charset=ISO-8859-1")
    assert feed.title == "Grüße"
    latin1 = parse_feed(body.decode().encode("latin-1"), "https://example.org/f",
                        "application/rss+xml; charset=iso-8859-1")
    assert latin1.title == "Grüße"


# --------------------------------------------------------------------------- hostile input

def test_html_page_is_not_a_feed() -> None:
    page = (b"<!DOCTYPE html>\n<html lang='en'><head><title>My blog</title></head>"
            b"<body><h1>Welcome</h1><a href='/feed.xml'>RSS</a></body></html>")
    with pytest.raises(FeedParseError, match=r"not a feed: .*HTML"):
        parse_feed(page, "https://example.org/", "text/html; charset=utf-8")


@pytest.mark.parametrize("body", [b"", b"  \r\n\t", b"\xef\xbb\xbf"])
def test_empty_body(body: bytes) -> None:
    with pytest.raises(FeedParseError, match="not a feed: empty body"):
        parse_feed(body, "https://example.org/feed")


def test_random_bytes() -> None:
    noise = random.Random(1).randbytes(64 * 1024)
    with pytest.raises(FeedParseError, match="not a feed"):
        parse_feed(noise, "https://example.org/feed")


def test_json_that_is_not_a_feed() -> None:
    with pytest.raises(FeedParseError, match=r"not a feed: invalid JSON \("):
        parse_feed(b'{"items": [', "https://example.org/f.json")
    with pytest.raises(FeedParseError, match="unknown JSON Feed version ''"):
        parse_feed(b'{"error": "rate limited"}', "https://example.org/f.json")
    with pytest.raises(FeedParseError, match="invalid JSON"):
        parse_feed(b'{"a":' + b"[" * 100_000, "https://example.org/f.json")
    feed = parse_feed(b'{"version": "http://jsonfeed.org/version/1", "items": "nope"}',
                      "https://example.org/f.json")
    assert feed.entries == []


def billion_laughs(levels: int = 10) -> str:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)]
    return ('<?xml version="1.0"?>\n<!DOCTYPE rss [\n' + "\n".join(entities) + "\n]>\n"
            f'<rss version="2.0"><channel><title>&lol{levels - 1};</title><item>'
            f"<title>&lol{levels - 1};</title><link>https://example.org/a</link></item>"
            "</channel></rss>")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
@pytest.mark.parametrize("one_line", [False, True])
def test_billion_laughs_is_refused_quickly(encoding: str, one_line: bool) -> None:
    doc = billion_laughs()
    body = (doc.replace("\n", "") if one_line else doc).encode(encoding)
    started = time.perf_counter()
    with pytest.raises(FeedParseError, match="entity declarations are not allowed"):
        parse_feed(body, "https://example.org/feed")
    assert time.perf_counter() - started < 2.0  # a safety bound, not a benchmark


def test_entities_in_content_are_not_declarations() -> None:
    body = (b'<rss version="2.0"><channel><title>XML tips</title><item><title>XXE</title>'
            b'<description><![CDATA[Never accept <!ENTITY x SYSTEM "file:///etc/passwd">]]>'
            b"</description></item></channel></rss>")
    assert parse_feed(body, "https://example.org/f").entries[0].title == "XXE"


PASSWD = Path("/etc/passwd")


@pytest.mark.parametrize("doctype", [
    '<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>',
    '<!DOCTYPE rss [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
    '<!DOCTYPE rss SYSTEM "file:///etc/passwd">',
])
def test_external_entities_are_never_read(doctype: str) -> None:
    body = (f'<?xml version="1.0"?>\n{doctype}\n<rss version="2.0"><channel><title>t</title>'
            "<item><title>&xxe;</title><description>&xxe;</description>"
            "<link>https://example.org/a</link></item></channel></rss>").encode()
    secret = PASSWD.read_text().split(":")[0] + ":" if PASSWD.exists() else "root:"
    try:
        feed = parse_feed(body, "https://example.org/feed")
    except FeedParseError as exc:
        assert secret not in str(exc)
        return
    for entry in feed.entries:
        assert secret not in entry.title + entry.summary


@pytest.mark.parametrize("body", [b"/etc/passwd", b"https://example.org/feed.xml",
                                  str(REAL / "atp.rss").encode()])
def test_body_is_never_taken_for_a_path_or_url(body: bytes) -> None:
    with pytest.raises(FeedParseError):
        parse_feed(body, "https://example.org/feed")


def test_well_formed_feed_without_entries_is_empty() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>'
    feed = parse_feed(body, "https://example.org/feed", "application/rss+xml")
    assert feed == ParsedFeed(title="Quiet", link=None, entries=[])


def test_unexpected_errors_are_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(parse_module.feedparser, "parse", boom)
    with pytest.raises(FeedParseError, match="RuntimeError: kaboom"):
        parse_feed(b'<rss version="2.0"></rss>', "https://example.org/feed")


def test_results_and_errors_cross_a_process_boundary() -> None:
    """The worker may run parse_feed in a process pool: both outcomes must pickle."""
    feed = parse_file(REAL, "DaringFireball.json")
    assert pickle.loads(pickle.dumps(feed)) == feed
    with pytest.raises(FeedParseError) as caught:
        parse_file(ADVERSARIAL, "unknown.json")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(copy, FeedParseError) and str(copy) == str(caught.value)


def test_links_are_normalised_where_they_enter() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>
<link>https://User:pw@Blog.Example.org/</link>
<item><title>IRI</title><link>https://ja.example.org/wiki/\xe6\x97\xa5\xe6\x9c\xac</link></item>
<item><title>Space</title><link>/a b?q=c d</link></item>
<item><title>Escaped</title><link>https://ja.example.org/wiki/%E6%97%A5%e6%9c%ac</link></item>
<item><title>Script</title><link>javascript:alert(1)</link></item>
</channel></rss>"""
    parsed = parse_feed(body, "https://blog.example.org/feed.xml")
    assert parsed.link == "https://blog.example.org/"
    assert [e.link for e in parsed.entries] == [
        "https://ja.example.org/wiki/%E6%97%A5%E6%9C%AC",
        "https://blog.example.org/a%20b?q=c%20d",
        "https://ja.example.org/wiki/%E6%97%A5%e6%9c%ac",  # escapes kept as written
        None,
    ]


def test_an_entry_that_cannot_be_read_is_kept_with_its_error_and_the_others_are_read(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.parse

    real = bot.parse._xml_entry

    def brittle(e: Any, *args: Any) -> Any:
        if e.get("title") == "Poison":
            raise KeyError("a bug this entry brings out")
        return real(e, *args)

    monkeypatch.setattr(bot.parse, "_xml_entry", brittle)
    body = b"""<rss version="2.0"><channel><title>T</title>
<item><guid>g1</guid><title>Good</title><link>https://a.example.org/1</link></item>
<item><guid>g2</guid><title>Poison</title><link>https://a.example.org/2</link></item>
<item><guid>g3</guid><title>Also good</title><link>https://a.example.org/3</link></item>
</channel></rss>"""
    entries = parse_feed(body, "https://a.example.org/feed").entries
    assert [(e.id, e.title, e.error) for e in entries] == [
        ("g1", "Good", None),
        ("g2", "", "could not read this entry: KeyError: 'a bug this entry brings out'"),
        ("g3", "Also good", None)]
