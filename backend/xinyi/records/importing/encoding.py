"""PostgreSQL ``COPY`` text format and array literals, written by hand for speed.

COPY text format: backslash escapes, ``\\N`` is NULL, bytea as ``\\x<hex>`` (the backslash
doubled). Array literals travel as one text parameter: psycopg's list adapter costs about
4 µs a row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any

COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: Any) -> str:
    """One value as a field of a COPY text line."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return value.translate(COPY_ESCAPES)
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value).translate(COPY_ESCAPES)
    return str(value)


def esc(value: str) -> str:
    """A string as a field of a COPY text line (the fast case of :func:`copy_text`)."""
    return value.translate(COPY_ESCAPES)


def copy_block(rows: list[tuple[Any, ...]]) -> str:
    """Rows as COPY text lines."""
    return "".join("\t".join([copy_text(v) for v in row]) + "\n" for row in rows)


def text_array(values: list[str]) -> str:
    """A text[] literal of strings (every element quoted, so none reads as NULL)."""
    plain = "".join(values)
    if "\\" in plain or '"' in plain:
        values = [v.replace("\\", "\\\\").replace('"', '\\"') for v in values]
    return '{"' + '","'.join(values) + '"}'


def bytea_array(values: Iterable[bytes]) -> str:
    """A bytea[] literal."""
    return "{" + ",".join([f'"\\\\x{b.hex()}"' for b in values]) + "}"
