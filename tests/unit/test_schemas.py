"""Shared schemas: the page schema of a list endpoint (one class per item schema)."""

from __future__ import annotations

import pytest
from marshmallow import Schema, fields

from xinyi.schemas import page_schema


class ThingOut(Schema):
    name = fields.String(required=True)


def test_page_schema_is_named_after_its_item_and_built_once() -> None:
    page = page_schema(ThingOut)
    assert page.__name__ == "ThingPage"  # the OpenAPI component name
    assert page_schema(ThingOut) is page  # a second class would be a second component
    dumped = page().dump({"items": [{"name": "a", "extra": 1}],
                          "meta": {"page": 1, "page_size": 20, "total": 1}})
    assert dumped == {"items": [{"name": "a"}], "meta": {"page": 1, "page_size": 20, "total": 1}}


def test_page_schema_refuses_a_second_name_for_one_item() -> None:
    class OtherOut(Schema):
        name = fields.String()

    assert page_schema(OtherOut, name="OthersPage").__name__ == "OthersPage"
    assert page_schema(OtherOut, name="OthersPage") is page_schema(OtherOut, name="OthersPage")
    with pytest.raises(ValueError, match="OthersPage"):
        page_schema(OtherOut)
