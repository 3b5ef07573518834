"""The fast path of :func:`bot.parse.parse_feed` for well-formed XML feeds.

feedparser reads XML through ``xml.sax``: one Python call per element and per text chunk,
and most of its work (sanitizing, relative URIs, dozens of fields) is thrown away by the bot.
This reader uses the C ElementTree parser (expat, as feedparser's strict mode does, stdlib:
no new dependency) and builds the *same* feedparser-shaped dictionary for the few keys that
``bot.parse._xml_entry`` reads, then reuses the bot's own code for everything after that:
so the entries are identical by construction, wherever the fast path answers at all.

It answers only for documents it can read exactly like feedparser's strict parser does:
well-formed UTF-8 (or ASCII) RSS 2.0/0.9x, RSS 1.0 (RDF) and Atom 1.0, no DOCTYPE, no
element it does not know to be harmless for those keys. For anything else it returns None
and the caller uses feedparser: so an odd feed is never read differently, only more slowly.
The entry's picture (``bot.parse._xml_image``) comes from the same dictionary: the
``media_thumbnail`` and ``media_content`` lists, the enclosures among ``links``, ``image``
(itunes:image) and the ``base`` of the text values, all built here as feedparser builds them.
tests/test_fastpaths.py (and ``python -m bench.fastxml_check``) hold the two paths to equal
results on every corpus file and on mutated copies of the feeds read here. The feedparser
internals this module calls or mirrors all come from :mod:`bot.feedparser_compat`, which
records the feedparser version and handlers it was checked against.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from feedparser import FeedParserDict

from bot.feedparser_compat import (
    CP1252,
    NAMESPACES,
    convert_to_utf8,
    handler_keys,
    looks_like_html,
    make_safe_absolute_uri,
    map_content_type,
    parse_date,
    urljoin,
)

ATOM = "http://www.w3.org/2005/Atom"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RSS10 = "http://purl.org/rss/1.0/"
RSS090 = "http://my.netscape.com/rdf/simple/0.9/"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XML_BASE = f"{{{XML_NS}}}base"

# feedparser's namespace URI -> standard prefix ('' for the core formats)
_MATCH = {k.lower(): v for k, v in NAMESPACES.items()}
_XMLNS = re.compile(rb"""xmlns(?::([A-Za-z_][\w.-]*))?\s*=\s*["']([^"']*)["']""")
_C1 = re.compile("[\x80-\x9f]")
_XML_DECL_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([\w.:-]+)""")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_HTML_TYPES = {"application/xhtml+xml", "text/html"}
_HANDLED = handler_keys()  # elements feedparser has a _start_ or _end_ handler for
# handlers that touch none of the keys the bot reads (title, summary_detail, content, dates,
# author, tags, id, links, link, guidislink), by reading them in the feedparser recorded in
# bot.feedparser_compat (CHECKED_HANDLERS); except, inside an entry, the _IMAGES ones
_HARMLESS_HANDLERS = frozenset({
    "enclosure", "comments", "itunes_image", "itunes_link", "itunes_duration",
    "itunes_explicit", "itunes_subtitle", "itunes_block", "media_content",
    "media_thumbnail", "media_player", "media_rating", "media_credit", "media_restriction",
    "media_license", "media_group", "slash_comments", "wfw_commentrss", "wfw_comment",
    "dc_publisher", "dc_language", "dc_rights", "language", "rights", "copyright", "subtitle",
    "thr_total", "feedburner_origlink", "georss_point", "cc_license", "creativecommons_license",
    "generator", "cloud", "ttl", "docs", "webmaster", "managingeditor", "expirationdate",
    "width", "height", "url", "icon", "logo", "psc_chapters", "psc_chapter",
})
# keys feedparser's dict maps onto the ones we read (FeedParserDict.keymap, special keys)
_ALIASED = frozenset({"guid", "date", "description", "modified", "issued", "category",
                      "categories", "tags", "links", "link", "summary", "content", "title",
                      "id", "author", "authors", "published", "updated", "guidislink",
                      "enclosures", "license", "source", "entries", "items", "channel"})

