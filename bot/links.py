"""Links X can follow: absolute http(s) URIs, and whether X shortens one whole (pure, no I/O).

:func:`normalise_link` turns what a feed says (a relative reference, an IRI with non-ASCII
letters, a link with a password in it) into one absolute ``http``/``https`` URI, or None. It is a
function of one string (``base`` is optional) so the store can register it with SQLite
(``conn.create_function("normalise_link", 1, normalise_link, deterministic=True)``) and rewrite
links saved by older versions.

:func:`tweetable` says whether X counts the whole link as one t.co link (23 weighted characters).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, urljoin, urlsplit

import idna  # IDNA 2008 with UTS #46 mapping, as browsers do (the stdlib has IDNA 2003)
from twitter_text import extract_urls_with_indices

# twitter-text (``extract_urls.is_valid_url``) accepts a URL while
# ``len(protocol) + len(url) <= 4096``, where ``url`` already starts with the protocol: the
# protocol counts twice. So the longest link X shortens is 4096 - 8 = 4088 characters with
# ``https://`` (4089 with ``http://``).
MAX_LINK_LENGTH = 4096 - len("https://")

_OUTER_JUNK = "".join(map(chr, range(0x21))) + "\x7f\x85\xa0\u1680\u2000\u2001\u2002\u2003" \
    "\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
_TAB_NEWLINE = re.compile("[\t\n\r]")  # removed anywhere, as browsers do (WHATWG URL)
_LONE_PERCENT = re.compile("%(?![0-9A-Fa-f]{2})")
_ASCII_HOST = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_.])?")
_PORT = re.compile(r"[0-9]{0,5}")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"  # RFC 3986 pchar and "/", and "%" of escapes kept as is
_QUERY_SAFE = _PATH_SAFE + "?"


def _encode(part: str, safe: str) -> str:
    """Percent-encode (UTF-8) what a URI cannot hold; ``%XX`` stays, a lone "%" becomes %25."""
    return quote(_LONE_PERCENT.sub("%25", part), safe=safe)


def _host(host: str) -> str | None:
    """The host in ASCII (punycode), lowercased, or None when it cannot be a host."""
    if host.startswith("[") and host.endswith("]"):
        try:
            return "[" + ipaddress.IPv6Address(host[1:-1]).compressed + "]"
        except ValueError:
            return None
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (UnicodeError, ValueError):
            return None
    host = host.lower()
    if not _ASCII_HOST.fullmatch(host):
        return None
    if "xn--" in host:  # punycode must decode
        try:
            idna.decode(host)
        except (UnicodeError, ValueError):
            return None
    return host


def normalise_link(href: str | None, base: str | None = None) -> str | None:
    """``href`` as an absolute http(s) URI (resolved against ``base`` if given), or None.

    Leading and trailing whitespace and control characters go, and tabs and newlines anywhere
    (as browsers do). The scheme must be http or https (lowercased). The host is lowercased
    and a non-ASCII host becomes punycode (IDNA with UTS #46 mapping); a host that cannot be one
    (empty, a space in it, invalid IDNA) gives None, as does a port that is not a number.
    ``user:password@`` is dropped. Path, query and fragment are percent-encoded as UTF-8 where
    a URI cannot hold the character (non-ASCII, space, ``"<>\\^`{|}``, controls); existing
    ``%XX`` escapes stay exactly as written and a "%" not followed by two hex digits becomes
    ``%25``, so an IRI and its encoded spelling give the same string and the function is
    idempotent. An empty path becomes "/". Nothing else is changed (no dot-segment removal
    without a base, no reordering, default ports kept).
    """
    if not isinstance(href, str):
        return None
    try:
        text = _TAB_NEWLINE.sub("", href.strip(_OUTER_JUNK))
        if base:
            text = urljoin(_TAB_NEWLINE.sub("", base.strip(_OUTER_JUNK)), text)
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https"):
            return None
        netloc = parts.netloc.rpartition("@")[2]
        if netloc.startswith("["):
            end = netloc.find("]") + 1
            host, rest = netloc[:end], netloc[end:]
        else:
            host, _, port = netloc.partition(":")
            rest = ":" + port if port else ""
        if rest and not (rest.startswith(":") and _PORT.fullmatch(rest[1:])):
            return None
        if rest == ":":
            rest = ""
        ascii_host = _host(host) if host else None
        if ascii_host is None:
            return None
        link = f"{parts.scheme}://{ascii_host}{rest}{_encode(parts.path, _PATH_SAFE) or '/'}"
        if parts.query:
            link += "?" + _encode(parts.query, _QUERY_SAFE)
        if parts.fragment:
            link += "#" + _encode(parts.fragment, _QUERY_SAFE)
    except (ValueError, UnicodeError):  # urlsplit on a broken "[", lone surrogates
        return None
    return link


def tweetable(link: str) -> bool:
    """Whether X shortens the whole of ``link`` to one t.co link (which weighs 23).

    twitter-text is the judge: it must find exactly one URL in ``link`` and that URL must be
    ``link`` from its first character to its last. That rules out links longer than
    :data:`MAX_LINK_LENGTH`, links whose end X would leave out of the link (a trailing ".",
    "!" or unbalanced ")"), hosts X does not link (unknown top-level domains such as
    ``.example``, IP addresses, ``localhost``) and anything with a space. Give it a
    :func:`normalise_link` result; a link that passes stays whole when a space or a line
    break is on either side of it.
    """
    if not link or len(link) > MAX_LINK_LENGTH + 1:
        return False
    found = extract_urls_with_indices(link)
    return len(found) == 1 and found[0]["url"] == link and found[0]["indices"] == [0, len(link)]


def usable(link: str | None) -> bool:
    """Whether ``link`` (a :func:`normalise_link` result) can be tweeted as the article's link.

    It can when X either shortens all of it to one t.co link (:func:`tweetable`), or does not
    take it for a link at all and shows it as plain text, whole (a host twitter-text does not
    know: a top-level domain newer than its list, an IP address, ``localhost``); a bot must
    not drop articles because its copy of the domain list is old. It cannot when it is longer
    than X shortens (:data:`MAX_LINK_LENGTH`), or when X would link only a part of it (a
    trailing "." or an unbalanced ")" left out): readers would land on another page.
    """
    if not link or normalise_link(link) != link:
        return False
    if len(link) > MAX_LINK_LENGTH + (1 if link.startswith("http:") else 0):
        return False
    if tweetable(link):
        return True
    return not extract_urls_with_indices(link)
