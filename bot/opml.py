"""Feed lists in bulk: OPML (what feed readers exchange) or a plain text file of URLs.

Pure functions, no database and no network:

- :func:`read_feed_list` turns the bytes of an OPML 1.0/2.0 document or of a text list (one URL
  per line, ``#`` comments, blank lines; commas and spaces also separate, as in ``FEED_URLS``)
  into :class:`FeedListItem` values. Which of the two it is, is decided by the content, never by
  the file name. Duplicate URLs are dropped, the first one kept, order kept.
- :func:`read_feed_list_file` reads a file (at most :data:`MAX_FILE_BYTES`) and does the same.
- :func:`write_opml` writes an OPML 2.0 document that any feed reader imports, and that
  :func:`read_feed_list` reads back to the same items.

OPML as real exporters write it (Feedly, Inoreader, NetNewsWire, Miniflux, FreshRSS,
Thunderbird): feeds are ``<outline>`` elements with an ``xmlUrl`` attribute, nested in folder
outlines (a category; its ``text`` names it). An outline without ``xmlUrl`` is a folder, never
an error. Attribute names are matched without regard to case (``xmlUrl``, ``xmlurl``,
``XMLURL``), as NetNewsWire's importer does: hand-edited and generated files get it wrong.
Namespaced attributes (Thunderbird's ``fz:``, FreshRSS's ``frss:``) are ignored.

XML is parsed with :mod:`defusedxml`: a document that declares entities (the billion laughs)
or refers to external ones is refused, never expanded.

Every problem raises a :class:`FeedListError` (a :class:`~bot.errors.ConfigError`) naming the
source, where (``line 3`` of a text list, ``outline 'Title'`` of an OPML document) and why;
all the bad entries of a list are reported at once (the first :data:`MAX_LISTED_PROBLEMS`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException, EntitiesForbidden, ExternalReferenceForbidden

from bot.config import check_feed_url
from bot.errors import ConfigError

__all__ = [
    "MAX_FILE_BYTES",
    "FeedListError",
    "FeedListItem",
    "read_feed_list",
    "read_feed_list_file",
    "write_opml",
]

MAX_FILE_BYTES = 16 * 1024 * 1024
"""A feed list larger than this is refused (10,000 feeds of OPML take about 2 MiB)."""
MAX_LISTED_PROBLEMS = 20
"""At most this many bad entries are listed; the rest are counted."""
MAX_FOLDER_DEPTH = 64
"""Folders nested deeper than this are refused: no feed reader writes them."""

# Characters XML 1.0 allows; everything else (C0 controls but tab/newline/return, lone
# surrogates, U+FFFE, U+FFFF) cannot be written and is removed.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTR_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                 "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
_ATTR_SPECIAL = re.compile('[&<>"\t\n\r]')
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SEPARATORS = re.compile(r"[\s,]+")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_HTML = re.compile(rb"<!doctype\s+html|<html[\s>]", re.IGNORECASE)
_FEED_ROOTS = {"rss", "feed", "rdf"}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class FeedListError(ConfigError):
    """A feed list could not be read. ``problems`` holds one line per problem, each naming the
    source (the settings add them to their own list of problems)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems: tuple[str, ...] = tuple(problems)


def _clean_text(text: str) -> str:
    """Text as an OPML attribute can carry it: no character XML 1.0 forbids, no outer spaces."""
    return _NOT_XML_CHAR.sub("", text).strip()


def _clean_category(category: str) -> str:
    """Folder names joined by "/", each cleaned; empty names dropped."""
    parts = (_clean_text(part) for part in category.split("/"))
    return "/".join(part for part in parts if part)


@dataclass(frozen=True, slots=True)
class FeedListItem:
    """One feed of a list: its URL, and what an OPML document says about it.

    ``category`` is the path of folders it sits in, joined by "/" ("Tech/Python"), or "".
    Values are normalised on creation, so an item survives :func:`write_opml` and
    :func:`read_feed_list` unchanged: the title and the folder names lose characters XML 1.0
    cannot carry and their outer spaces; an empty ``home`` becomes None.
    """

    url: str
    title: str = ""
    home: str | None = None
    category: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", self.url.strip())
        object.__setattr__(self, "title", _clean_text(self.title))
        object.__setattr__(self, "home", _clean_text(self.home or "") or None)
        object.__setattr__(self, "category", _clean_category(self.category))


# ---------------------------------------------------------------------------------------------
# Reading


def read_feed_list_file(path: str, *, source: str | None = None) -> list[FeedListItem]:
    """The feeds of the OPML document or text list at ``path``.

    ``source`` names the file in errors (default: the path), e.g. ``FEED_URLS_FILE=feeds.txt``.
    Raises :class:`FeedListError` when the file cannot be read or holds anything but feed URLs.
    """
    source = source or path
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise FeedListError([f"{source}: no such file"]) from None
    except IsADirectoryError:
        raise FeedListError([f"{source}: is a directory, expected a file of feed URLs or an "
                             "OPML file"]) from None
    except PermissionError:
        raise FeedListError([f"{source}: cannot be read: permission denied"]) from None
    except OSError as exc:
        raise FeedListError([f"{source}: cannot be read: {exc.strerror or exc}"]) from None
    if len(data) > MAX_FILE_BYTES:
        raise FeedListError([f"{source}: is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, "
                             "too large for a list of feeds"])
    return read_feed_list(data, source)


