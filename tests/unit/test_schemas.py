"""Shared schemas: the page schema of a list endpoint (one class per item schema), and fields
that take exactly what the OpenAPI document's types allow."""

from __future__ import annotations

import pytest
from marshmallow import Schema, ValidationError, fields

from xinyi.schemas import JsonBoolean, StrictSchema, WholeNumber, page_schema


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


class Numbers(StrictSchema):
    count = WholeNumber()
    flag = JsonBoolean()


@pytest.mark.parametrize(("sent", "loaded"), [(9, 9), (9.0, 9), (-600.0, -600), (0, 0)])
def test_a_whole_number_is_any_json_integer(sent: object, loaded: int) -> None:
    """JSON Schema's integer includes 9.0 (JSON has one number type): schemathesis sends it."""
    assert Numbers().load({"count": sent}) == {"count": loaded}


@pytest.mark.parametrize("sent", [9.5, "9", True, None, float("inf")])
def test_a_whole_number_is_nothing_else(sent: object) -> None:
    with pytest.raises(ValidationError):
        Numbers().load({"count": sent})


@pytest.mark.parametrize("sent", [0, 1, "true", "yes", None])
def test_a_json_boolean_is_only_true_or_false(sent: object) -> None:
    assert Numbers().load({"flag": True}) == {"flag": True}
    with pytest.raises(ValidationError):
        Numbers().load({"flag": sent})
