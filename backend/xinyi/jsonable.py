"""Plain JSON values from model rows, for the citizen's export (each domain's ``export_*``).

Shared core: it knows no domain. UUIDs become strings, datetimes ISO 8601 in UTC, dates
``YYYY-MM-DD``, bytes lowercase hex; lists and mappings are converted item by item.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any


def plain(value: Any) -> Any:
    """``value`` as JSON can carry it (see the module docstring)."""
    if value is None or isinstance(value, bool | int | str | float):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    raise TypeError(f"no JSON form for {type(value).__name__}")


def row(obj: Any, *columns: str, **extra: Any) -> dict[str, Any]:
    """The named attributes of ``obj`` (and ``extra``), each through :func:`plain`."""
    out = {name: plain(getattr(obj, name)) for name in columns}
    out.update({name: plain(value) for name, value in extra.items()})
    return out
