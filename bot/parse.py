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
* **Dates** are aware UTC datetimes: published, else updated; JSON Feed dates without a zone
  are UTC; ``2020/1/10 14:33:00`` (kc0011.rss; feedparser misreads it) is parsed here as UTC.
* **Not a feed**: no entries and no feed version (or title) → an error: "looks like an HTML
  page" for HTML, else feedparser's exception text. No entries plus a real XML error → error.
  A well-formed feed with no entries is an empty :class:`ParsedFeed`; a broken feed that
  still yields entries is returned as is.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any, TypeVar
from urllib.parse import urlsplit

import feedparser
from feedparser import ThingsNobodyCaresAboutButMe

from bot.errors import FeedParseError
from bot.fastxml import feedparser_result
from bot.links import normalise_link
from bot.models import Entry, ParsedFeed
from bot.times import utc

__all__ = ["SUMMARY_MAX", "parse_feed"]

T = TypeVar("T")

SUMMARY_MAX = 1000
TITLE_MAX_CHARS = 100
TITLE_MAX_WORDS = 12

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_JSON_FEED_VERSION = re.compile(r"https?://jsonfeed\.org/version/1(?:\.\d+)?/?")
_XML_ENCODING = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([\w.:-]+)", re.I)
_LEGACY_CHARSET = re.compile(r"(iso[-_]?8859[-_]?\d+|latin[-_]?1|(windows|cp)[-_]?125\d|"
                             r"(us-)?ascii)", re.I)
