"""Schemas shared across domains: strict input base, pagination, problem details."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate


def _unstorable(value: Any) -> bool:
    """NUL or a lone surrogate anywhere inside: PostgreSQL, UTF-8 and argon2 all refuse these."""
    pending = [value]  # iterative: deeply nested JSON must not become a RecursionError
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


class FullMatch(validate.Regexp):
    """``validate.Regexp`` on the whole value: with ``re.match`` a pattern ending in ``$``
    also accepts a trailing newline ("r-1\\n" would be a ref of its own)."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class WholeNumber(fields.Integer):
    """A JSON integer as JSON Schema (and so the OpenAPI document) defines one: 9 and 9.0
    alike, since JSON has one number type; never a string, a fraction or a boolean."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return super()._validated(value)


class JsonBoolean(fields.Boolean):
    """A JSON ``true`` or ``false`` and nothing else: marshmallow's Boolean also takes 0, 1,
    "yes", "off"…, which the document's ``type: boolean`` does not allow."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


# A body that must hold at least one field: a patch whose service refuses "nothing to change".
NON_EMPTY: Mapping[str, Any] = MappingProxyType({"minProperties": 1})


class StrictSchema(Schema):
    """Every request schema: unknown fields are an error, never silently dropped.

    ``JSON_SCHEMA_EXTRA`` holds what the schema's fields cannot say in the OpenAPI document
    but the server enforces, e.g. NON_EMPTY (the app adds it to the schema's component).
    """

    JSON_SCHEMA_EXTRA: ClassVar[Mapping[str, Any]] = {}

    class Meta:
        unknown = RAISE

    @pre_load
    def _refuse_unstorable_text(self, data: Any, **_kwargs: Any) -> Any:
        # A 422 naming the field instead of a 500 from the database driver or the hasher.
        if isinstance(data, Mapping):
            bad = {str(k) if not _unstorable(k) else "_schema" for k, v in data.items()
                   if _unstorable(k) or _unstorable(v)}
            if bad:
                raise ValidationError({k: ["must not contain NUL characters or lone surrogates"]
                                       for k in sorted(bad)})
        return data


class PageArgs(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    page_size = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class PageMeta(Schema):
    page = fields.Integer(required=True)
    page_size = fields.Integer(required=True)
    total = fields.Integer(required=True)


_PAGES: dict[type[Schema], type[Schema]] = {}


def page_schema(item: type[Schema], *, name: str | None = None) -> type[Schema]:
    """The ``{items, meta}`` response schema of a list endpoint whose items dump with ``item``.

    apispec names the component after the class, so the name defaults to the item's minus its
    ``Out`` suffix plus ``Page`` (``ConsentOut`` -> ``ConsentPage``); pass ``name`` where the
    published name differs. One class per item schema: a second class of the same name would
    be a second component (apispec warns and renames it), so later calls get the cached one.
    """
    page_name = name or item.__name__.removesuffix("Out") + "Page"
    cached = _PAGES.get(item)
    if cached is None:
        cached = _PAGES[item] = Schema.from_dict({
            "items": fields.List(fields.Nested(item), required=True),
            "meta": fields.Nested(PageMeta, required=True),
        }, name=page_name)
    elif cached.__name__ != page_name:
        raise ValueError(f"{item.__name__} already has the page schema {cached.__name__}")
    return cached


class ProblemFieldSchema(Schema):
    field = fields.String(required=True)
    location = fields.String(required=True)
    messages = fields.List(fields.String(), required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details with our stable ``code``."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    code = fields.String(required=True)
    detail = fields.String(required=True)
    errors = fields.List(fields.Nested(ProblemFieldSchema))


def page_of(items: Sequence[Any], total: int, args: Mapping[str, Any]) -> dict[str, Any]:
    """The ``{items, meta}`` envelope every paginated response schema describes."""
    return {"items": items, "meta": {"page": args["page"], "page_size": args["page_size"],
                                     "total": total}}
