"""HTML and feed text to plain text, as a browser shows it; and short titles from text.

One job: a value of some content type (HTML, ``text/plain``, unknown) becomes one line of
plain text. Tags are dropped, ``<script>`` and ``<style>`` bodies dropped, entities decoded,
whitespace collapsed; comments end where HTML5 ends them (``safe<!--`` is "safe", an
unterminated comment hides the rest). Two readers give the same text: a regex tokenizer for
markup it reads in exactly one way (:func:`_html_to_text_fast`), html.parser for the rest
(:func:`_html_to_text_parser`). Used by :mod:`bot.parse`, :mod:`bot.jsonfeed` and
:mod:`bot.blogdb`.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

__all__ = ["TITLE_MAX_CHARS", "TITLE_MAX_WORDS", "plain", "plain_text", "shorten", "untitled"]

TITLE_MAX_CHARS = 100
TITLE_MAX_WORDS = 12

_PLAIN_TYPES = ("text/plain",)

# An HTML comment as HTML5 (a browser) reads it: "<!-->" and "<!--->" are empty comments,
# and a comment ends at the first "-->" or "--!>" ("-- >" does not end it). Unterminated, it
# runs to the end of the text.
_COMMENT = r"<!--(?:-?>|.*?--!?>)"
_CLOSED_COMMENT = re.compile(_COMMENT, re.S)


class BrowserHTMLParser(HTMLParser):
    """html.parser, except that comments, ``<!...>`` and ``<?...>`` end where a browser ends
    them: html.parser in Python 3.11 ends a comment at "-- >", reads an unterminated one as
    text, and raises AssertionError on ``<![x[`` or ``<![ ``. Unterminated, they run to the
    end of the text (once :meth:`close` says it has ended)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
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


class _TextExtractor(BrowserHTMLParser):
    """Collects the text of an HTML fragment, minus <script>/<style>, with block breaks."""

    _SKIP = frozenset({"script", "style"})
    _BLOCK = frozenset({"br", "p", "div", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3",
                        "h4", "h5", "h6", "blockquote", "pre", "hr", "section", "article",
                        "figure", "figcaption", "table", "dd", "dt", "img"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.size = 0
        self._skipping = 0

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


def plain(value: str | None) -> str:
    """Entities decoded, whitespace collapsed (a value of unknown type; tags are kept)."""
    if not value:
        return ""
    if "&" in value:
        value = html.unescape(value)
    return " ".join(value.split())


def plain_text(value: str | None, kind: str | None, limit: int | None = None) -> str:
    """Plain text of a value of content type ``kind``, shortened to ``limit``.

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
        text = _html_to_text(value, limit) if "<" in value else plain(value)
    elif kind in _PLAIN_TYPES:
        text = " ".join(value.split())
    else:
        text = plain(value)
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
