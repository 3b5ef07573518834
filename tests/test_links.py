"""Links X can follow: normalise_link (IRI -> absolute http(s) URI) and tweetable."""

from __future__ import annotations

import re
import sqlite3
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from twitter_text import extract_urls, parse_tweet

from bot.links import MAX_LINK_LENGTH, normalise_link, tweetable, usable

# ---------------------------------------------------------------- examples


@pytest.mark.parametrize("href, expected", [
    ("https://ja.wikipedia.org/wiki/日本語の文字",
     "https://ja.wikipedia.org/wiki/%E6%97%A5%E6%9C%AC%E8%AA%9E%E3%81%AE%E6%96%87%E5%AD%97"),
    ("https://bücher.example/ä?q=ü#frag", "https://xn--bcher-kva.example/%C3%A4?q=%C3%BC#frag"),
    ("https://BÜCHER.Example/", "https://xn--bcher-kva.example/"),
    ("https://例え。jp/テスト", "https://xn--r8jz45g.jp/%E3%83%86%E3%82%B9%E3%83%88"),
    ("https://user:pw@example.org/x", "https://example.org/x"),
    ("https://user@example.org:8443/x", "https://example.org:8443/x"),
    ("HTTP://Example.ORG/CaseKept", "http://example.org/CaseKept"),
    ("  \t https://example.org/a\n ", "https://example.org/a"),
    ("https://example.org/a b\"<>`^{|}\\", "https://example.org/a%20b%22%3C%3E%60%5E%7B%7C%7D%5C"),
    ("https://example.org/%7e%7E/%zz/100%", "https://example.org/%7e%7E/%25zz/100%25"),
    ("https://example.org/?q=a b&r=%C3%BC#x y", "https://example.org/?q=a%20b&r=%C3%BC#x%20y"),
    ("https://example.org", "https://example.org/"),
    ("https://example.org:443/", "https://example.org:443/"),
    ("https://example.org/@name/1", "https://example.org/@name/1"),
])
def test_links_become_absolute_uris(href: str, expected: str) -> None:
    assert normalise_link(href) == expected
    assert normalise_link(expected) == expected


@pytest.mark.parametrize("href", [
    None, "", "   ", "javascript:alert(1)", "mailto:someone@example.org", "ftp://example.org/f",
    "data:text/html,hi", "/relative/path", "example.org/x", "//example.org/x", "http://",
    "https:///path", "https://exa mple.org/x", "https://example.org:port/", "http://[::1/",
    "https://ex%41mple.org/", "https://xn--.example/", "https://xn--zz-.example/", "https://a\u3000b.org/",
])
def test_what_cannot_be_a_web_link_is_none(href: str | None) -> None:
    assert normalise_link(href) is None


def test_relative_links_resolve_against_the_base() -> None:
    assert normalise_link("../b c", "https://example.org/a/d/e") == "https://example.org/a/b%20c"
    assert normalise_link("?p=2", "https://example.org/blog/") == "https://example.org/blog/?p=2"
    assert normalise_link("//cdn.example.org/x", "https://example.org/") == (
        "https://cdn.example.org/x")
    assert normalise_link("https://other.org/", "https://example.org/") == "https://other.org/"
    assert normalise_link("mailto:x@y.org", "https://example.org/") is None


def test_it_can_be_an_sqlite_function_to_rewrite_stored_links() -> None:
    conn = sqlite3.connect(":memory:")
    conn.create_function("normalise_link", 1, normalise_link, deterministic=True)
    rows = conn.execute("SELECT normalise_link(?), normalise_link(?), normalise_link(NULL)",
                        ("https://bücher.example/ä", "javascript:x")).fetchone()
    assert rows == ("https://xn--bcher-kva.example/%C3%A4", None, None)


# ---------------------------------------------------------------- tweetable


def test_an_ordinary_link_is_one_tco_link() -> None:
    link = normalise_link("https://ja.wikipedia.org/wiki/日本語の文字")
    assert link is not None and tweetable(link)
    assert parse_tweet(link).weightedLength == 23


