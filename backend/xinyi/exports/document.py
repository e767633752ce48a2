"""The export document: every section for one citizen, as JSON and as a ZIP of CSVs.

The JSON document follows ``export.schema.json`` (JSON Schema draft 2020-12, served at
``GET /v1/export-schema``). The ZIP holds that same document (``export.json``) and one CSV per
section for spreadsheets: UTF-8 with a byte-order mark (so Excel reads Chinese), a header row
in the schema's column order, nested values as JSON text in their cell.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy.orm import Session

from xinyi.deps import Deps
from xinyi.exports.sections import SECTIONS
from xinyi.timeutil import CHINA

SCHEMA_VERSION = "1"
SCHEMA_FILE = "export.schema.json"
# A cell a spreadsheet would run as a formula (CSV injection) starts with one of these; such
# a text cell gets a leading apostrophe in the CSV (export.json keeps the exact value).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@cache
def schema_text() -> str:
    return resources.files("xinyi.exports").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_text())
    return loaded


class TooManyRows(Exception):
    """The sections read so far already hold more than the rows allowed."""

    def __init__(self, rows: int) -> None:
        super().__init__(rows)
        self.rows = rows


def _rows(value: Any) -> int:
    return len(value) if isinstance(value, list) else 1


def build(session: Session, deps: Deps, account_id: uuid.UUID, bidx: bytes, *,
          now: datetime, max_rows: int | None = None) -> dict[str, Any]:
    """Every section for this citizen, in registry order, read in the caller's unit. With
    ``max_rows``, stops at the first section that takes the total past it (TooManyRows)
    instead of reading the rest."""
    document: dict[str, Any] = {"schema_version": SCHEMA_VERSION,
                                "generated_at": now.astimezone(UTC).isoformat()}
    rows = 0
    for name, section in SECTIONS:
        document[name] = section(session, deps, account_id, bidx)
        rows += _rows(document[name])
        if max_rows is not None and rows > max_rows:
            raise TooManyRows(rows)
    return document


def to_json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


def _columns(name: str, rows: list[Mapping[str, Any]]) -> list[str]:
    section = schema().get("properties", {}).get(name, {})
    described = section.get("items", section).get("properties")
    if described:
        return list(described)
    seen: dict[str, None] = {}
    for r in rows:
        seen.update(dict.fromkeys(r))
    return list(seen)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    elif isinstance(value, str):
        text = value
    else:
        return str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(name: str, value: Any) -> bytes:
    rows: list[Mapping[str, Any]] = value if isinstance(value, list) else [value]
    columns = _columns(name, rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_cell(r.get(c)) for c in columns])
    return out.getvalue().encode("utf-8-sig")


def to_zip(document: Mapping[str, Any]) -> bytes:
    stamp = datetime.fromisoformat(document["generated_at"]).astimezone(CHINA)
    date_time = (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        def put(filename: str, data: bytes) -> None:
            info = zipfile.ZipInfo(filename, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)

        put("export.json", to_json(document))
        for name, _ in SECTIONS:
            put(f"{name}.csv", to_csv(name, document[name]))
    return buffer.getvalue()
