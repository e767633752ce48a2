"""The export document's pieces without I/O: the registry and the schema agree, values become
plain JSON, and CSV cells are safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from xinyi.exports import document
from xinyi.exports.sections import SECTIONS
from xinyi.jsonable import plain, row


def test_every_registered_section_is_in_the_schema_and_required_and_nothing_else() -> None:
    schema = document.schema()
    names = [name for name, _ in SECTIONS]
    assert len(set(names)) == len(names)
    assert set(schema["properties"]) == {"schema_version", "generated_at", *names}
    assert schema["required"] == ["schema_version", "generated_at", *names]
    assert schema["properties"]["schema_version"] == {"const": document.SCHEMA_VERSION}


def test_plain_gives_json_values() -> None:
    some = uuid.uuid4()
    east8 = timezone(timedelta(hours=8))
    assert plain({"id": some, "at": datetime(2026, 12, 1, 8, 0, tzinfo=east8),
                  "on": date(2026, 12, 1), "hash": b"\x00\xff", "list": (1, None)}) == {
        "id": str(some), "at": "2026-12-01T00:00:00+00:00", "on": "2026-12-01",
        "hash": "00ff", "list": [1, None]}
    with pytest.raises(TypeError):
        plain(object())

    class Thing:
        a, b = 1, datetime(2026, 1, 1, tzinfo=UTC)

    assert row(Thing(), "a", "b", c="x") == {"a": 1, "b": "2026-01-01T00:00:00+00:00",
                                             "c": "x"}


def test_a_csv_has_a_bom_the_schemas_columns_and_defused_formulas() -> None:
    rows = [{"id": "n-1", "template": "=HYPERLINK(\"x\")", "text": "通知", "params": {"a": "1"},
             "ref": None, "created_at": "2026-12-01T00:00:00+00:00", "read_at": "-1"}]
    raw = document.to_csv("notifications", rows)
    assert raw.startswith(b"\xef\xbb\xbf")
    [header, *body] = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert header == ["id", "template", "text", "params", "ref", "created_at", "read_at"]
    assert body == [["n-1", "'=HYPERLINK(\"x\")", "通知", '{"a": "1"}', "",
                     "2026-12-01T00:00:00+00:00", "'-1"]]
    one = document.to_csv("score_history", [])
    assert one.decode("utf-8-sig").splitlines() == ["score,tier,computed_at"]


def test_building_stops_at_the_section_that_passes_the_row_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[str] = []

    def section(name: str, value: Any) -> Any:
        def read_it(*_args: Any) -> Any:
            read.append(name)
            return value
        return read_it

    monkeypatch.setattr(document, "SECTIONS", [
        ("profile", section("profile", {"x": 1})), ("records", section("records", [1, 2])),
        ("notifications", section("notifications", [3]))])
    now = datetime(2026, 12, 1, tzinfo=UTC)
    args: Any = (None, None, uuid.uuid4(), b"")
    with pytest.raises(document.TooManyRows):
        document.build(*args, now=now, max_rows=2)
    assert read == ["profile", "records"]  # the rest is never read
    read.clear()
    built = document.build(*args, now=now, max_rows=4)
    assert built["notifications"] == [3] and read == ["profile", "records", "notifications"]
