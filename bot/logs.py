"""Logging: one line per event, ``event key=value …``, as text or as JSON (``LOG_FORMAT``).

Every module logs through its own ``logging.getLogger(__name__)`` with a stable event name
first (``feed_polled url=… status=200 new=1``). :func:`configure` installs one handler on the
root logger that

- writes text (``2024-05-01T12:00:00.123Z INFO    bot.worker feed_polled url=… new=1``) or
  one JSON object per line (``{"ts", "level", "logger", "event", "message", "url", "new", …}``:
  the leading ``key=value`` pairs become fields, as strings);
- redacts the credentials (:class:`Redactor`): whatever a library or a message would print,
  the values of ``TWITTER_API_SECRET`` etc. never reach the output, at any level.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from urllib.parse import quote

REDACTED = "***"
RESERVED = frozenset({"ts", "level", "logger", "event", "message", "exception", "stack"})
# tweepy logs request headers and oauthlib its signing steps at DEBUG: never below WARNING.
QUIET_LOGGERS = ("tweepy", "oauthlib", "requests_oauthlib", "aiohttp.access", "aiosqlite",
                 "httpx", "httpcore",
                 "asyncio")
_PAIR = re.compile(r"""([A-Za-z_][\w.]*)=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S*)""")
_MIN_SECRET = 4  # shorter values would blank out ordinary words


def event_fields(message: str) -> tuple[str, dict[str, str]]:
    """``"feed_polled url=http://x new=1 (note)"`` -> ``("feed_polled", {"url": …, "new": "1"})``.

    The event is the first word; the fields are the ``key=value`` words right after it, up to
    the first word that is not one. Quoted values (``error='…'``, as ``%r`` writes them) are
    unquoted; a ``:`` ending an unquoted value before free text is dropped.
    """
    event, _, rest = message.partition(" ")
    fields: dict[str, str] = {}
    pos = 0
    while True:
        while pos < len(rest) and rest[pos] == " ":
            pos += 1
        m = _PAIR.match(rest, pos)
        if m is None or (m.end() < len(rest) and rest[m.end()] != " "):
            break
        key, value = m.group(1), m.group(2)
        if value[:1] in ("'", '"') and len(value) >= 2:
            try:
                parsed = ast.literal_eval(value)
                value = parsed if isinstance(parsed, str) else value
            except (ValueError, SyntaxError):
                value = value[1:-1]
        elif value.endswith(":") and m.end() < len(rest):
            value = value[:-1]
        if key not in RESERVED:
            fields.setdefault(key, value)
        pos = m.end()
    return event, fields


class Redactor(logging.Filter):
    """Replace every credential value (and its percent-encoded form) by ``***``.

    Installed on the handler, so it sees every record from every logger, message and
    traceback alike, before any formatter does.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        variants = set()
        for secret in secrets:
            if secret and len(secret) >= _MIN_SECRET:
                variants.update({secret, quote(secret, safe=""), quote(secret, safe="/")})
        # longest first, so a secret that contains another is replaced whole
        self.variants = sorted(variants, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for variant in self.variants:
            if variant in text:
                text = text.replace(variant, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.variants:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format: let the formatter report it as usual
            return True
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z")


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, message, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        event, fields = event_fields(message)
        data: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "event": event,
            "message": message,
            **fields,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03dZ %(levelname)-7s %(name)s %(message)s",
                         datefmt="%Y-%m-%dT%H:%M:%S")
        self.converter = time.gmtime


def configure(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = (),
              stream: object = None) -> logging.Handler:
    """Send every log record to stderr (or ``stream``) as text or JSON, credentials redacted."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(Redactor(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    floor = max(logging.WARNING, logging.getLevelName(level))
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(floor)
    logging.captureWarnings(True)
    return handler
