"""JSON Feed 1.x and scripting.com's RSS-in-JSON to a :class:`ParsedFeed`: one job, the JSON
formats of :func:`bot.parse.parse_feed` (which sends here any body starting with ``{``).

* JSON Feed: the link is ``url`` (the spec's permalink), else ``external_url``; the summary
  is ``summary``, else ``content_text``, else the text of ``content_html``; authors are the
  item's, else the feed's; dates without a zone are UTC; the image is ``image``, else
  ``banner_image`` (the first that is an http(s) URL, resolved against the feed URL).
* RSS-in-JSON: ``{"rss": {"channel": {"item": [...]}}}`` with no ``version``, read as RSS.
* Raises :class:`FeedParseError` for invalid JSON and unknown versions.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.dates import iso_date, rfc822_date
from bot.errors import FeedParseError
from bot.feedentries import (
    SUMMARY_MAX,
    as_list,
    build_entry,
    http_url,
    image_url,
    read_each,
    string,
    unique_entries,
)
from bot.htmltext import plain, plain_text
from bot.models import Entry, ParsedFeed

__all__ = ["parse_json"]

_JSON_FEED_VERSION = re.compile(r"https?://jsonfeed\.org/version/1(?:\.\d+)?/?")


def parse_json(body: bytes, url: str) -> ParsedFeed:
    """A JSON Feed or RSS-in-JSON body; raises :class:`FeedParseError` if it is neither."""
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
    feed_link = http_url(url, string(doc.get("home_page_url")))
    feed_authors = _json_authors(doc)
    entries = read_each([item for item in as_list(doc.get("items")) if isinstance(item, dict)],
                        lambda item: _json_entry(item, url, feed_authors),
                        lambda item: item.get("id"))
    return ParsedFeed(title=plain(string(doc.get("title"))), link=feed_link,
                      entries=unique_entries(entries))


def _json_entry(item: dict[str, Any], url: str, feed_authors: str) -> tuple[Entry, str]:
    link = (http_url(url, string(item.get("url")))
            or http_url(url, string(item.get("external_url"))))
    summary = ""
    # JSON Feed's plain text is often HTML-escaped in practice (rose.json: "echo 0 &gt; /sys"):
    # its entities are decoded (kind None), unlike a feed's text/plain value
    for key, kind in (("summary", None), ("content_text", None), ("content_html", "html")):
        if value := string(item.get(key)):
            summary = plain_text(value, kind, SUMMARY_MAX)
            break
    raw_date = string(item.get("date_published")) or string(item.get("date_modified")) or ""
    image = image_url(url, item.get("image")) or image_url(url, item.get("banner_image"))
    return build_entry(item.get("id"), link, plain(string(item.get("title"))), summary,
                       _json_authors(item) or feed_authors, as_list(item.get("tags")),
                       iso_date(raw_date), raw_date, image)


def _json_authors(obj: dict[str, Any]) -> str:
    authors = as_list(obj.get("authors")) or as_list(obj.get("author"))
    names = (plain(string(a.get("name"))) for a in authors if isinstance(a, dict))
    return ", ".join(n for n in names if n)


def _parse_rss_in_json(rss: dict[str, Any], url: str) -> ParsedFeed:
    """scripting.com's RSS-in-JSON: ``{"rss": {"channel": {"item": [...]}}}``."""
    channel = rss.get("channel")
    channel = channel if isinstance(channel, dict) else {}
    entries = []
    for item in as_list(channel.get("item")):
        if not isinstance(item, dict):
            continue
        raw_date = string(item.get("pubDate")) or ""
        entries.append(build_entry(item.get("guid"), http_url(url, string(item.get("link"))),
                                   plain(string(item.get("title"))),
                                   plain_text(string(item.get("description")), "html",
                                              SUMMARY_MAX),
                                   plain(string(item.get("author"))),
                                   as_list(item.get("category")), rfc822_date(raw_date),
                                   raw_date))
    return ParsedFeed(title=plain(string(channel.get("title"))),
                      link=http_url(url, string(channel.get("link"))),
                      entries=unique_entries(entries))
