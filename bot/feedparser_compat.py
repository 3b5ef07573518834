"""Every piece of feedparser's internals that ``bot/`` uses, and the feedparser that
:mod:`bot.fastxml` was checked against.

:mod:`bot.fastxml` builds the dictionary feedparser would build, for the keys ``bot.parse``
reads. Where a step can be delegated, it calls feedparser's own code for it (dates, encodings,
URL joining, content types), so that step is feedparser's by construction. Where it cannot
(feedparser runs an element handler per SAX event, the fast path walks an ElementTree), it
re-implements the rules of feedparser's handlers, as read in the version recorded below.

None of the names here is feedparser's public API (``feedparser.parse``,
``FeedParserDict``, its exceptions, ``registerDateHandler``): a release may rename or change
them. Hence, all of them come from this one module, pyproject.toml pins feedparser to the
minor version that was checked, and ``tests/test_feedparser_compat.py`` compares
:data:`CHECKED_HANDLERS` and :data:`CHECKED_SOURCE_SHA256` with the installed feedparser.
When they differ: run ``python -m bench.fastxml_check --mutations 3000``, review the handler
sets in :mod:`bot.fastxml` (``_HARMLESS_HANDLERS``, ``_CONTENT_HANDLERS``, ``_FEED_DANGER``,
``_ALIASED``, ``_IMAGES``) against the changed handlers, then paste the record the check
prints here. (The image handlers mirrored by ``bot.fastxml._Reader._image``:
``_start_media_thumbnail``/``_end_media_thumbnail``, ``_start_media_content``,
``_start_enclosure``, ``_start_itunes_image`` = ``_start_itunes_link``, and the ``base``
``push_content`` records: all among the handlers and members digested below.)
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Any

# Called by bot.fastxml: encodings, urls, _parse_date, _cp1252, _FeedParserMixin's static
# methods and namespace map (see each name below). Read, never called: StrictFeedParser (the
# class feedparser.parse uses for a well-formed document: _StrictFeedParser's SAX callbacks
# plus _FeedParserMixin's handlers) and FeedParserDict, for the record of what was checked.
import feedparser
from feedparser import encodings as _encodings
from feedparser import urls as _urls
from feedparser.api import StrictFeedParser
from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.parsers.strict import _StrictFeedParser
from feedparser.util import FeedParserDict

__all__ = [
    "CHECKED_HANDLERS",
    "CHECKED_SOURCE_SHA256",
    "CHECKED_VERSION",
    "CP1252",
    "NAMESPACES",
    "convert_to_utf8",
    "handler_keys",
    "handler_names",
    "installed_source_sha256",
    "looks_like_html",
    "make_safe_absolute_uri",
    "map_content_type",
    "parse_date",
    "record",
    "urljoin",
]

# --------------------------------------------------------------------------- feedparser's code

#: ``*_parsed`` dates: the function feedparser's date handlers (``_end_published``,
#: ``_end_updated`` ...) call, so a date is parsed exactly as feedparser parses it, including
#: any handler registered with ``feedparser.registerDateHandler``.
parse_date: Callable[[str], Any] = _parse_date

#: A body that is not plain UTF-8: feedparser's choice of encoding (HTTP charset, XML
#: declaration, BOM, fallbacks) and its re-encoding to UTF-8 with the declaration rewritten.
#: The fast path then reads those bytes, as feedparser's strict parser does.
convert_to_utf8: Callable[[dict[str, str], bytes, dict[str, Any]], bytes] = (
    _encodings.convert_to_utf8)

#: The table ``pop()`` applies to a value's C1 characters (U+0080-U+009F taken as cp1252).
CP1252: dict[int, str] = _cp1252

#: Namespace URI -> the prefix feedparser names its handlers with (``dc``, ``media``, '' for
#: the core formats): an element's handler is ``_start_<prefix>_<local name>``.
NAMESPACES: dict[str, str] = _FeedParserMixin.namespaces

#: Whether an RSS value without a declared type is HTML (feedparser's guess: ``pop()``).
looks_like_html: Callable[[str], bool] = _FeedParserMixin.looks_like_html

#: A ``type`` attribute as feedparser reports it (``html`` -> ``text/html`` ...).
map_content_type: Callable[[str], str] = _FeedParserMixin.map_content_type

#: ``resolve_uri`` and the xml:base bookkeeping of ``unknown_starttag``: the very joins
#: feedparser makes, odd inputs included (it repairs ``http:/x``, refuses unsafe schemes).
urljoin: Callable[[str, str], str] = _urls._urljoin
make_safe_absolute_uri: Callable[..., str | None] = _urls.make_safe_absolute_uri


def handler_names() -> frozenset[str]:
    """The ``_start_*``/``_end_*`` methods of feedparser's strict parser (its namespace mixins'
    included): the elements feedparser does something of its own with."""
    return frozenset(n for n in dir(StrictFeedParser) if n.startswith(("_start_", "_end_")))


def handler_keys() -> frozenset[str]:
    """The element keys (``prefix_local``) that have a start or end handler."""
    return frozenset(n.split("_", 2)[2] for n in handler_names())


# --------------------------------------------------------------------------- what was checked

# The code bot.fastxml re-implements rather than calls: every handler, the element and text
# bookkeeping around them, the strict parser's SAX callbacks, FeedParserDict's key aliases,
# and the namespace map. Its digest changes with any edit to them (a patch release too).
_MIRRORED_MEMBERS = (
    "__init__", "unknown_starttag", "unknown_endtag", "track_namespace", "resolve_uri", "push",
    "pop", "push_content", "pop_content", "_enforce_href", "_save", "_get_context",
    "_save_author", "_sync_author_detail", "looks_like_html", "map_content_type",
)


def _source(obj: Any) -> str:
    """The source text of a function or class; its bytecode where there is no source (an
    installation without .py files, a handler made at run time)."""
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        return f"{getattr(obj, '__qualname__', obj)!r} {code.co_code.hex() if code else ''}"


def installed_source_sha256() -> str:
    """SHA-256 of the installed feedparser's code and tables that bot.fastxml mirrors."""
    parts = [f"{name}\n{_source(getattr(StrictFeedParser, name))}"
             for name in sorted(handler_names())]
    parts += [f"{name}\n{_source(getattr(_FeedParserMixin, name))}"
              for name in _MIRRORED_MEMBERS]
    parts += [_source(_StrictFeedParser), _source(FeedParserDict), _source(feedparser.api.parse)]
    parts.append(repr(sorted(NAMESPACES.items())))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def record() -> str:
    """The installed feedparser as the ``CHECKED_*`` assignments below (to paste here once
    ``bench.fastxml_check`` has passed with it)."""
    lines = [f'CHECKED_VERSION = "{feedparser.__version__}"', "CHECKED_HANDLERS = frozenset({"]
    line = "   "
    for name in sorted(handler_names()):
        if len(line) + len(name) + 4 > 100:
            lines.append(line)
            line = "   "
        line += f' "{name}",'
    lines += [line, "})", f'CHECKED_SOURCE_SHA256 = "{installed_source_sha256()}"']
    return "\n".join(lines)