def test_the_longest_link_x_shortens() -> None:
    base = "https://example.org/"
    longest = base + "a" * (MAX_LINK_LENGTH - len(base))
    assert tweetable(longest) and extract_urls(longest) == [longest]
    assert not tweetable(longest + "a")  # twitter-text finds no URL in it at all
    assert parse_tweet(longest + "a").weightedLength > 23
    http = "http://example.org/" + "a" * (MAX_LINK_LENGTH + 1 - len("http://example.org/"))
    assert tweetable(http)  # the protocol counts twice: http:// buys one character


@pytest.mark.parametrize("link", [
    "https://example.org/end.",  # X leaves the "." out of the link
    "https://example.org/a)",
    "https://blog.example/1",  # .example is no top-level domain X knows
    "http://127.0.0.1:8080/x",
    "http://localhost/x",
    "",
])
def test_links_x_would_not_shorten_whole(link: str) -> None:
    assert not tweetable(link)


# ---------------------------------------------------------------- properties

_URL_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",))
_HOSTS = st.sampled_from(["example.org", "bücher.example", "ΕΛΛΗΝΙΚΆ.gr", "日本語.jp",
                          "EXAMPLE.COM", "a-b.co.uk", "xn--bcher-kva.example", "[::1]"])
_PIECES = st.lists(st.one_of(
    st.text(_URL_CHARS, max_size=8),
    st.sampled_from(["%", "%2", "%2F", "%e2%82%ac", "%zz", " ", "#", "?", "/", "@", ":",
                     "[", "]", "日本", "é", "\u0301", "\t", "\x7f", "..", "%25"]),
), max_size=8).map("".join)


@st.composite
def links(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTPS", "ftp", "javascript", ""]))
    user = draw(st.sampled_from(["", "user@", "user:pw@", "a@b@"]))
    port = draw(st.sampled_from(["", ":8080", ":", ":x"]))
    lead = draw(st.sampled_from(["", " ", "\n\t", "\x00"]))
    return f"{lead}{scheme}://{user}{draw(_HOSTS)}{port}/{draw(_PIECES)}{lead}"


ANY_TEXT = st.one_of(links(), st.text(max_size=40), _PIECES)


@given(ANY_TEXT)
@example("https://example.org/%")
@example("https://example.org/\x00")
@example("https://example.org/#a#b")
def test_normalising_twice_changes_nothing(href: str) -> None:
    once = normalise_link(href)
    assert once is None or normalise_link(once) == once


@given(ANY_TEXT)
def test_a_normalised_link_is_an_absolute_ascii_http_uri(href: str) -> None:
    link = normalise_link(href)
    if link is None:
        return
    assert link.isascii()
    assert re.fullmatch(r"https?://[^\s/?#@\x00-\x1f\x7f]+/[^\s\x00-\x1f\x7f]*", link), link
    assert not re.search(r"[\"<>\\^`{|}]", link)
    assert not re.search(r"%(?![0-9A-Fa-f]{2})", link)


@given(_PIECES)
@example("%2f%2F%e2%82%AC")
def test_escapes_stay_exactly_as_written(path: str) -> None:
    link = normalise_link("https://example.org/" + path)
    assert link is not None
    for escape in re.findall(r"%[0-9A-Fa-f]{2}", path.split("#")[0].split("?")[0]):
        assert escape in link


@given(_PIECES, _HOSTS)
@example("ä?q=ü#frag", "bücher.example")
@example(" ", "example.org")
def test_an_iri_and_its_encoded_spelling_are_the_same_link(path: str, host: str) -> None:
    path = re.sub("[\t\n\r]", "", path) + "x"  # those go anywhere, blanks at the ends
    iri = f"https://{host}/{path}"
    encoded = f"https://{host}/" + quote(path, safe="/?#%:@!$&'()*+,;=[]")
    assert normalise_link(iri) == normalise_link(encoded)


@pytest.mark.parametrize(("link", "ok"), [
    ("https://example.org/a", True),  # X links it whole
    ("https://blog.example/1", True),  # X shows it as text, whole (a domain it does not know)
    ("http://127.0.0.1:8080/x", True),
    ("https://example.org/end.", False),  # X would link it without its last "."
    ("https://example.org/a)", False),
    ("https://example.org/" + "a" * 5000, False),  # longer than X shortens
    ("https://blog.example/" + "a" * 5000, False),
    ("https://example.org/a b", False),  # not normalised
    ("", False),
    (None, False),
])
def test_a_usable_link_is_never_one_x_would_cut_short(link: str | None, ok: bool) -> None:
    assert usable(link) is ok
