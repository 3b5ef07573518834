"""Turn a fetched feed body into a :class:`ParsedFeed` of clean :class:`Entry` values.

``parse_feed(body, url, content_type)`` is pure and synchronous (the caller runs it in an
executor). It reads RSS 0.9x/1.0/2.0 and Atom through feedparser, JSON Feed 1.x and
scripting.com's RSS-in-JSON with :mod:`json`, and raises only :class:`FeedParseError`.

Rules worth knowing:

* **Format sniffing** is by content, never by name: a body whose first non-blank byte is ``{``
  is JSON, anything else goes to feedparser, always wrapped in a stream (given bare bytes,
  feedparser would open them as a file name: ``b"/etc/passwd"``).
* **Safety.** A document that declares XML entities in its DTD is refused up front
  ("not a feed: XML entity declarations are not allowed"): no billion laughs, no external
  entities; an ``<!ENTITY`` inside the content (CDATA) is not a declaration and is fine.
  HTML is never sanitized by feedparser (we only keep its text), which also saves time.
* **Encoding.** feedparser decides (HTTP charset, XML declaration, BOM, fallbacks). One
  override: a body declared as a legacy single-byte charset (ISO-8859-*, windows-125x,
  ASCII) that is non-ASCII *valid UTF-8* is read as UTF-8; such bytes are mislabelled UTF-8
  in practice (``windows-1252-incorrect-prolog.xml`` gives "Euro €", not "Euro â‚¬").
* **Entry.link is the publisher's own permalink**, so the same post read from two formats
  of one site has the same link (the bot dedupes across feeds by link):

  - JSON Feed: ``url`` (the spec's permalink), else ``external_url``;
  - Atom/RSS: the alternate link (HTML type first), except that an entry's ``rel="related"``
    link wins when it is on the feed's own site (host of the feed's home link or URL,
    ignoring ``www.``). That is the linkblog convention of Daring Fireball: alternate = the
    linked article (sometimes another DF page), related = the DF post, which is what its
    JSON Feed gives as ``url`` (``external_url`` being the article). RSS has no such marker
    (feedparser hides ``isPermaLink`` once ``<link>`` exists), so RSS linkblogs keep
    ``<link>``;
  - a guid stands in for a missing ``<link>`` only when it is an absolute URL;
  - resolved against xml:base and the feed URL; anything but absolute http(s) becomes None.
* **Entry.id** is the id/guid as written (not resolved against the feed URL, so it does not
  change when the feed moves), else the link, else ``sha256:`` of title, date and the start
  of the text. Ids are unique within one result: a repeated id gets ``#`` plus 12 hex digits
  of that hash (scriptingNews.rss repeats two guids for different posts), and an entry that
  repeats an earlier one exactly (same id, same content) is dropped.
* **Text.** Titles, summaries and authors are plain text (tags dropped, ``<script>`` and
  ``<style>`` bodies dropped, entities decoded, whitespace collapsed). HTML is read as a
  browser shows it: comments hidden as HTML5 ends them (``safe<!--`` is "safe", an
  unterminated comment hides the rest). A value feedparser reports as ``text/plain`` (an
  Atom ``type="text"``, an RSS title that does not look like HTML, unless it holds ``<!--``)
  is shown as it is: its entities were decoded once, by the XML parser, and are not again.
  A numeric reference to no character (``&#55357;&#56832;``, an emoji as its UTF-16 pair;
  ``&#0;``; past U+10FFFF) is made the character or U+FFFD before parsing: feedparser's
  loose parser crashed on them and the whole feed was lost. An untitled entry takes
  the first words of its text; an entry with neither keeps an empty title. The summary is
  the summary, else the content; titles and summaries are capped at :data:`SUMMARY_MAX`.
* **Entry.image** (a link card's picture) is the first of these that is an http(s) URL of at
  most 2048 characters (one that is not gives way to the next): a ``media:thumbnail`` url
  (or text); a ``media:content`` with ``medium="image"`` or an ``image/*`` type (inside
  ``media:group`` too); an image enclosure (RSS ``<enclosure type="image/...">``, Atom
  ``<link rel="enclosure" type="image/...">``); the item's ``itunes:image`` href; else the
  first ``<img src>`` of the entry's HTML content, then of its summary (in their first
  32,768 characters, not inside a comment, not a 0 or 1 pixel wide or high tracker). Each
  kind in document order. JSON Feed: ``image``, then ``banner_image`` (RSS-in-JSON: none).
  Resolved against the entry's base, then the feed URL, and normalised like links: an HTML
  ``src`` against its own element's xml:base, an Atom enclosure's href against its own
  (feedparser resolves links), anything else against the xml:base feedparser gives the
  entry's text (its title's, else its summary's or content's: the item's, in practice;
  feedparser keeps no base of its own for an item or a media element).
* **Dates** are aware UTC datetimes: published, else updated; JSON Feed dates without a zone
  are UTC; ``2020/1/10 14:33:00`` (kc0011.rss; feedparser misreads it) is parsed here as UTC.
* **Not a feed**: no entries and no feed version (or title) → an error: "looks like an HTML
  page" for HTML, else feedparser's exception text. No entries plus a real XML error → error.
  A well-formed feed with no entries is an empty :class:`ParsedFeed`; a broken feed that
  still yields entries is returned as is.

One module per job: :mod:`bot.xmlbody` (the body before parsing), :mod:`bot.jsonfeed` (the
JSON formats), :mod:`bot.feedentries` (ids, repeats, links), :mod:`bot.htmltext` (plain text)
and :mod:`bot.dates`. This one reads RSS/Atom/RDF (feedparser, or :mod:`bot.fastxml`).
"""

