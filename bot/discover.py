"""Feed autodiscovery: the feeds an HTML page advertises, and which one to follow (pure, no I/O).

A blog's home page names its feeds in its ``<head>``::

    <link rel="alternate" type="application/rss+xml" title="Blog » Feed" href="/feed/">

:func:`find_feed_links` reads them from the page's bytes as feed readers do, and
:func:`choose` picks the one to subscribe to. :func:`looks_like_html` says whether a body
is a web page rather than a feed, so the caller knows when to look for links.

What counts as a feed link (what NetNewsWire, Miniflux and SimplePie/FreshRSS agree on):

* a ``<link>`` element (not ``<a>``: the readers above, bar SimplePie, read only ``<link>``)
  whose ``rel`` tokens (space-separated, any case) include ``alternate`` but not
  ``stylesheet``, with a ``type`` (any case, parameters ignored) of

  - ``application/rss+xml`` (kind ``"rss"``), ``application/atom+xml`` (``"atom"``),
    or ``application/feed+json`` (``"json"``, JSON Feed 1.1);
  - ``application/json`` (``"json"``, what JSON Feed 1.0 told sites to write) only when the
    link looks like a feed: "feed" in its title or its URL, or a path ending in ``.json``.
    WordPress marks its REST API resource ``rel="alternate" type="application/json"``
    (``/wp-json/...``, ``?rest_route=...``): never a feed. ``application/json+oembed``,
    ``application/activity+json`` (Mastodon) and the like are other things;
  - not ``application/rdf+xml``: with ``rel="alternate"`` it is as often linked data
    (DBpedia, FOAF) as RSS 1.0, and none of the readers above follow it. RSS 1.0 sites
    (Movable Type's ``index.rdf``) advertise it as ``application/rss+xml`` anyway;

* a ``<link rel="feed">`` (HTML's own keyword for a syndication feed), with no ``type`` (kind
  ``""``) or one of the types above (``application/rdf+xml`` included, kind ``"rdf"``); not a
  ``text/html`` one, which IndieWeb sites use for an h-feed page this bot cannot read.

``href`` is resolved against the page's first ``<base href>`` (itself resolved against the
page URL, as browsers do) or the page URL, and normalised by :func:`bot.links.normalise_link`
(absolute http(s), punycode host, percent-encoded IRI). A ``feed:`` URL becomes the http(s)
URL it wraps; any other scheme, an empty ``href`` and a link back to the page itself are
dropped. Links are listed in document order, each URL once (its first link gives the title).

Robustness: only the first :data:`MAX_PAGE_BYTES` of the page are read; the text is decoded
as a browser would (BOM, then the Content-Type charset, then ``<meta charset>``, else UTF-8
falling back to windows-1252; undecodable bytes replaced); links outside ``<head>``, tags and
attributes in any case, ``&amp;`` in attributes, unquoted values, self-closing or not, all
work. Links inside comments, ``<script>`` and ``<style>`` are not links.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.htmltext import BrowserHTMLParser
from bot.links import normalise_link

__all__ = ["MAX_PAGE_BYTES", "FeedLink", "choose", "find_feed_links", "looks_like_html"]

MAX_PAGE_BYTES = 512 * 1024
"""Only this much of a page is read: feed links are in the ``<head>``, near the top."""

_ALTERNATE_TYPES = {
    "application/rss+xml": "rss",
    "application/atom+xml": "atom",
    "application/feed+json": "json",
    "application/json": "json",  # only when the link looks like a feed: _looks_like_feed()
}
_FEED_TYPES = {**_ALTERNATE_TYPES, "application/rdf+xml": "rdf"}  # for rel="feed"
_ASCII_WS = " \t\n\f\r"
_FEEDISH = re.compile(r"feed", re.I)
_WP_REST = re.compile(r"/wp-json(?:/|$)|(?:^|&)rest_route=", re.I)
_COMMENTS_URL = re.compile(r"(?<![a-z])comments?(?![a-z])", re.I)
# "Comments Feed" as WordPress writes it in English and French, German and the Scandinavian
# languages, Spanish, Portuguese, Italian, Dutch, Polish, Czech, Russian, Japanese, Chinese.
_COMMENTS_TITLE = re.compile(
    r"comment|komment|comentario|comentário|commenti|reacties|komentarz|komentář"
    r"|комментари|コメント|评论|評論", re.I)


@dataclass(frozen=True, slots=True)
class FeedLink:
    """A feed a page advertises: its absolute URL, its title (may be empty) and its kind:
    ``"rss"``, ``"atom"``, ``"json"`` (JSON Feed), ``"rdf"`` (RSS 1.0) or ``""`` (not said)."""

    url: str
    title: str = ""
    kind: str = ""


def find_feed_links(body: bytes, page_url: str, content_type: str | None = None
                    ) -> list[FeedLink]:
    """The feeds the HTML page ``body`` (fetched from ``page_url``, served with the HTTP header
    ``content_type``) advertises, in document order, each URL once; [] when there is none.

    Never raises on any input (see the module docstring for what counts as a feed link).
    """
    collector = _LinkCollector()
    collector.feed(_decode(body[:MAX_PAGE_BYTES], content_type))
    collector.close()

    page = normalise_link(page_url)
    base = page
    if collector.base is not None:
        base = normalise_link(collector.base, page_url) or page
    page_itself = page.partition("#")[0] if page else None

    links: list[FeedLink] = []
    seen: set[str] = set()
    for attrs in collector.links:
        found = _feed_link(attrs, base)
        if found is None or found.url in seen or found.url.partition("#")[0] == page_itself:
            continue
        seen.add(found.url)
        links.append(found)
    return links


def choose(links: list[FeedLink]) -> FeedLink | None:
    """The feed to subscribe to among those a page advertises, or None when there is none.

    The rule, as feed readers have it: the page's first advertised feed is its main one, so
    take the first, except a comments feed when the page advertises another feed. WordPress
    lists "Blog » Feed", then "Blog » Comments Feed", and on a post "Post Title Comments Feed"
    (``/post/feed/``); a comments feed is one whose title says so (in several languages) or
    whose URL has a "comments" path segment or query word (``/comments/feed/``,
    ``?feed=comments-rss2``). When every link looks like a comments feed (a blog named "Fair
    Comment"), the first is taken. The kind does not matter: the bot reads RSS, Atom, RDF and
    JSON Feed alike, so a Blogger page's first (Atom) feed wins over its RSS one.
    """
    if not links:
        return None
    return next((link for link in links if not _is_comments_feed(link)), links[0])


def looks_like_html(body: bytes, content_type: str | None = None) -> bool:
    """Whether ``body`` is a web page rather than a feed: its start says so (``<!DOCTYPE
    html>``, ``<html``), or it is served as HTML and does not start like a feed (XML, JSON).

    The start wins over the header: a feed served as ``text/html`` is still a feed.
    """
    head = body[:1024].lstrip().removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if head.startswith(b"<!doctype html") or b"<html" in head:
        return True
    if head.startswith((b"<?xml", b"<rss", b"<feed", b"<rdf:rdf", b"{")):
        return False
    mime = (content_type or "").partition(";")[0].strip(_ASCII_WS).lower()
    return mime in ("text/html", "application/xhtml+xml")


# --------------------------------------------------------------------------- links

def _feed_link(attrs: dict[str, str], base: str | None) -> FeedLink | None:
    rel = set(attrs.get("rel", "").lower().split())
    mime = attrs.get("type", "").partition(";")[0].strip(_ASCII_WS).lower()
    title = " ".join(attrs.get("title", "").split())
    href = attrs.get("href", "").strip(_ASCII_WS)
    if not href or "stylesheet" in rel:
        return None
    if "feed" in rel and (not mime or mime in _FEED_TYPES):
        kind = _FEED_TYPES.get(mime, "")
    elif "alternate" in rel and mime in _ALTERNATE_TYPES:
        kind = _ALTERNATE_TYPES[mime]
    else:
        return None
    url = normalise_link(_unwrap_feed_scheme(href), base)
    if url is None:
        return None
    if mime == "application/json" and not _looks_like_feed(url, title):
        return None
    return FeedLink(url=url, title=title, kind=kind)


def _unwrap_feed_scheme(href: str) -> str:
    """``feed://host/x`` is ``http://host/x``; ``feed:https://host/x`` is ``https://host/x``
    (the old "feed" URI scheme browsers used to hand URLs to a feed reader)."""
    if href[:5].lower() != "feed:":
        return href
    rest = href[5:]
    if rest.startswith("//"):
        return "http:" + rest
    return rest


def _looks_like_feed(url: str, title: str) -> bool:
    parts = urlsplit(url)
    if _WP_REST.search(parts.path) or _WP_REST.search(parts.query):
        return False
    return bool(_FEEDISH.search(title) or _FEEDISH.search(parts.path + "?" + parts.query)
                or parts.path.lower().endswith(".json"))


def _is_comments_feed(link: FeedLink) -> bool:
    parts = urlsplit(link.url)
    return bool(_COMMENTS_TITLE.search(link.title)
                or _COMMENTS_URL.search(parts.path) or _COMMENTS_URL.search(parts.query))


# --------------------------------------------------------------------------- decoding

_META_CHARSET = re.compile(rb"<meta\b[^>]*?\bcharset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.I)
_HEADER_CHARSET = re.compile(r";\s*charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.I)
_WINDOWS_1252 = {"iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "iso-ir-100", "cp819",
                 "ibm819", "us-ascii", "ascii", "ansi_x3.4-1968", "windows-1252", "cp1252"}
# Codecs Python has that no web page is in (WHATWG's Encoding Standard knows none of them).
_NOT_WEB = {"idna", "punycode", "unicode-escape", "raw-unicode-escape", "utf-7", "undefined",
            "mbcs", "oem", "palmos"}


def _encoding(label: str | None) -> str | None:
    """The Python codec for a charset label, as browsers map it, or None when unknown."""
    if not label:
        return None
    label = label.strip().lower()
    if label in _WINDOWS_1252:  # WHATWG: these labels all mean windows-1252
        return "cp1252"
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name.replace("_", "-") in _NOT_WEB:
        return None
    return info.name


def _decode(body: bytes, content_type: str | None) -> str:
    """The page's text, decoded as a browser would; bytes that do not decode are replaced."""
    for bom, bom_codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"),
                           (b"\xfe\xff", "utf-16-be")):
        if body.startswith(bom):
            return body[len(bom):].decode(bom_codec, "replace")
    header = _HEADER_CHARSET.search(content_type or "")
    codec = _encoding(header.group(1)) if header else None
    if codec is None:
        meta = _META_CHARSET.search(body[:4096])
        codec = _encoding(meta.group(1).decode("ascii")) if meta else None
        if codec is not None and codec.startswith(("utf-16", "utf-32", "utf_16", "utf_32")):
            codec = "utf-8"  # a page whose <meta> we could read in ASCII is not UTF-16
    if codec is not None:
        return body.decode(codec, "replace")
    try:  # no charset said: UTF-8 when it is (a character cut at the end is fine), else 1252
        text = codecs.getincrementaldecoder("utf-8")("strict").decode(body, final=False)
    except UnicodeDecodeError:
        return body.decode("cp1252", "replace")
    return text + ("\ufffd" if len(text.encode("utf-8")) < len(body) else "")


# --------------------------------------------------------------------------- parsing

class _LinkCollector(BrowserHTMLParser):
    """The attributes of every ``<link>`` and the first ``<base href>``, anywhere in the page
    (not inside comments, which end where a browser ends them)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str]] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("link", "base"):
            return
        values: dict[str, str] = {}
        for name, value in attrs:  # a repeated attribute: the first one counts, as in HTML
            values.setdefault(name, value or "")
        if tag == "link":
            self.links.append(values)
        elif self.base is None and "href" in values:
            self.base = values["href"]