_TITLES = frozenset({"title", "dc_title", "media_title"})
# inside an entry, elements whose handlers store what bot.parse._xml_image reads:
# media_thumbnail / media_content (lists of attributes), links (enclosures), image
# (itunes:image, and itunes:link: feedparser's _start_itunes_link is _start_itunes_image)
_IMAGES = frozenset({"media_thumbnail", "media_content", "enclosure", "itunes_image",
                     "itunes_link"})
_READ_ATTRS = frozenset({"href", "url", "uri", "rel", "type", "term", "scheme", "domain",
                         "label", "ispermalink", "src", "mode", "base", "about", "medium"})
# harmless handlers that push content (push_content): an element inside is markup of
# their text (feedparser switches them to xhtml), never a title, link or anything else
_CONTENT_HANDLERS = frozenset({"subtitle", "tagline", "rights", "copyright", "dc_rights",
                               "itunes_subtitle", "info", "feedburner_browserfriendly"})
# feed-level elements whose handlers may set the feed's title or link, or change context
_FEED_DANGER = frozenset({"title", "dc_title", "media_title", "link", "id", "guid", "item",
                          "entry", "source", "image", "textinput", "channel", "feed", "rss",
                          "rdf", "content", "fullitem", "itunes_link"})


class Unsupported(Exception):
    """Not something the fast path reads exactly like feedparser: use feedparser."""


def parse(body: bytes, content_type: str | None) -> dict[str, Any] | None:
    """A feedparser-like result ``{"version", "feed", "entries"}`` or None (use feedparser)."""
    try:
        return _Reader(body, content_type).read()
    except (Unsupported, ET.ParseError):
        return None