def read_feed_list(data: bytes, source: str) -> list[FeedListItem]:
    """The feeds of ``data``, an OPML document or a text list of URLs (found by its content).

    ``source`` names the data in errors. Raises :class:`FeedListError` for an empty list, a
    document that is neither OPML nor a list of URLs, an XML document declaring entities, and
    for every entry that is not a feed URL (all of them at once).
    """
    if _looks_like_xml(data):
        items = _read_opml(data, source)
    else:
        items = _read_text_list(data, source)
    if not items:
        raise FeedListError([f"{source}: holds no feed URL (expected an OPML file, or feed "
                             "URLs such as https://blog.example.org/feed.xml, one per line)"])
    return items


def _looks_like_xml(data: bytes) -> bool:
    if data.startswith(_UTF16_BOMS):
        head = data[:200].decode("utf-16", "replace")
    else:
        head = data[:200].decode("utf-8", "replace")
    return head.lstrip("\ufeff \t\r\n").startswith("<")


def _problems_error(source: str, problems: list[str]) -> FeedListError:
    shown = [f"{source}: {p}" for p in problems[:MAX_LISTED_PROBLEMS]]
    if len(problems) > MAX_LISTED_PROBLEMS:
        shown.append(f"{source}: ... and {len(problems) - MAX_LISTED_PROBLEMS} more "
                     "entries that are not feed URLs")
    return FeedListError(shown)


def _why_not_feed_url(url: str) -> str | None:
    if _SPACE_OR_CONTROL.search(url):
        return "it contains a space or a control character"
    return check_feed_url(url)


def _not_a_feed(url: str, why: str) -> str:
    return f"{url!r} is not a feed URL: {why}"


def _read_text_list(data: bytes, source: str) -> list[FeedListItem]:
    if data.startswith(_UTF16_BOMS):
        text = data.decode("utf-16", "replace")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise FeedListError([f"{source}: is neither an OPML file nor a text list of feed "
                                 "URLs (it is not UTF-8 text)"]) from None
    if "\x00" in text:
        raise FeedListError([f"{source}: is neither an OPML file nor a text list of feed URLs "
                             "(it holds binary data)"])
    seen: dict[str, FeedListItem] = {}
    problems: list[str] = []
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        for token in _SEPARATORS.split(line.strip()):
            if token.startswith("#"):
                break  # a comment, to the end of the line
            if not token or token in seen:
                continue
            if why := _why_not_feed_url(token):
                problems.append(f"line {number}: {_not_a_feed(token, why)}")
            else:
                seen[token] = FeedListItem(token)
    if problems:
        raise _problems_error(source, problems)
    return list(seen.values())


def _read_opml(data: bytes, source: str) -> list[FeedListItem]:
    root = _parse_xml(data, source)
    name = _local_name(root.tag)
    if name == "html":
        raise _html_error(source)
    if name in _FEED_ROOTS:
        raise FeedListError([f"{source}: is a feed itself, not a list of feeds: put its URL in "
                             "a text file or in FEED_URLS instead"])
    if name != "opml":
        raise FeedListError([f"{source}: is an XML document of another kind (<{name}>), not "
                             "OPML: expected <opml><body><outline xmlUrl=...> as feed readers "
                             "export it, or a text list of feed URLs"])
    body = next((child for child in root if _local_name(child.tag) == "body"), None)
    if body is None:
        raise FeedListError([f"{source}: is OPML without a <body>, so it holds no feed"])
    seen: dict[str, FeedListItem] = {}
    problems: list[str] = []
    feed_outlines = 0
    for outline, folders in _outlines(body, source):
        attrs = _attributes(outline)
        url = attrs.get("xmlurl")
        if url is None or (not url.strip() and len(outline)):
            continue  # a folder
        url = url.strip()
        feed_outlines += 1
        title = attrs.get("title", "").strip() or attrs.get("text", "")
        category = "/".join(folders)
        where = (f"outline {_clean_text(title)!r}" if _clean_text(title)
                 else f"feed outline #{feed_outlines}")
        if category:
            where += f" (in {category!r})"
        if not url:
            problems.append(f"{where}: has an empty xmlUrl")
            continue
        if url in seen:
            continue
        if why := _why_not_feed_url(url):
            problems.append(f"{where}: {_not_a_feed(url, why)}")
            continue
        home = attrs.get("htmlurl", "").strip()
        home_parts = urlsplit(home)
        if home_parts.scheme not in ("http", "https") or not home_parts.netloc:
            home = ""  # the home page is only shown, never fetched: keep only a web address
        seen[url] = FeedListItem(url, title, home or None, category)
    if problems:
        raise _problems_error(source, problems)
    if not seen:
        raise FeedListError([f"{source}: holds no feed URL (no <outline> of the OPML has an "
                             "xmlUrl attribute)"])
    return list(seen.values())


