"""Structured JSON logs with the request id, and a last-line redaction filter.

Code never logs personal data on purpose (values are masked value objects); the filter is
defence in depth for anything that slips through, e.g. a library's exception text.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

SENSITIVE = [
    # Token-shaped secrets first: a digit run inside one must not be cut out as a phone number
    # first, which would leave the rest of the secret in the clear.
    (re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*"), "[jwt]"),
    (re.compile(r"xy[kr]_[\w-]+"), "[secret]"),
    (re.compile(r"whsec_[\w+/=]+"), "[secret]"),
    (re.compile(r"XY1:[\w.-]+"), "[credential]"),
    (re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])"), "[id-number]"),
    (re.compile(r"(?<![0-9A-Za-z_-])(?:\+?86)?1[3-9]\d{9}(?![0-9A-Za-z_-])"), "[phone]"),
]


# A URL's query, from its "?" to the end of the quoted request line or log line holding it:
# clients put tokens and phone numbers there, and a malformed line may hold spaces, so nothing
# after the "?" is trusted. The path before it stays: it says what was asked, and holds ids.
# A query already redacted is left alone, so redacting twice changes nothing.
QUERY = re.compile(r"(?<=[\w/%.~-])\?(?!\[query\])[^'\"\r\n]*")


def redact(text: str) -> str:
    for pattern, replacement in SENSITIVE:
        text = pattern.sub(replacement, text)
    return text


def redact_http(text: str) -> str:
    """For text that may quote a request line or URL (the HTTP server's own logs): no query,
    and the usual redaction for the rest (a header line, a path)."""
    return redact(QUERY.sub("?[query]", text))


MAX_FRAMES = 30


def _where(frame: traceback.FrameSummary) -> str:
    path = frame.filename.replace("\\", "/")
    for marker in ("/site-packages/", "/backend/"):
        path = path.rpartition(marker)[2] if marker in path else path
    return f"{path}:{frame.lineno} in {frame.name}"


def failure(exc: BaseException) -> dict[str, Any]:
    """What a log record may say about an exception (pass it as ``extra``, with no exc_info):
    its type, its causes' types, a database error's SQLSTATE and where it was raised. Never
    its message, arguments or a formatted traceback, which quote what they failed on: a
    driver's "Key (phone)=(…)", a failed INSERT's values, a password hash."""
    causes: list[str] = []
    seen, current = {id(exc)}, _cause(exc)
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        causes.append(_type_name(current))
        current = _cause(current)
    fields: dict[str, Any] = {
        "error_type": _type_name(exc),
        "error_causes": causes,
        "frames": [_where(f) for f in traceback.extract_tb(exc.__traceback__)][-MAX_FRAMES:],
    }
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if isinstance(sqlstate, str):
        fields["sqlstate"] = sqlstate
    return fields


def _cause(exc: BaseException) -> BaseException | None:
    return exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    return kind.__qualname__ if kind.__module__ == "builtins" else (
        f"{kind.__module__}.{kind.__qualname__}")


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class RedactingJsonFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(getattr(h, "_xinyi", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
        rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
    ))
    handler.addFilter(ContextFilter())
    handler._xinyi = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