def _value(text: str | None, *, resolve: str | None = None) -> str:
    """What feedparser's ``pop()`` makes of an element's text (strict parser, utf-8)."""
    out = (text or "").strip()
    if resolve is not None and out:
        out = urljoin(resolve, out)
    if not out.isascii():  # (both steps leave ASCII alone)
        try:  # feedparser's repair of UTF-8 read as ISO-8859-1
            out = out.encode("iso-8859-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
        if _C1.search(out):  # str.translate is slow: only when there is something to map
            out = out.translate(CP1252)
    return out


_UTF8 = ("utf-8", "utf8")
_ASCII_SUPERSETS = ("us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1")


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _Reader:
    def __init__(self, body: bytes, content_type: str | None) -> None:
        self.body = body
        self.content_type = content_type
        self.prefixes: dict[str, str] = {}
        self.declared: list[str] = []  # namespace URIs in document order
        self.version = ""
        self._start: dict[ET.Element, str] | None = None
        self._title_depth = -1
        self._title_map: int | None = None
        self._end: dict[ET.Element, str] | None = None

    # -- preconditions -------------------------------------------------------------------

    def _check_bytes(self) -> None:
        body = self.body
        if body.startswith(b"\xef\xbb\xbf"):
            body = body[3:]
        head = body.lstrip()[:512]
        if not head.startswith(b"<") or head.startswith((b"\x00", b"<\x00")):
            raise Unsupported("not plain XML")
        if b"<!DOCTYPE" in self.body or b"<!doctype" in self.body:
            raise Unsupported("DTD")
        if b" base=" in self.body:
            raise Unsupported("a base attribute without the xml: prefix")
        m = _XML_DECL_ENCODING.match(head)
        declared = m.group(1).decode("ascii").lower() if m else None
        mime, _, params = (self.content_type or "application/xml").partition(";")
        charset = _CHARSET.search(params)
        http = charset.group(1).lower() if charset else None
        if self.body.isascii():  # read the same in any encoding it may declare
            as_is = declared in (None, *_UTF8, *_ASCII_SUPERSETS)
        else:
            as_is = (declared in (None, *_UTF8) and http in (None, *_UTF8)
                     and not (http is None and mime.strip().lower().startswith("text/"))
                     and _is_utf8(self.body))
        if not as_is:
            # Not read as UTF-8 as it is: feedparser first converts it to UTF-8 (its own
            # choice of encoding, declaration rewritten), then reads that. So does this.
            result: dict[str, Any] = {}
            self.body = convert_to_utf8({"content-type": self.content_type or ""},
                                        self.body, result)
            if not result.get("encoding"):
                raise Unsupported("no encoding feedparser can read (its loose parser)")
        for prefix, uri in _XMLNS.findall(self.body):
            p, u = prefix.decode("ascii").lower(), uri.decode("utf-8", "replace")
            self.declared.append(u)
            if u.lower() in _MATCH:
                continue
            if self.prefixes.get(u, p) != p:
                raise Unsupported("one namespace under two prefixes")
            self.prefixes[u] = p

    def key(self, tag: str) -> str:
        """feedparser's handler name for an element: ``prefix_local`` (lowercased)."""
        if tag[0] != "{":
            return tag.lower()
        uri, local = tag[1:].split("}", 1)
        lower = uri.lower()
        if "backend.userland.com/rss" in lower:
            lower = "http://backend.userland.com/rss"
        prefix = _MATCH.get(lower)
        if prefix is None:
            prefix = self.prefixes.get(uri)
            if prefix is None:
                raise Unsupported(f"namespace {uri} without a prefix")
        return f"{prefix}_{local}".lower() if prefix else local.lower()

    # -- the document --------------------------------------------------------------------

    def read(self) -> dict[str, Any]:
        self._check_bytes()
        root = ET.fromstring(self.body)
        if b"xml:base" in self.body:
            self._walk_bases(root)
        if root.tag == "rss":
            self.version = self._declared_version(root)
            if not self.version.startswith("rss"):
                self.version = "rss20" if root.get("version", "").startswith("2.") else "rss"
            channels = [c for c in root if c.tag == "channel"]
            if len(channels) != 1 or len(root) != 1:
                raise Unsupported("rss without exactly one channel")
            channel = channels[0]
            if channel.attrib:
                raise Unsupported("attributes on the channel")
            items = [c for c in channel if c.tag == "item"]
            feed = self._feed(channel, items_inside=True)
        elif root.tag == f"{{{RDF}}}RDF":
            ns = RSS10 if f"{{{RSS10}}}channel" in {c.tag for c in root} else RSS090
            self.version = self._declared_version(None)
            if self.version != ("rss10" if ns == RSS10 else "rss090"):
                raise Unsupported("RDF whose version feedparser would see otherwise")
            channels = [c for c in root if c.tag == f"{{{ns}}}channel"]
            items = [c for c in root if c.tag == f"{{{ns}}}item"]
            if len(channels) != 1:
                raise Unsupported("RDF without exactly one channel")
            for c in root:
                if c.tag not in (f"{{{ns}}}channel", f"{{{ns}}}item"):
                    if self.key(c.tag) in ("image", "textinput"):
                        continue  # their title and link go to feed.image / feed.textinput
                    if self.key(c.tag) in _FEED_DANGER:
                        raise Unsupported(f"RDF: element {self.key(c.tag)}")
                    self._feed_harmless(c)
            first_item = next((i for i, c in enumerate(root) if c in items), len(root))
            if list(root).index(channels[0]) > first_item:
                raise Unsupported("channel after items")
            feed = self._feed(channels[0], items_inside=False)
        elif root.tag == f"{{{ATOM}}}feed":
            self.version = self._declared_version(root) or "atom"
            items = [c for c in root if c.tag == f"{{{ATOM}}}entry"]
            feed = self._feed(root, items_inside=True)
        else:
            raise Unsupported(f"root element {root.tag}")
        entries = [self._entry(item) for item in items]
        return {"version": self.version, "feed": feed, "entries": entries}

    def _declared_version(self, root: ET.Element | None) -> str:
        """feedparser's ``track_namespace``: the first namespace declaration that names a
        format sets the version (only those on the root element count when a root handler
        runs; for RDF, any declaration in the document)."""
        if root is not None:
            end = self.body.find(b">", self.body.find(b"<" + root.tag.split("}")[-1].encode()))
            head = self.body[:end]
            uris = [u.decode("utf-8", "replace") for _, u in _XMLNS.findall(head)]
            defaults = [u.decode("utf-8", "replace") for p, u in _XMLNS.findall(head) if not p]
        else:
            uris = self.declared
            defaults = [u.decode("utf-8", "replace") for p, u in _XMLNS.findall(self.body)
                        if not p]
        for uri in uris:
            low = uri.lower()
            if low == "http://my.netscape.com/rdf/simple/0.9/" and uri in defaults:
                return "rss090"
            if low == "http://purl.org/rss/1.0/":
                return "rss10"
            if low == "http://www.w3.org/2005/atom":
                return "atom10"
        return ""

    def _walk_bases(self, root: ET.Element) -> None:
        """feedparser's xml:base bookkeeping, replayed in document order: an element's base
        is sticky (a base set inside one element leaks to the following ones until an
        element with a non-empty base of its own ends), so the base an element's value is
        resolved against depends on everything before it."""
        start: dict[ET.Element, str] = {}
        end: dict[ET.Element, str] = {}
        stack: list[str] = []
        base = ""

        def walk(el: ET.Element) -> None:
            nonlocal base
            new = el.get(XML_BASE) or base
            base = (make_safe_absolute_uri(base, new) or base) if base else urljoin(base, new)
            stack.append(base)
            start[el] = base
            for child in el:
                walk(child)
            end[el] = base
            stack.pop()
            if stack and stack[-1]:
                base = stack[-1]

        walk(root)
        self._start, self._end = start, end

    def sb(self, el: ET.Element) -> str:
        """The base when the element starts (``_start_link`` resolves hrefs then)."""
        return self._start.get(el, "") if self._start is not None else ""

    def eb(self, el: ET.Element) -> str:
        """The base when the element ends (``pop()`` resolves text values then)."""
        return self._end.get(el, "") if self._end is not None else ""

    def _feed(self, el: ET.Element, *, items_inside: bool) -> dict[str, Any]:
        feed: dict[str, Any] = {}
        seen_item = False
        self._title_depth = -1
        item_key = "entry" if self.version == "atom10" else "item"
        for child in el:
            key = self.key(child.tag)
            if key == item_key and items_inside:
                seen_item = True
                continue
            if key in _TITLES:
                if seen_item:
                    raise Unsupported("a feed title after the items")
                self._feed_title(feed, child, key, 1)
            elif key == "link":
                link = self._link(child, feed_level=True)
                if link is not None:
                    feed["link"] = link
            elif key in ("id", "guid"):
                if len(child):
                    raise Unsupported("markup in the feed id")
                if child.get("isPermaLink", child.get("ispermalink", "true")) == "true":
                    # feedparser's _end_guid: _save('link', id) -- only if no link yet
                    feed.setdefault("link", _value(child.text, resolve=self.eb(child)))
            elif key in ("image", "textinput"):
                # their title and link go to feed.image / feed.textinput; _start_image and
                # _start_textinput reset title_depth, a title inside sets it again
                self._title_depth = -1
                self._image_titles(child, 2)
            elif key in _FEED_DANGER:
                raise Unsupported(f"feed: element {key}")
            elif seen_item:
                self._feed_harmless(child)
            else:
                self._feed_nested(feed, child, key, 2)
        return feed

    def _feed_title(self, feed: dict[str, Any], el: ET.Element, key: str, depth: int) -> None:
        """A feed-level title, dc:title or media:title ``depth`` below the channel: like
        ``pop('title')`` with feedparser's ``title_depth`` (no depth map at feed level)."""
        kind, value = self._title_value(el)
        if not -1 < self._title_depth <= depth:
            feed["title"], feed["title_detail"] = value, {"type": kind}
        if value and key != "media_title":  # _end_media_title restores title_depth
            self._title_depth = depth

    def _feed_nested(self, feed: dict[str, Any], el: ET.Element, key: str, depth: int) -> None:
        """Children of a harmless feed element: titles count (by depth), nothing else may."""
        if key in _CONTENT_HANDLERS or (key in _HANDLED and key not in _HARMLESS_HANDLERS) \
                or key in _ALIASED:
            # a handler may make its children markup of its text (<description><title>:
            # no feed title at all in feedparser): any title inside is for feedparser
            self._feed_harmless(el)
            return
        for child in el:
            child_key = self.key(child.tag)
            if child_key in _TITLES:
                self._feed_title(feed, child, child_key, depth)
            elif child_key in _FEED_DANGER:
                raise Unsupported(f"feed: {child_key} inside {key}")
            else:
                self._feed_nested(feed, child, child_key, depth + 1)

    def _image_titles(self, el: ET.Element, depth: int) -> None:
        """The title_depth a feed image or textinput leaves behind (its titles are its own)."""
        for child in el:
            key = self.key(child.tag)
            if key in _TITLES:
                if len(child):
                    raise Unsupported("markup in an image title")
                if key != "media_title" and _value(child.text):
                    self._title_depth = depth
            elif key in _FEED_DANGER and key != "link":
                raise Unsupported(f"feed: {key} inside an image")
            else:
                self._image_titles(child, depth + 1)

    def _type(self, el: ET.Element, default: str) -> str:
        kind = map_content_type(el.get("type", default).lower())
        if kind in ("application/xhtml+xml",) or el.get("mode") == "base64":
            raise Unsupported("xhtml or base64 content")
        if not (kind.startswith("text/") or kind.endswith(("+xml", "/xml"))):
            raise Unsupported(f"base64 content of type {kind}")
        return kind

    def _link(self, el: ET.Element, *, feed_level: bool,
              entry: dict[str, Any] | None = None) -> str | None:
        """Handle a link element like ``_start_link``/``pop('link')``; returns the feed's
        new ``link`` (feed level) or None."""
        attrs = self._attrs(el)
        attrs.setdefault("rel", "alternate")
        attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self"
                         else "text/html")
        _enforce_href(attrs)  # then resolve_uri (even of an empty href)
        if "href" in attrs:
            attrs["href"] = urljoin(self.sb(el), attrs["href"])
        if len(el):
            raise Unsupported("elements inside a link")
        links = entry.setdefault("links", []) if entry is not None else None
        if links is not None:
            links.append(attrs)
        if "href" in attrs:
            html = attrs["rel"] == "alternate" and map_content_type(attrs["type"]) in _HTML_TYPES
            if html:
                if entry is not None:
                    entry["link"] = attrs["href"]
                return attrs["href"]
            return None
        output = _value(el.text, resolve=self.eb(el))
        if entry is not None:
            output = output.replace("&amp;", "&")
            output = re.sub("&([A-Za-z0-9_]+);", r"&\g<1>", output)
            entry["link"] = output
            if output:
                attrs["href"] = output
            return None
        return re.sub("&([A-Za-z0-9_]+);", r"&\g<1>", output)

    def _feed_harmless(self, el: ET.Element) -> None:
        """Fail if an element below the feed could change the feed's title or link."""
        for child in el:
            if self.key(child.tag) in _FEED_DANGER:
                raise Unsupported(f"feed: {self.key(child.tag)} inside {self.key(el.tag)}")
            self._feed_harmless(child)

    def _harmless(self, el: ET.Element, *, where: str) -> None:
        """Fail unless feedparser would store this element where the bot never looks."""
        key = self.key(el.tag)
        if key in _HANDLED and key not in _HARMLESS_HANDLERS:
            raise Unsupported(f"{where}: element {key} has a handler")
        if key in _IMAGES:  # (in an author, inside text): not worth mirroring
            raise Unsupported(f"{where}: element {key} may give the entry's image")
        if key in _ALIASED:
            raise Unsupported(f"{where}: element {key} maps onto a key the bot reads")
        for child in el:
            self._harmless(child, where=where)

    # -- one entry ------------------------------------------------------------------------

    def _entry(self, item: ET.Element) -> dict[str, Any]:
        e: dict[str, Any] = {}
        about = item.get(f"{{{RDF}}}about")
        if about:
            e["id"] = about
        if any(k != f"{{{RDF}}}about" and k != XML_BASE for k in item.attrib):
            raise Unsupported("attributes on an item")
        self._title_depth = -1  # feedparser's title_depth and property_depth_map["title"]
        self._title_map = None
        summaries = 0
        has_content = False
        text_authors: list[str] = []
        atom_authors: list[tuple[str | None, str | None]] = []
        tags: list[dict[str, str | None]] = []
        atom = self.version.startswith("atom")
        for child in item:
            key = self.key(child.tag)
            if key == "link":
                self._link(child, feed_level=False, entry=e)
                continue
            if key in ("author", "dc_creator", "dc_author", "itunes_author"):
                if len(child):
                    atom_authors.append(self._atom_author(child))
                else:
                    text_authors.append(_value(child.text))
                continue
            if key == "image" and not len(child):
                self._title_depth = -1  # feedparser's _start_image resets the title depth
                continue
            if key in _IMAGES:
                self._image(e, child, key)
                if len(child):
                    self._nested(e, child, key, 2)
                continue
            if key in _TITLES:
                self._title(e, child, key, 1)
                continue
            if len(child):
                if (key in _HANDLED and key not in _HARMLESS_HANDLERS) or key in _ALIASED:
                    raise Unsupported(f"markup inside {key}")
                self._nested(e, child, key, 2)
                continue
            if key in ("description", "summary", "dc_description"):
                summaries += 1
                if summaries > 1 or (key == "summary" and not has_content and "summary" in e):
                    raise Unsupported("two summaries")
                default = "text/html" if key != "summary" else "text/plain"
                kind = self._type(child, default)
                value = _value(child.text)
                if kind == "text/plain" and not atom and looks_like_html(value):
                    kind = "text/html"
                e["summary"] = value
                e["summary_detail"] = {"type": kind, "value": value, "base": self.sb(child)}
            elif key in ("content", "content_encoded", "fullitem"):
                has_content = True
                kind = self._type(child, "text/html" if key != "content" else "text/plain")
                if child.get("src"):
                    raise Unsupported("content with src")
                value = _value(child.text)
                if kind == "text/plain" and not atom and looks_like_html(value):
                    kind = "text/html"
                e.setdefault("content", []).append({"type": kind, "value": value,
                                                    "base": self.sb(child)})
                if kind in ("text/plain", "text/html", "application/xhtml+xml"):
                    e.setdefault("summary", value)
            elif key in ("guid", "id"):
                if "ispermalink" in {k.lower() for k in child.attrib} and \
                        "isPermaLink" not in child.attrib and "ispermalink" not in child.attrib:
                    raise Unsupported("odd isPermaLink")
                guidislink = (child.get("isPermaLink", child.get("ispermalink", "true"))
                              == "true")
                value = _value(child.text, resolve=self.eb(child) if guidislink else None)
                e["id"] = value
                e.setdefault("guidislink", guidislink and "link" not in e)
                if guidislink:
                    e.setdefault("link", value)
            elif key in ("pubdate", "published", "issued", "dcterms_issued"):
                e["published"] = value = _value(child.text)
                e["published_parsed"] = parse_date(value)
            elif key in ("updated", "modified", "dc_date", "dcterms_modified"):
                e["updated"] = value = _value(child.text)
                e["updated_parsed"] = parse_date(value)
            elif key in ("category", "dc_subject"):
                attrs = self._attrs(child)
                self._add_tag(tags, attrs.get("term"), attrs.get("scheme", attrs.get("domain")),
                              attrs.get("label"))
                value = _value(child.text)
                if value:
                    if tags and not tags[-1]["term"]:
                        tags[-1]["term"] = value
                    else:
                        self._add_tag(tags, value, None, None)
            else:
                self._harmless(child, where="entry")
        if text_authors and atom_authors:
            raise Unsupported("two kinds of author")
        if text_authors:
            e["author"] = text_authors[-1]
            for raw in text_authors:
                name, email = _split_author(raw)
                if name or email:
                    e["author_detail"] = {"name": name} if name else {}
                    break
        elif atom_authors:
            # one author_detail for all (_save_author): the last name seen wins; "author"
            # is made from the last author element (_sync_author_detail)
            names = [n for n, _ in atom_authors if n is not None]
            if names:
                e["author_detail"] = {"name": names[-1]}
            last_name, email = atom_authors[-1]
            if last_name and email:
                e["author"] = f"{last_name} ({email})"
            elif last_name or email:
                e["author"] = last_name or email
        if tags:
            e["tags"] = tags
        return e

    def _title_value(self, el: ET.Element) -> tuple[str, str]:
        """(content type, value) of a title element, as ``pop()`` leaves them."""
        if len(el):
            raise Unsupported("markup in a title")
        kind = self._type(el, "text/plain")
        value = _value(el.text)
        if kind == "text/plain" and not self.version.startswith("atom") and \
                looks_like_html(value):
            kind = "text/html"
        return kind, value

    def _title(self, e: dict[str, Any], el: ET.Element, key: str, depth: int) -> None:
        """A title, dc:title or media:title ``depth`` below the item, as feedparser reads it:

        * ``pop()`` ignores it when a non-empty title or dc:title (never a media:title,
          whose ``_end_media_title`` restores ``title_depth``) ended at its depth or above;
        * else the value is stored only at the depth of the stored one or above
          (``property_depth_map``), but ``title_detail`` (the type, and the base: the
          one ``push_content`` saw as the element started) is stored either way.
        """
        kind, value = self._title_value(el)
        if not -1 < self._title_depth <= depth:
            if self._title_map is None or depth <= self._title_map:
                self._title_map = depth
                e["title"] = value
            e["title_detail"] = {"type": kind, "base": self.sb(el)}
        if value and key != "media_title":
            self._title_depth = depth

    def _nested(self, e: dict[str, Any], el: ET.Element, key: str, depth: int) -> None:
        """Children of a harmless item element: titles count (by depth), nothing else may."""
        if key in _CONTENT_HANDLERS:  # its children are markup of its text, never titles
            for child in el:
                self._harmless(child, where=key)
            return
        for child in el:
            child_key = self.key(child.tag)
            if child_key in _TITLES:
                self._title(e, child, child_key, depth)
            elif (child_key in _HANDLED and child_key not in _HARMLESS_HANDLERS) or \
                    child_key in _ALIASED:
                raise Unsupported(f"entry: element {child_key} has a handler")
            else:
                if child_key in _IMAGES:  # media:content in media:group ...
                    self._image(e, child, child_key)
                self._nested(e, child, child_key, depth + 1)

    def _attrs(self, el: ET.Element) -> dict[str, str]:
        """Attribute names as feedparser's strict parser sees them, lowercased. A namespaced
        attribute also appears under its bare name there, so one whose bare name is one we
        read (href, rel, ...) is not for the fast path; the others never matter."""
        out: dict[str, str] = {}
        for k, v in el.attrib.items():
            if k[0] == "{":
                if k.startswith(f"{{{XML_NS}}}"):
                    continue
                if k.split("}", 1)[1].lower() in _READ_ATTRS:
                    raise Unsupported(f"namespaced attribute {k}")
                continue
            k = k.lower()
            out[k] = v.lower() if k in ("rel", "type") else v  # _normalize_attributes
        return out

    def _atom_author(self, el: ET.Element) -> tuple[str | None, str | None]:
        """(last name, last email) of an Atom-style author (elements inside)."""
        name = email = None
        if (el.text or "").strip():
            raise Unsupported("text beside an author's elements")
        for child in el:
            key = self.key(child.tag)
            if len(child):
                raise Unsupported("nested author")
            if key == "name":
                name = (child.text or "").strip()
            elif key == "email":
                email = (child.text or "").strip()
            elif key in ("uri", "url", "homepage"):
                continue
            else:
                self._harmless(child, where="author")
        return name, email

    def _image(self, e: dict[str, Any], el: ET.Element, key: str) -> None:
        """What the handler of an image element (:data:`_IMAGES`) stores in the entry, as it
        starts (and, for a media:thumbnail, as it ends: its text is the url it lacks)."""
        attrs = self._attrs(el)
        if key == "media_thumbnail":
            if len(el):
                raise Unsupported("elements inside a media:thumbnail")  # (its text: the url)
            e.setdefault("media_thumbnail", []).append(attrs)
            if "url" not in attrs:  # _end_media_thumbnail: pop('url'), resolved at the end
                url = _value(el.text, resolve=self.eb(el))
                if url.strip():
                    attrs["url"] = url
        elif key == "media_content":
            e.setdefault("media_content", []).append(attrs)
        elif key == "enclosure":
            _enforce_href(attrs)
            attrs["rel"] = "enclosure"
            e.setdefault("links", []).append(attrs)
        elif attrs.get("href"):  # itunes:image, itunes:link
            e["image"] = {"href": attrs["href"]}
        elif attrs.get("url"):
            e["image"] = {"href": attrs["url"]}

    @staticmethod
    def _add_tag(tags: list[dict[str, str | None]], term: str | None, scheme: str | None,
                 label: str | None) -> None:
        if not term and not scheme and not label:
            return
        value = {"term": term, "scheme": scheme, "label": label}
        if value not in tags:
            tags.append(value)