from __future__ import annotations

import html
import io
import re
from typing import Any
from urllib.parse import urlsplit

import feedparser
from feedparser import ThingsNobodyCaresAboutButMe

from bot.dates import slash_date, struct_date
from bot.errors import FeedParseError
from bot.fastxml import feedparser_result
from bot.feedentries import (
    SUMMARY_MAX,
    build_entry,
    http_url,
    image_url,
    read_each,
    unique_entries,
)
from bot.feedparser_compat import urljoin as feedparser_urljoin

# "x as x": still bot.parse.<name> for the tests and the bench, as before the split
from bot.htmltext import _html_to_text_fast as _html_to_text_fast
from bot.htmltext import _html_to_text_parser as _html_to_text_parser
from bot.htmltext import plain, plain_text
from bot.htmltext import shorten as shorten
from bot.htmltext import untitled as untitled
from bot.jsonfeed import parse_json
from bot.models import Entry, ParsedFeed
from bot.xmlbody import declares_entities, fix_char_refs, looks_like_html
from bot.xmlbody import feed_content_type as _content_type

__all__ = ["SUMMARY_MAX", "parse_feed"]

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_HTML_TYPES = ("text/html", "application/xhtml+xml")


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    """Read ``body`` (fetched from ``url``); raise :class:`FeedParseError` and nothing else."""
    try:
        head = body.lstrip()
        for bom in _BOMS:
            if head.startswith(bom):
                head = head[len(bom):].lstrip()
                break
        if not head:
            raise FeedParseError("not a feed: empty body")
        if head.startswith(b"{"):
            return parse_json(body, url)
        return _parse_xml(body, url, content_type)
    except FeedParseError:
        raise
    except Exception as exc:  # the contract: callers only ever see FeedParseError
        raise FeedParseError(f"cannot parse feed: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------- XML (feedparser)

FAST_PATH = True  # bot.fastxml where it reads a document exactly like feedparser (bench toggles)
_ROOT_CLOSED = re.compile(rb"</(?:[\w.-]+:)?(?:rss|feed|RDF|channel)\b", re.IGNORECASE)


def _parse_xml(body: bytes, url: str, content_type: str | None) -> ParsedFeed:
    if declares_entities(body):
        raise FeedParseError("not a feed: XML entity declarations are not allowed")
    body = fix_char_refs(body)
    # No Content-Location: feedparser would resolve ids against it too (livemint's numeric
    # guids would become URLs under the feed URL), tying ids to the fetch URL. Links are
    # resolved here instead, after feedparser has applied xml:base.
    headers = {"content-type": _content_type(body, content_type)}
    # Well-formed RSS/Atom/RDF: the same dictionary, built faster by bot.fastxml (None: use
    # feedparser)
    d = (FAST_PATH and feedparser_result(body, headers["content-type"])) or feedparser.parse(
        io.BytesIO(body), response_headers=headers, sanitize_html=False,
        resolve_relative_uris=False)
    feed, exc = d.get("feed") or {}, d.get("bozo_exception")
    if exc is not None and d.entries and not _ROOT_CLOSED.search(body[-2048:]):
        # Cut off mid-document (a dropped connection): the last entry may be half there, and
        # a later full copy would not match it. Nothing from this copy is used.
        raise FeedParseError(f"not a feed: the document is truncated ({exc})")
    if not d.entries:
        if not d.get("version") and looks_like_html(body):
            raise FeedParseError(_html_page_error(body, url, content_type))
        if exc is not None and not isinstance(exc, ThingsNobodyCaresAboutButMe):
            raise FeedParseError(f"not a feed: {exc or type(exc).__name__}")
        if not d.get("version") and not feed.get("title"):
            raise FeedParseError("not a feed: no RSS, Atom or RDF content")
    feed_link = http_url(url, feed.get("link"))
    site = {h for h in (_host(feed_link), _host(url)) if h}
    rss = not str(d.get("version") or "").startswith("atom")
    title = _text(feed.get("title"), feed.get("title_detail"), rss)
    return ParsedFeed(title=title, link=feed_link,
                      entries=unique_entries(read_each(
                          d.entries, lambda e: _xml_entry(e, url, site, rss),
                          lambda e: e.get("id"))))


def _html_page_error(body: bytes, url: str, content_type: str | None) -> str:
    """What to say of a web page where a feed was expected: the feed it names, if any."""
    from bot.discover import choose, find_feed_links

    chosen = choose(find_feed_links(body, url, content_type))
    if chosen is None:
        return "not a feed: looks like an HTML page"
    return f"not a feed: looks like an HTML page, which names its feed: {chosen.url}"


def _text(value: str | None, detail: Any, rss: bool, limit: int | None = None) -> str:
    """Plain text of a feedparser value. Its type is the one feedparser reports, except that
    a "text/plain" RSS value holding "<!--" is HTML: RSS never declares a title's type, and
    feedparser's guess (a close tag or an entity makes it HTML) misses a bare comment."""
    kind = (detail or {}).get("type")
    if rss and kind == "text/plain" and value and "<!--" in value:
        kind = "text/html"
    return plain_text(value, kind, limit)


def _xml_entry(e: Any, url: str, site: set[str], rss: bool) -> tuple[Entry, str]:
    title = _text(e.get("title"), e.get("title_detail"), rss, SUMMARY_MAX)
    summary = ""
    for detail in (e.get("summary_detail"), *(e.get("content") or ())):
        if detail and detail.get("value"):
            summary = _text(detail["value"], detail, rss, SUMMARY_MAX)
            break
    # dict.get: FeedParserDict's "updated" falls back to "published" with a
    # DeprecationWarning (an exception where warnings are errors); that fallback adds nothing
    raw_date = e.get("published") or dict.get(e, "updated") or ""
    published = slash_date(raw_date) or struct_date(e.get("published_parsed")
                                                    or dict.get(e, "updated_parsed"))
    author_detail = e.get("author_detail") or {}
    author = plain(author_detail.get("name") or e.get("author"))
    tags = (t.get("term") or t.get("label") for t in e.get("tags") or () if isinstance(t, dict))
    return build_entry(e.get("id"), _xml_link(e, url, site), title, summary, author, tags,
                       published, raw_date, _xml_image(e, url))


_IMG_TAG = re.compile(r"<[iI][mM][gG](?=[\s/>])[^>]*>")
_IMG_SRC = re.compile(r"""[\s/"']src\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
_IMG_PIXEL = re.compile(r"""[\s/"'](?:width|height)\s*=\s*["']?\s*[01](?:px)?\s*(?:["'\s/>])""",
                        re.I)  # a tracking pixel: width or height 0 or 1
_HTML_COMMENT = re.compile(r"<!--(?:-?>|.*?(?:--!?>|\Z))", re.DOTALL)  # as HTML5 ends one
_IMG_SCAN_MAX = 20  # <img> tags looked at in one HTML value
_IMG_SCAN_CHARS = 32_768  # ... in its first so many characters (a lead picture is near the top)


def _xml_image(e: Any, url: str) -> str | None:
    """The entry's picture (see the module docstring), from the feedparser-shaped entry:
    ``media_thumbnail``/``media_content`` (lists of the elements' attributes),
    ``links`` (enclosures), ``image`` (itunes:image), then the HTML of ``content`` and
    ``summary_detail``. ``dict.get``: FeedParserDict's own ``get`` maps keys ("url" onto
    "href") and is slow; none of these keys is mapped."""
    get = dict.get
    content, summary = get(e, "content") or (), get(e, "summary_detail")
    for thumbnail in get(e, "media_thumbnail") or ():
        if isinstance(thumbnail, dict) and (found := image_url(
                url, get(thumbnail, "url"), _entry_base(e), feedparser_urljoin)):
            return found
    for media in get(e, "media_content") or ():
        if isinstance(media, dict) and (
                str(get(media, "medium") or "").strip().lower() == "image"
                or _is_image_type(get(media, "type"))) and (found := image_url(
                    url, get(media, "url"), _entry_base(e), feedparser_urljoin)):
            return found
    for link in get(e, "links") or ():
        if isinstance(link, dict) and get(link, "rel") == "enclosure" and \
                _is_image_type(get(link, "type")) and (found := image_url(
                    url, get(link, "href"), _entry_base(e), feedparser_urljoin)):
            return found
    itunes = get(e, "image")
    if isinstance(itunes, dict) and (found := image_url(
            url, get(itunes, "href"), _entry_base(e), feedparser_urljoin)):
        return found
    for detail in (*content, summary):
        if isinstance(detail, dict) and get(detail, "type") in _HTML_TYPES and (
                found := _html_image(get(detail, "value"), get(detail, "base") or "", url)):
            return found
    return None


def _entry_base(e: Any) -> str:
    """The xml:base feedparser gives the entry's text: its title's, else its summary's, else
    its first content's (the base in effect for the item, unless those elements set their
    own). feedparser keeps no base for the item itself nor for its media elements."""
    get = dict.get
    text = get(e, "title_detail") or get(e, "summary_detail") or next(
        iter(get(e, "content") or ()), None)
    return (get(text, "base") if isinstance(text, dict) else None) or ""


def _is_image_type(kind: object) -> bool:
    return isinstance(kind, str) and kind.strip().lower().startswith("image/")


def _html_image(markup: object, base: str, url: str) -> str | None:
    """The first ``<img src>`` of ``markup`` that is an http(s) URL, outside comments and
    not a tracking pixel (width or height 0 or 1), in its first :data:`_IMG_SCAN_CHARS`
    characters."""
    if not isinstance(markup, str) or \
            (first := _IMG_TAG.search(markup, 0, _IMG_SCAN_CHARS)) is None:
        return None
    start = first.start()
    if markup.find("<!--", 0, _IMG_SCAN_CHARS) >= 0:
        markup, start = _HTML_COMMENT.sub("", markup[:_IMG_SCAN_CHARS]), 0
    for n, tag in enumerate(_IMG_TAG.finditer(markup, start, _IMG_SCAN_CHARS)):
        if n == _IMG_SCAN_MAX:
            break
        src = _IMG_SRC.search(tag[0])
        if src is None or _IMG_PIXEL.search(tag[0]):
            continue
        value = src[1] if src[1] is not None else src[2] if src[2] is not None else src[3]
        if found := image_url(url, html.unescape(value) if "&" in value else value, base,
                              feedparser_urljoin):
            return found
    return None


def _xml_link(e: Any, url: str, site: set[str]) -> str | None:
    alternate = html_alternate = related = None
    for link in e.get("links") or ():
        href, rel = link.get("href"), link.get("rel", "alternate")
        if rel == "alternate" and href:
            alternate = alternate or href
            if html_alternate is None and (link.get("type") or "text/html") in _HTML_TYPES:
                html_alternate = href
        elif rel == "related" and related is None:
            related = http_url(url, href)
    if related and _host(related) in site:
        return related
    if html_alternate or alternate:
        return http_url(url, html_alternate or alternate)
    link = e.get("link")  # from a guid taken as permalink: only if it is an absolute URL
    return http_url(url, link) if not e.get("guidislink") else http_url("", link)


def _host(link: str | None) -> str:
    if not link:
        return ""
    try:
        host = urlsplit(link).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")