def _parse_xml(data: bytes, source: str) -> Element:
    try:
        return SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True,
                                 forbid_external=True)
    except EntitiesForbidden:
        raise FeedListError([f"{source}: refused: the document declares XML entities "
                             "(<!ENTITY ...>), which OPML never needs and which can expand "
                             "without bound; remove its <!DOCTYPE ...> section"]) from None
    except ExternalReferenceForbidden:
        raise FeedListError([f"{source}: refused: the document refers to external XML "
                             "entities or a DTD to fetch; remove its <!DOCTYPE ...> "
                             "section"]) from None
    except DefusedXmlException as exc:
        raise FeedListError([f"{source}: refused: unsafe XML ({exc})"]) from None
    except ParseError as exc:
        if _HTML.search(data[:4096]):
            raise _html_error(source) from None
        line, column = getattr(exc, "position", (0, 0))
        reason = str(exc).split(":", 1)[0]
        raise FeedListError([f"{source}: is neither a text list of feed URLs nor valid OPML: "
                             f"XML error at line {line}, column {column + 1}: "
                             f"{reason}"]) from None


def _html_error(source: str) -> FeedListError:
    return FeedListError([f"{source}: is an HTML page, not an OPML file or a list of feed "
                          "URLs (export the subscriptions from the feed reader as OPML)"])


def _local_name(tag: object) -> str:
    if not isinstance(tag, str):  # a comment or a processing instruction
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def _attributes(outline: Element) -> dict[str, str]:
    """The outline's attributes without a namespace, by lower-case name (first one wins)."""
    attrs: dict[str, str] = {}
    for key, value in outline.attrib.items():
        if not key.startswith("{"):
            attrs.setdefault(key.lower(), value)
    return attrs


def _outlines(body: Element, source: str) -> Iterator[tuple[Element, tuple[str, ...]]]:
    """Every <outline> in document order, with the names of the folders it sits in."""
    stack: list[tuple[Iterator[Element], tuple[str, ...]]] = [(iter(body), ())]
    while stack:
        children, folders = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        if _local_name(child.tag) != "outline":
            continue
        yield child, folders
        if len(child):
            if len(stack) > MAX_FOLDER_DEPTH:
                raise FeedListError([f"{source}: nests outlines more than {MAX_FOLDER_DEPTH} "
                                     "deep; no feed reader writes such folders"])
            attrs = _attributes(child)
            name = _clean_category(attrs.get("text", "").strip() or attrs.get("title", ""))
            stack.append((iter(child), (*folders, name) if name else folders))


# ---------------------------------------------------------------------------------------------
# Writing


def _attr(value: str) -> str:
    return _ATTR_SPECIAL.sub(lambda m: _ATTR_ESCAPES[m.group()], _NOT_XML_CHAR.sub("", value))


@dataclass
class _Folder:
    name: str
    children: list[_Folder | FeedListItem]
    folders: dict[str, _Folder]


def write_opml(feeds: Iterable[FeedListItem], title: str = "feed-tweeter subscriptions",
               now: datetime | None = None) -> str:
    """An OPML 2.0 document of ``feeds``, for any feed reader (encode it as UTF-8).

    Feeds with a category sit in folder outlines (one per "/"-separated name), in the order
    their first feed came; a URL listed twice is written once. ``now`` (default: the current
    time) is the document's dateCreated.
    """
    root = _Folder("", [], {})
    written: set[str] = set()
    for feed in feeds:
        if feed.url in written:
            continue
        written.add(feed.url)
        folder = root
        for name in feed.category.split("/") if feed.category else ():
            if name not in folder.folders:
                folder.folders[name] = _Folder(name, [], {})
                folder.children.append(folder.folders[name])
            folder = folder.folders[name]
        folder.children.append(feed)
    when = (now or datetime.now(UTC))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        "  <head>",
        f"    <title>{_attr(_clean_text(title))}</title>",
        f"    <dateCreated>{format_datetime(when.astimezone(UTC), usegmt=True)}</dateCreated>",
        "  </head>",
        "  <body>",
    ]
    _write_children(root, lines, depth=2)
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def _write_children(folder: _Folder, lines: list[str], depth: int) -> None:
    indent = "  " * depth
    for child in folder.children:
        if isinstance(child, _Folder):
            name = _attr(child.name)
            lines.append(f'{indent}<outline text="{name}" title="{name}">')
            _write_children(child, lines, depth + 1)
            lines.append(f"{indent}</outline>")
        else:
            name = _attr(child.title)
            home = f' htmlUrl="{_attr(child.home)}"' if child.home else ""
            lines.append(f'{indent}<outline type="rss" text="{name}" title="{name}" '
                         f'xmlUrl="{_attr(child.url)}"{home}/>')
