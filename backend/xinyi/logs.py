"""Structured JSON logs with the request id, and a last-line redaction filter.

Code never logs personal data on purpose (values are masked value objects); the filter is
defence in depth for anything that slips through, e.g. a library's exception text.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar

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


def redact(text: str) -> str:
    for pattern, replacement in SENSITIVE:
        text = pattern.sub(replacement, text)
    return text


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