# The feedparser bot.fastxml was checked against (python -m bench.fastxml_check): its version,
# its handler methods, and the digest of installed_source_sha256(). Written by record().
CHECKED_VERSION = "6.0.14"
CHECKED_HANDLERS = frozenset({
    "_end_abstract", "_end_author", "_end_body", "_end_category", "_end_channel", "_end_content",
    "_end_content_encoded", "_end_contributor", "_end_copyright", "_end_created",
    "_end_creativeCommons_license", "_end_creativecommons_license", "_end_dc_author",
    "_end_dc_contributor", "_end_dc_creator", "_end_dc_date", "_end_dc_description",
    "_end_dc_language", "_end_dc_publisher", "_end_dc_rights", "_end_dc_subject", "_end_dc_title",
    "_end_dcterms_created", "_end_dcterms_issued", "_end_dcterms_modified", "_end_dcterms_valid",
    "_end_description", "_end_email", "_end_entry", "_end_expirationdate", "_end_feed",
    "_end_feedburner_browserfriendly", "_end_fullitem", "_end_generator", "_end_geom",
    "_end_georss_box", "_end_georss_line", "_end_georss_point", "_end_georss_polygon",
    "_end_georss_where", "_end_gml_exterior", "_end_gml_linearring", "_end_gml_linestring",
    "_end_gml_point", "_end_gml_polygon", "_end_gml_pos", "_end_gml_poslist", "_end_guid",
    "_end_height", "_end_homepage", "_end_id", "_end_image", "_end_info", "_end_issued",
    "_end_item", "_end_itunes_author", "_end_itunes_block", "_end_itunes_category",
    "_end_itunes_email", "_end_itunes_explicit", "_end_itunes_keywords", "_end_itunes_name",
    "_end_itunes_owner", "_end_itunes_subtitle", "_end_itunes_summary", "_end_keywords",
    "_end_language", "_end_lastbuilddate", "_end_link", "_end_managingeditor",
    "_end_media_category", "_end_media_credit", "_end_media_description", "_end_media_keywords",
    "_end_media_license", "_end_media_player", "_end_media_rating", "_end_media_restriction",
    "_end_media_thumbnail", "_end_media_title", "_end_modified", "_end_name", "_end_newlocation",
    "_end_psc_chapters", "_end_pubdate", "_end_published", "_end_rights", "_end_source",
    "_end_subtitle", "_end_summary", "_end_tagline", "_end_tags", "_end_textInput",
    "_end_textinput", "_end_title", "_end_updated", "_end_uri", "_end_url", "_end_webmaster",
    "_end_where", "_end_width", "_end_xhtml_body", "_start_abstract", "_start_author",
    "_start_body", "_start_category", "_start_cc_license", "_start_channel", "_start_cloud",
    "_start_content", "_start_content_encoded", "_start_contributor", "_start_copyright",
    "_start_created", "_start_creativeCommons_license", "_start_creativecommons_license",
    "_start_dc_author", "_start_dc_contributor", "_start_dc_creator", "_start_dc_date",
    "_start_dc_description", "_start_dc_language", "_start_dc_publisher", "_start_dc_rights",
    "_start_dc_subject", "_start_dc_title", "_start_dcterms_created", "_start_dcterms_issued",
    "_start_dcterms_modified", "_start_dcterms_valid", "_start_description", "_start_email",
    "_start_enclosure", "_start_entry", "_start_expirationdate", "_start_feed",
    "_start_feedburner_browserfriendly", "_start_fullitem", "_start_generator", "_start_georss_box",
    "_start_georss_line", "_start_georss_point", "_start_georss_polygon", "_start_georss_where",
    "_start_georssgeom", "_start_gml_exterior", "_start_gml_linearring", "_start_gml_linestring",
    "_start_gml_point", "_start_gml_polygon", "_start_gml_pos", "_start_gml_poslist", "_start_guid",
    "_start_height", "_start_homepage", "_start_id", "_start_image", "_start_info", "_start_issued",
    "_start_item", "_start_itunes_author", "_start_itunes_category", "_start_itunes_email",
    "_start_itunes_image", "_start_itunes_link", "_start_itunes_name", "_start_itunes_owner",
    "_start_itunes_subtitle", "_start_itunes_summary", "_start_keywords", "_start_language",
    "_start_lastbuilddate", "_start_link", "_start_managingeditor", "_start_media_category",
    "_start_media_content", "_start_media_credit", "_start_media_description", "_start_media_group",
    "_start_media_license", "_start_media_player", "_start_media_rating",
    "_start_media_restriction", "_start_media_thumbnail", "_start_media_title", "_start_modified",
    "_start_name", "_start_newlocation", "_start_psc_chapter", "_start_psc_chapters",
    "_start_pubdate", "_start_published", "_start_rights", "_start_rss", "_start_source",
    "_start_subtitle", "_start_summary", "_start_tagline", "_start_tags", "_start_textInput",
    "_start_textinput", "_start_title", "_start_updated", "_start_uri", "_start_url",
    "_start_webmaster", "_start_where", "_start_width", "_start_xhtml_body",
})
CHECKED_SOURCE_SHA256 = "34910561f7e1e13cc6000c4cb7b579e6701f3ed9b11c84e184fbde8eb5fc3f0d"