_WIDE_PREFIXES = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                  (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"),
                  (b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"),
                  (b"\x00<", "utf-16-be"), (b"<\x00", "utf-16-le"))
_PROLOG_MARK = re.compile(rb"""<!--|<\?|<!ENTITY|<[^!?]|["']""")
_PROLOG_CLOSE = {b"<!--": b"-->", b"<?": b"?>", b'"': b'"', b"'": b"'"}
_SLASH_DATE = re.compile(r"\s*(\d{4})/(\d{1,2})/(\d{1,2})"
                         r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_PLAIN_TYPES = ("text/plain",)


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
            return _parse_json(body, url)
        return _parse_xml(body, url, content_type)
    except FeedParseError:
        raise
    except Exception as exc:  # the contract: callers only ever see FeedParseError
        raise FeedParseError(f"cannot parse feed: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------- XML (feedparser)

FAST_PATH = True  # bot.fastxml where it reads a document exactly like feedparser (bench toggles)
_ROOT_CLOSED = re.compile(rb"</(?:[\w.-]+:)?(?:rss|feed|RDF|channel)\b", re.IGNORECASE)


def _parse_xml(body: bytes, url: str, content_type: str | None) -> ParsedFeed:
    if _declares_entities(body):
        raise FeedParseError("not a feed: XML entity declarations are not allowed")
    body = _fix_char_refs(body)
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
        if not d.get("version") and _looks_like_html(body):
            raise FeedParseError(_html_page_error(body, url, content_type))
        if exc is not None and not isinstance(exc, ThingsNobodyCaresAboutButMe):
            raise FeedParseError(f"not a feed: {exc or type(exc).__name__}")
        if not d.get("version") and not feed.get("title"):
            raise FeedParseError("not a feed: no RSS, Atom or RDF content")
    feed_link = _http_url(url, feed.get("link"))
    site = {h for h in (_host(feed_link), _host(url)) if h}
    rss = not str(d.get("version") or "").startswith("atom")
    title = _text(feed.get("title"), feed.get("title_detail"), rss)
    return ParsedFeed(title=title, link=feed_link,
                      entries=_unique(_each(d.entries, lambda e: _xml_entry(e, url, site, rss),
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
    published = _slash_date(raw_date) or _struct_date(e.get("published_parsed")
                                                      or dict.get(e, "updated_parsed"))
    author_detail = e.get("author_detail") or {}
    author = _plain(author_detail.get("name") or e.get("author"))
    tags = (t.get("term") or t.get("label") for t in e.get("tags") or () if isinstance(t, dict))
    return _entry(e.get("id"), _xml_link(e, url, site), title, summary, author, tags,
                  published, raw_date)


def _xml_link(e: Any, url: str, site: set[str]) -> str | None:
    alternate = html_alternate = related = None
    for link in e.get("links") or ():
        href, rel = link.get("href"), link.get("rel", "alternate")
        if rel == "alternate" and href:
            alternate = alternate or href
            if html_alternate is None and (link.get("type") or "text/html") in _HTML_TYPES:
                html_alternate = href
        elif rel == "related" and related is None:
            related = _http_url(url, href)
    if related and _host(related) in site:
        return related
    if html_alternate or alternate:
        return _http_url(url, html_alternate or alternate)
    link = e.get("link")  # from a guid taken as permalink: only if it is an absolute URL
    return _http_url(url, link) if not e.get("guidislink") else _http_url("", link)


# A numeric character reference no character has: a surrogate (an emoji written as its UTF-16
# pair, "&#55357;&#56832;"), zero, or past U+10FFFF. Expat refuses them (the document is not
# well-formed) and feedparser's loose parser then crashes on them (chr(), UTF-8 encoding):
# one such reference lost the whole feed. Candidates here, checked in _char_ref_value.
_BAD_CHAR_REF = re.compile(
    rb"&#(?:[xX]0*([dD][89a-fA-F][0-9a-fA-F]{2}|1[1-9a-fA-F][0-9a-fA-F]{4}|[2-9a-fA-F]"
    rb"[0-9a-fA-F]{5}|[0-9a-fA-F]{7,}|0)(?![0-9a-fA-F])"
    rb"|0*(5[5-7]\d{3}|1[1-9]\d{5}|[2-9]\d{6}|\d{8,}|0)(?!\d));?")


def _char_ref_value(m: re.Match[bytes]) -> int | None:
    """The code point of a bad reference (a surrogate, 0 or too big), else None."""
    value = int(m[1], 16) if m[1] is not None else int(m[2])
    return value if value == 0 or 0xD800 <= value < 0xE000 or value > 0x10FFFF else None


def _fix_char_refs(body: bytes) -> bytes:
    """``body`` with each surrogate pair of references made one reference and any other bad
    reference made U+FFFD (as HTML5 does). A UTF-16/32 body is fixed as UTF-8 and written
    back in its own encoding."""
    for prefix, codec in _WIDE_PREFIXES:
        if body.startswith(prefix):
            try:
                text = body.decode(codec)
            except UnicodeDecodeError:
                return body  # not readable as that: no parser gets to its references
            utf8 = text.encode("utf-8", "surrogatepass")
            fixed = _fix_char_refs(utf8)
            return body if fixed is utf8 else fixed.decode("utf-8", "surrogatepass").encode(
                codec, "surrogatepass")
    if b"&#" not in body or not _BAD_CHAR_REF.search(body):
        return body
    bad = [(m.start(), m.end(), v) for m in _BAD_CHAR_REF.finditer(body)
           if (v := _char_ref_value(m)) is not None]
    out, pos, i = [], 0, 0
    while i < len(bad):
        start, end, value = bad[i]
        out.append(body[pos:start])
        if 0xD800 <= value < 0xDC00 and i + 1 < len(bad) and bad[i + 1][0] == end and \
                0xDC00 <= bad[i + 1][2] < 0xE000:
            code = 0x10000 + ((value - 0xD800) << 10) + (bad[i + 1][2] - 0xDC00)
            out.append(b"&#x%X;" % code)
            pos, i = bad[i + 1][1], i + 2
        else:
            out.append(b"&#xFFFD;")
            pos, i = end, i + 1
    out.append(body[pos:])
    return b"".join(out)


def _declares_entities(body: bytes) -> bool:
    """True when the prolog (before the root element) holds an ``<!ENTITY`` declaration.

    Linear scan that skips comments, PIs and quoted literals; ``<!ENTITY`` in CDATA inside
    the document (a post about XML) is not a declaration and is not refused.
    """
    for prefix, codec in _WIDE_PREFIXES:  # UTF-16/32: scan a UTF-8 copy
        if body.startswith(prefix):
            body = body.decode(codec, "replace").encode("utf-8")
            break
    if b"<!ENTITY" not in body:
        return False
    pos = 0
    while (m := _PROLOG_MARK.search(body, pos)) is not None:
        token = m.group()
        if token == b"<!ENTITY":
            return True
        closer = _PROLOG_CLOSE.get(token)
        if closer is None:  # an element start: the prolog is over
            return False
        end = body.find(closer, m.end())
        if end < 0:  # unterminated: no XML parser gets past it either
            return False
        pos = end + len(closer)
    return False


def _content_type(body: bytes, content_type: str | None) -> str:
    """The Content-Type to show feedparser; forces UTF-8 for mislabelled UTF-8 bodies."""
    mime, _, params = (content_type or "application/xml").partition(";")
    charset = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", params, re.I)
    declared = charset.group(1) if charset else None
    if declared is None:
        m = _XML_ENCODING.match(body[:300].lstrip().removeprefix(b"\xef\xbb\xbf"))
        declared = m.group(1).decode("ascii") if m else None
    if declared and _LEGACY_CHARSET.fullmatch(declared) and not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return f"{mime.strip()}; charset=utf-8"
    return content_type or "application/xml"


def _looks_like_html(body: bytes) -> bool:
    head = body[:1024].lstrip().removeprefix(b"\xef\xbb\xbf").lower()
    return head.startswith(b"<!doctype html") or b"<html" in head


# --------------------------------------------------------------------------- JSON

def _parse_json(body: bytes, url: str) -> ParsedFeed:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise FeedParseError(f"not a feed: invalid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise FeedParseError("not a feed: invalid JSON (the top level is not an object)")
    if "version" not in doc and isinstance(doc.get("rss"), dict):
        return _parse_rss_in_json(doc["rss"], url)
    version = doc.get("version")
    if not isinstance(version, str) or not _JSON_FEED_VERSION.fullmatch(version.strip()):
        raise FeedParseError(f"not a feed: unknown JSON Feed version {str(version or '')!r}")
    feed_link = _http_url(url, _str(doc.get("home_page_url")))
    feed_authors = _json_authors(doc)
    entries = _each([item for item in _as_list(doc.get("items")) if isinstance(item, dict)],
                    lambda item: _json_entry(item, url, feed_authors), lambda item: item.get("id"))
    return ParsedFeed(title=_plain(_str(doc.get("title"))), link=feed_link,
                      entries=_unique(entries))


def _json_entry(item: dict[str, Any], url: str, feed_authors: str) -> tuple[Entry, str]:
    link = _http_url(url, _str(item.get("url"))) or _http_url(url, _str(item.get("external_url")))
    summary = ""
    # JSON Feed's plain text is often HTML-escaped in practice (rose.json: "echo 0 &gt; /sys"):
    # its entities are decoded (kind None), unlike a feed's text/plain value
    for key, kind in (("summary", None), ("content_text", None), ("content_html", "html")):
        if value := _str(item.get(key)):
            summary = plain_text(value, kind, SUMMARY_MAX)
            break
    raw_date = _str(item.get("date_published")) or _str(item.get("date_modified")) or ""
    return _entry(item.get("id"), link, _plain(_str(item.get("title"))), summary,
                  _json_authors(item) or feed_authors, _as_list(item.get("tags")),
                  _iso_date(raw_date), raw_date)


def _json_authors(obj: dict[str, Any]) -> str:
    authors = _as_list(obj.get("authors")) or _as_list(obj.get("author"))
    names = (_plain(_str(a.get("name"))) for a in authors if isinstance(a, dict))
    return ", ".join(n for n in names if n)


def _parse_rss_in_json(rss: dict[str, Any], url: str) -> ParsedFeed:
    """scripting.com's RSS-in-JSON: ``{"rss": {"channel": {"item": [...]}}}``."""
    channel = rss.get("channel")
    channel = channel if isinstance(channel, dict) else {}
    entries = []
    for item in _as_list(channel.get("item")):
        if not isinstance(item, dict):
            continue
        raw_date = _str(item.get("pubDate")) or ""
        entries.append(_entry(item.get("guid"), _http_url(url, _str(item.get("link"))),
                              _plain(_str(item.get("title"))),
                              plain_text(_str(item.get("description")), "html", SUMMARY_MAX),
                              _plain(_str(item.get("author"))), _as_list(item.get("category")),
                              _rfc822_date(raw_date), raw_date))
    return ParsedFeed(title=_plain(_str(channel.get("title"))),
                      link=_http_url(url, _str(channel.get("link"))), entries=_unique(entries))


# --------------------------------------------------------------------------- shared helpers

def _entry(raw_id: object, link: str | None, title: str, summary: str, author: str,
           tags: Iterable[Any], published: datetime | None, raw_date: str) -> tuple[Entry, str]:
    """Build an Entry (position set later) and return it with its content digest."""
    if isinstance(raw_id, (int, float)) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    date_key = published.isoformat() if published else raw_date
    # surrogatepass: a JSON string may hold a lone surrogate ("\ud800"); the worker makes
    # such text valid before storing it (bot.models.storable), the digest must not fail first
    digest = hashlib.sha256(f"{title}\n{date_key}\n{summary[:200]}".encode(
        "utf-8", "surrogatepass")).hexdigest()
    entry_id = (raw_id.strip() if isinstance(raw_id, str) else "") or link or f"sha256:{digest}"
    categories = dict.fromkeys(c for t in tags if isinstance(t, str) and (c := _plain(t)))
    if not title and summary:
        title = untitled(summary)
    return Entry(id=entry_id, link=link, title=title, summary=summary, author=author,
                 categories=tuple(categories), published=published), digest


def _each(raws: Iterable[T], read: Callable[[T], tuple[Entry, str]],
          raw_id: Callable[[T], object]) -> Iterator[tuple[Entry, str]]:
    """``read`` each raw entry; one that cannot be read becomes an Entry with an ``error``
    (recorded as a failed post that says why) instead of losing the whole feed."""
    for raw in raws:
        try:
            yield read(raw)
        except Exception as exc:
            rid = raw_id(raw)
            digest = hashlib.sha256(repr(raw)[:4000].encode("utf-8", "surrogatepass")).hexdigest()
            entry_id = rid.strip() if isinstance(rid, str) and rid.strip() else f"sha256:{digest}"
            yield Entry(id=entry_id, link=None, title="",
                        error=f"could not read this entry: {type(exc).__name__}: {exc}"), digest


def _unique(items: Iterable[tuple[Entry, str]]) -> list[Entry]:
    """Number entries in order; give repeated ids a digest suffix; drop exact repeats."""
    seen: set[str] = set()
    seen_content: set[tuple[str, str]] = set()
    out: list[Entry] = []
    for entry, digest in items:
        if (entry.id, digest) in seen_content:
            continue
        seen_content.add((entry.id, digest))
        entry_id = entry.id if entry.id not in seen else f"{entry.id}#{digest[:12]}"
        if entry_id in seen:
            continue
        seen.add(entry_id)
        out.append(replace(entry, id=entry_id, position=len(out)))
    return out


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_list(value: object) -> list[Any]:
    """A JSON value as a list: a list as is, one object or string as a list of one."""
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, (dict, str)) else []


def _host(link: str | None) -> str:
    if not link:
        return ""
    try:
        host = urlsplit(link).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def _http_url(base: str, href: str | None) -> str | None:
    """``href`` made absolute against ``base`` and normalised (:func:`bot.links.normalise_link`:
    an IRI becomes a URI, userinfo goes); None unless it is an http(s) URL with a host."""
    return normalise_link(href, base) if href else None


# An HTML comment as HTML5 (a browser) reads it: "<!-->" and "<!--->" are empty comments,
# and a comment ends at the first "-->" or "--!>" ("-- >" does not end it). Unterminated, it
# runs to the end of the text.
_COMMENT = r"<!--(?:-?>|.*?--!?>)"
_CLOSED_COMMENT = re.compile(_COMMENT, re.S)


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment, minus <script>/<style>, with block breaks.

    Comments, ``<!...>`` and ``<?...>`` end where a browser ends them (html.parser in Python
    3.11 differs: it ends a comment at "-- >", shows an unterminated one as text and raises
    AssertionError on ``<![x[`` or ``<![ ``); unterminated, they hide the rest of the text."""

    _SKIP = frozenset({"script", "style"})
    _BLOCK = frozenset({"br", "p", "div", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3",
                        "h4", "h5", "h6", "blockquote", "pre", "hr", "section", "article",
                        "figure", "figcaption", "table", "dd", "dt", "img"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.size = 0
        self._skipping = 0
        self._closing = False

    def close(self) -> None:
        self._closing = True  # the text ends here: an unterminated comment runs to the end
        super().close()

    def _to_end(self) -> int:
        return len(self.rawdata) if self._closing else -1  # -1: wait for more text

    def parse_comment(self, i: int, report: int = 1) -> int:
        m = _CLOSED_COMMENT.match(self.rawdata, i)
        return m.end() if m else self._to_end()

    def parse_html_declaration(self, i: int) -> int:
        if self.rawdata.startswith("<!--", i):
            return self.parse_comment(i)
        # <!DOCTYPE ...>, <![CDATA[...]>, <!x>: a "bogus comment" up to the first ">"
        end = self.rawdata.find(">", i + 2)
        return end + 1 if end >= 0 else self._to_end()

    def parse_pi(self, i: int) -> int:
        end = self.rawdata.find(">", i + 2)  # <?x ...>: a bogus comment too
        return end + 1 if end >= 0 else self._to_end()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)
            self.size += len(" ".join(data.split()))  # a lower bound of the final length


# Markup that _TextExtractor reads in exactly one way, one token at a time: a comment (as
# HTML5 ends it, or to the end), a "<!...>" or "<?...>" (to the first ">", or the end), a
# <script>/<style> element (its text is never read; up to the close, or the end), an end tag
# "</name>", a start tag with well-formed attributes (ASCII whitespace between them, quoted
# values or plain ASCII bare values). Any other "<" is a stray: html.parser.
_WS = "[ \t\n\r\f]"
_NAME = "[a-zA-Z][-a-zA-Z0-9_:.]*"
_ATTRS = (rf"(?:{_WS}+[a-zA-Z_:][-a-zA-Z0-9_:.]*"
          rf"(?:{_WS}*={_WS}*(?:\"[^\"]*\"|'[^']*'|[!#-&(-;?-_a-~]+))?)*{_WS}*")
_HTML_TOKEN = re.compile(
    rf"{_COMMENT}|<!--.*\Z"
    r"|<[!?][^>]*(?:>|\Z)"
    rf"|<(?i:script){_ATTRS}>.*?(?:</\s*(?i:script)\s*>|\Z)"
    rf"|<(?i:style){_ATTRS}>.*?(?:</\s*(?i:style)\s*>|\Z)"
    rf"|</({_NAME}){_WS}*>"
    rf"|<({_NAME}){_ATTRS}/?>"
    r"|(<)", re.S)
_JOIN = "\x01"  # where a tag stood between two texts: kept apart for unescape, then removed
_STRAY = 3


class _Stray(Exception):
    pass


def _token_text(m: re.Match[str]) -> str:
    group = m.lastindex
    if group is None:  # comment, script, style
        return _JOIN
    if group == _STRAY:
        raise _Stray
    return " " if m.group(group).lower() in _TextExtractor._BLOCK else _JOIN


def _html_to_text_fast(markup: str, limit: int | None) -> str | None:
    """:func:`_html_to_text` for markup made only of :data:`_HTML_TOKEN` tokens and text:
    the same text as html.parser gives, without its per-tag Python calls; None for anything
    else.

    With a ``limit``, it reads a prefix cut before a "<" (so the prefix's text is a prefix
    of the whole text), longer each time, until it has more than ``limit`` characters."""
    if _JOIN in markup:
        return None
    size = len(markup) if limit is None else 4 * limit + 256
    while True:
        cut = len(markup) if size >= len(markup) else markup.rfind("<", 0, size)
        if cut <= 0:
            cut = len(markup)
        try:
            text = _HTML_TOKEN.sub(_token_text, markup[:cut])
        except _Stray:
            return None
        if "&" in text:
            text = html.unescape(text)
        text = " ".join(text.replace(_JOIN, "").split())
        if cut == len(markup) or (limit is not None and len(text) > limit):
            return text
        # as much again as the text so far says it takes to reach the limit, and a quarter
        size = max(2 * size, cut * (limit or 0) // max(len(text), 1) * 5 // 4)


def _html_to_text(markup: str, limit: int | None) -> str:
    fast = _html_to_text_fast(markup, limit)
    return fast if fast is not None else _html_to_text_parser(markup, limit)


def _html_to_text_parser(markup: str, limit: int | None) -> str:
    parser = _TextExtractor()
    step = 4096
    for start in range(0, len(markup), step):  # stop early once there is enough text
        parser.feed(markup[start:start + step])
        if limit is not None and parser.size > limit:
            break
    else:
        parser.close()
    return " ".join("".join(parser.parts).split())


def _plain(value: str | None) -> str:
    if not value:
        return ""
    if "&" in value:
        value = html.unescape(value)
    return " ".join(value.split())


def plain_text(value: str | None, kind: str | None, limit: int | None = None) -> str:
    """Plain text of a value of content type ``kind``, shortened to ``limit``. Shared with
    :mod:`bot.blogdb`.

    * html/xhtml: the text a browser shows (tags and comments dropped, entities decoded);
    * plain text (``text/plain``, as feedparser reports it): as it is, whitespace collapsed.
      Its entities were decoded once already, by the XML parser (feedparser's value is that
      text): an Atom
      ``<title type="text">AT&amp;amp;T</title>`` reads "AT&amp;T", as in a feed reader;
    * unknown (None) or anything else: entities decoded, tags kept.
    """
    if not value:
        return ""
    if kind is not None and "html" in kind:
        text = _html_to_text(value, limit) if "<" in value else _plain(value)
    elif kind in _PLAIN_TYPES:
        text = " ".join(value.split())
    else:
        text = _plain(value)
    return shorten(text, limit) if limit else text


def untitled(text: str) -> str:
    """The title of an entry that has none: the first words of its text (every source)."""
    return shorten(text, TITLE_MAX_CHARS, TITLE_MAX_WORDS)


def shorten(text: str, max_chars: int, max_words: int | None = None) -> str:
    """At most ``max_words`` words and ``max_chars`` characters, cut on a word boundary when
    there is one, ending in "…" when anything was cut. ``text`` is whitespace-collapsed."""
    out, cut = text, False
    if max_words is not None:
        words = text.split(" ", max_words)
        if len(words) > max_words:
            out, cut = " ".join(words[:max_words]), True
    if len(out) > max_chars:
        window = out[:max_chars]
        space = window.rfind(" ")
        out, cut = (window[:space] if space > 0 else window[:max_chars - 1]), True
    return out.rstrip(" ,;:.-–—") + "…" if cut else out


def _struct_date(value: Any) -> datetime | None:
    """feedparser's *_parsed (a UTC struct_time) as an aware datetime."""
    if not value:
        return None
    try:
        year, month, day, hour, minute, second = (int(v) for v in value[:6])
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _slash_date(raw: str) -> datetime | None:
    m = _SLASH_DATE.fullmatch(raw) if "/" in raw else None
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g or 0) for g in m.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def _iso_date(raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        return _rfc822_date(raw)
    return utc(value)


def _rfc822_date(raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return utc(value)