def _enforce_href(attrs: dict[str, str]) -> None:
    """feedparser's ``_enforce_href``: ``url``, else ``uri``, else ``href`` becomes ``href``."""
    href = attrs.get("url", attrs.get("uri", attrs.get("href")))
    if href:
        attrs.pop("url", None)
        attrs.pop("uri", None)
        attrs["href"] = href


_EMAIL = re.compile(r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|"""
                    r"""(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?""")


def _split_author(author: str) -> tuple[str, str | None]:
    """feedparser's ``_sync_author_detail`` for a text author: (name, email)."""
    email = None
    m = _EMAIL.search(author)
    if m:
        email = m.group(0)
        author = author.replace(email, "").replace("()", "").replace("<>", "")
        author = author.replace("&lt;&gt;", "").strip()
        if author and author[0] == "(":
            author = author[1:]
        if author and author[-1] == ")":
            author = author[:-1]
        author = author.strip()
    return author, email


# --------------------------------------------------------------------------- wiring

def feedparser_result(body: bytes, content_type: str | None) -> Any:
    """A :class:`feedparser.FeedParserDict` for ``bot.parse._parse_xml``, or None (then use
    feedparser). A document without entries goes to feedparser, whose errors the bot reports."""
    d = parse(body, content_type)
    if d is None or not d["entries"]:
        return None
    return FeedParserDict(version=d["version"], feed=d["feed"], entries=d["entries"], bozo=0)
