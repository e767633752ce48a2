"""The cached statistics as JSON and back: frozen dataclasses of ints, floats, strings,
booleans, datetimes and tuples, rebuilt by their type hints. JSON, not pickle: what comes
back from Redis is only ever data."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def dumps(value: Any) -> bytes:
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":")).encode()


def _build(hint: Any, raw: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        if raw is None:
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _build(inner, raw)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_build(item, v) for v in raw)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return hint(**{f.name: _build(hints[f.name], raw[f.name])
                       for f in dataclasses.fields(hint)})
    if hint is datetime:
        return datetime.fromisoformat(raw)
    if hint is float:
        return float(raw)
    if hint in (int, str, bool) and type(raw) is hint:
        return raw
    raise ValueError(f"cached value does not fit {hint!r}")


def loads(cls: type[T], data: bytes) -> T:
    """Rebuild ``cls`` from :func:`dumps`' output; ``ValueError`` (or ``KeyError``,
    ``TypeError``) when the data does not fit the class, e.g. written by another version."""
    built: T = _build(cls, json.loads(data))
    return built
