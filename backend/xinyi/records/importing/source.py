"""Reading the import file (CSV or JSON Lines) and writing the reject file.

Lines are read with a bound (:data:`MAX_LINE_CHARS`), so memory stays flat whatever the file
holds. Neither the reject file nor any message ever holds an ID number or any other personal
data: refs that look personal are left out, field names are shown only when tame.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from xinyi.errors import DomainError, ValidationFailed
from xinyi.records.schemas import RecordItemIn

FORMATS = ("csv", "jsonl")
FIELDS = frozenset(RecordItemIn().fields)
REQUIRED = frozenset(n for n, f in RecordItemIn().fields.items() if f.required)
MAX_LINE_CHARS = 65_536  # a valid row needs a few hundred; memory stays flat whatever comes

Reject = tuple[int, str, str]  # a reject file row: line, ref (or ""), reason


class ImportFileError(ValidationFailed):
    code = "import_file_invalid"
    title = "The import file cannot be read"


def format_of(path: Path, fmt: str | None) -> str:
    """The file's format: the one asked for, else guessed from its suffix."""
    if fmt is None:
        fmt = "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "csv"
    if fmt not in FORMATS:
        raise ImportFileError(f"format must be one of {', '.join(FORMATS)}")
    return fmt


# ---- reading the file -----------------------------------------------------------------------

@dataclass(frozen=True)
class Unreadable:
    """A row that is not a record at all (bad JSON, wrong number of CSV columns)."""

    reason: str


_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")


def _safe_name(name: Any) -> str:
    """A column or field name as it may appear in a message: only tame identifiers."""
    return name if isinstance(name, str) and _SAFE_NAME.fullmatch(name) else "(unnamed)"


def _lines(fh: IO[str]) -> Iterator[str | None]:
    """The file's lines, or None for one longer than :data:`MAX_LINE_CHARS`, which is read
    past in pieces and never held whole. Two characters of room for the terminator: a line
    of exactly the limit ending in CRLF comes whole, never split into a line and a blank."""
    while text := fh.readline(MAX_LINE_CHARS + 2):
        if len(text.rstrip("\r\n")) > MAX_LINE_CHARS:
            while text and not text.endswith(("\n", "\r")):
                text = fh.readline(MAX_LINE_CHARS)
            yield None
        else:
            yield text


def _csv_lines(fh: IO[str]) -> Iterator[str]:
    for number, text in enumerate(_lines(fh), start=1):
        if text is None:
            raise ImportFileError(f"line {number} is longer than {MAX_LINE_CHARS:,} characters; "
                                  "is the file CSV with one record per line?")
        yield text


def _csv_rows(fh: IO[str]) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(_csv_lines(fh))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    unknown = [h for h in header if h not in FIELDS]
    missing = sorted(REQUIRED - set(header))
    if unknown or missing or len(set(header)) != len(header):
        raise ImportFileError(
            "CSV header must name the columns " + ",".join(sorted(FIELDS))
            + (f"; unknown: {', '.join(_safe_name(h) for h in unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + ("; a column is repeated" if len(set(header)) != len(header) else ""))
    width = len(header)
    optional = [h for h in header if h not in REQUIRED]
    previous = reader.line_num
    for cells in reader:
        line, previous = previous + 1, reader.line_num
        if not cells:
            continue  # a blank line is no row
        if len(cells) != width:
            yield line, Unreadable(f"the row has {len(cells)} columns, the header {width}")
            continue
        raw = dict(zip(header, cells, strict=True))
        for name in optional:  # an empty optional cell means "not given"
            if raw[name] == "":
                del raw[name]
        yield line, raw


def _jsonl_rows(fh: IO[str]) -> Iterator[tuple[int, Any]]:
    for line, text in enumerate(_lines(fh), start=1):
        if text is None:
            yield line, Unreadable(f"the line is longer than {MAX_LINE_CHARS:,} characters")
            continue
        if not text.strip():
            continue
        try:
            yield line, json.loads(text)
        except (ValueError, RecursionError):
            yield line, Unreadable("the line is not valid JSON")


def rows(fh: IO[str], fmt: str) -> Iterator[tuple[int, Any]]:
    """(line number, raw row) for each row of the file; an :class:`Unreadable` for a bad one."""
    return _csv_rows(fh) if fmt == "csv" else _jsonl_rows(fh)


# ---- rejects: never personal data ------------------------------------------------------------

_REF = re.compile(r"[A-Za-z0-9._:/-]{1,128}")  # the schema's ref rule, as a full match
_PERSONAL = (
    re.compile(r"(?<!\d)\d{6}(?:19|20)\d{2}[01]\d[0-3]\d\d{3}[\dXx](?!\d)"),  # letters around too
    re.compile(r"(?<![\d.])1[3-9]\d{9}(?![\d.])"),
)


def safe_ref(raw: Any) -> str:
    """The row's ref for the reject file, or "" if it is not a valid ref or looks personal."""
    ref = raw.get("ref") if isinstance(raw, dict) else None
    if not isinstance(ref, str) or not _REF.fullmatch(ref):
        return ""
    if any(p.search(ref) for p in _PERSONAL) or ref == raw.get("id_number"):
        return ""
    return ref


def reason(err: DomainError) -> str:
    """The reject file's reason for ``err``: its code and each field's messages."""
    parts = [f"{_safe_name(e.get('field'))}: {' '.join(str(m) for m in e.get('messages', []))}"
             for e in err.errors or []]
    return f"{err.code}: {'; '.join(parts) if parts else err.detail}"


class RejectFile:
    """The reject file (line, ref, reason), or nowhere when no path is given."""

    def __init__(self, path: Path | None) -> None:
        self._fh = path.open("w", newline="", encoding="utf-8") if path else None
        self._writer = csv.writer(self._fh) if self._fh else None
        if self._writer:
            self._writer.writerow(["line", "ref", "reason"])

    def write(self, rejects: list[Reject]) -> None:
        if self._writer:
            self._writer.writerows(sorted(rejects))

    def close(self) -> None:
        if self._fh:
            self._fh.close()
