"""An XML feed body before any parser reads it: one job, make it safe and readable.

* **Safety.** A document that declares XML entities in its DTD is refused by the caller
  (:func:`declares_entities`): no billion laughs, no external entities; an ``<!ENTITY``
  inside the content (CDATA) is not a declaration and is fine.
* **Character references** to no character (``&#55357;&#56832;``, an emoji as its UTF-16
  pair; ``&#0;``; past U+10FFFF) are made the character or U+FFFD (:func:`fix_char_refs`):
  feedparser's loose parser crashed on them and the whole feed was lost.
* **Encoding.** A body declared as a legacy single-byte charset (ISO-8859-*, windows-125x,
  ASCII) that is non-ASCII *valid UTF-8* is read as UTF-8 (:func:`feed_content_type`).
* Whether a body is an HTML page (:func:`looks_like_html`).
"""

from __future__ import annotations

import re

__all__ = ["declares_entities", "feed_content_type", "fix_char_refs", "looks_like_html"]

_XML_ENCODING = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([\w.:-]+)", re.I)
_LEGACY_CHARSET = re.compile(r"(iso[-_]?8859[-_]?\d+|latin[-_]?1|(windows|cp)[-_]?125\d|"
                             r"(us-)?ascii)", re.I)
_WIDE_PREFIXES = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                  (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"),
                  (b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"),
                  (b"\x00<", "utf-16-be"), (b"<\x00", "utf-16-le"))
_PROLOG_MARK = re.compile(rb"""<!--|<\?|<!ENTITY|<[^!?]|["']""")
_PROLOG_CLOSE = {b"<!--": b"-->", b"<?": b"?>", b'"': b'"', b"'": b"'"}

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


def fix_char_refs(body: bytes) -> bytes:
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
            fixed = fix_char_refs(utf8)
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


def declares_entities(body: bytes) -> bool:
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


def feed_content_type(body: bytes, content_type: str | None) -> str:
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


def looks_like_html(body: bytes) -> bool:
    """Whether the body starts as an HTML page does (a doctype or an <html> tag)."""
    head = body[:1024].lstrip().removeprefix(b"\xef\xbb\xbf").lower()
    return head.startswith(b"<!doctype html") or b"<html" in head
