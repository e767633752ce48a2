"""Bulk import of provider records from a CSV or JSON Lines file (``xinyi import-records``).

Every row gets exactly the checks of ``POST /v1/provider/records:batch`` (one shared
:func:`~xinyi.records.service.validate_item`) and the record the API would write: the same
content hash, catalogue snapshot, archive of records already past display, list entry with its
``list.entered`` event, and score. What differs is the shape of the work:

* the file is streamed in chunks (``batch_size`` rows), so memory stays flat whatever its size;
  a reader thread validates the next chunk while the database writes the current one;
* on PostgreSQL each chunk looks its refs and new subjects up first (one array parameter each,
  probed through the unique indexes), then copies (``COPY``) only what is new straight into
  ``subjects``, ``credit_records``, ``list_entries`` and ``outbox_events``, inside a savepoint,
  and commits. Every constraint is checked by PostgreSQL as for any insert. If a concurrent
  import of the same provider wrote one of the refs or subjects after the look-up (a unique
  violation) or the two deadlock, the chunk goes back to the savepoint and is redone the
  staged way below (``ImportSummary.redone`` counts those chunks);
* the staged way (SQLite, and PostgreSQL's fallback): the chunk goes into a temporary table
  (``COPY`` / ``executemany``) and is written with set-based ``INSERT … SELECT … ON CONFLICT
  DO NOTHING``. Either way the unique ``(provider_id, provider_ref)`` makes a re-run create
  nothing twice, and a ref already used with other content is rejected as
  ``duplicate_reference`` (the original stays); the same ref twice in one file counts once
  (the first; a later one is held, as by the API, to the record that then has the ref, and is
  a ``duplicate_reference`` if its content differs). Both ways insert
  subjects in key order and records in ref order, so concurrent imports take their row locks
  in the same order;
* new records, list entries and events get time-ordered (version 7) UUIDs, so their
  primary-key indexes grow at the right edge;
* per-row steps that dominate the API's cost have faster equivalents here, each held to the
  original by a test: :class:`CachedIdParser` (``IdNumber.parse``), :class:`FastItemLoader`
  (the schema load) and :func:`content_hash`; only new subjects have their ID number encrypted;
* scores of every subject the file names are recomputed set-based once, at the end
  (:func:`~xinyi.scoring.service.recompute_subjects`); a crash before that leaves them to the
  re-run, which recomputes them even when every row is unchanged.

Bad rows go to a reject file (line, ref, reason) and never stop the import. Neither the reject
file nor the log ever holds an ID number or any other personal data.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import logging
import os
import queue
import re
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime
from json.encoder import encode_basestring
from pathlib import Path
from typing import IO, Any

import psycopg
from marshmallow import RAISE, fields, missing
from marshmallow.exceptions import MarshmallowError
from marshmallow.validate import Validator
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    case,
    delete,
    insert,
    literal,
    null,
    select,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError

from xinyi.auth.models import ApiClient
from xinyi.db import UTCDateTime
from xinyi.dbutil import insert_for
from xinyi.deps import Deps
from xinyi.errors import DomainError, NotFound, ValidationFailed
from xinyi.outbox.models import OutboxEvent
from xinyi.pii import IdNumber
from xinyi.records.models import CatalogueItem, CreditRecord, ListEntry
from xinyi.records.schemas import OccurredAt, RecordItemIn
from xinyi.records.service import (
    DuplicateReference,
    _catalogue,
    _list_of,
    load_item,
    validate_item,
)
from xinyi.scoring import rules
from xinyi.scoring.service import recompute_subjects
from xinyi.subjects.models import Subject
from xinyi.subjects.service import subject_bidx
from xinyi.timeutil import china_today

log = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl")
FIELDS = frozenset(RecordItemIn().fields)
REQUIRED = frozenset(n for n, f in RecordItemIn().fields.items() if f.required)


class ImportFileError(ValidationFailed):
    code = "import_file_invalid"
    title = "The import file cannot be read"


class ProviderDisabled(ValidationFailed):
    code = "provider_disabled"
    title = "This data provider is disabled"


@dataclass
class ImportSummary:
    read: int = 0
    created: int = 0
    unchanged: int = 0
    rejected: int = 0
    seconds: float = 0.0
    redone: int = 0  # chunks redone with ON CONFLICT after meeting a concurrent writer
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rows_per_second(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        why = ", ".join(f"{code} {n}" for code, n in sorted(self.reasons.items()))
        return (f"read {self.read}, created {self.created}, unchanged {self.unchanged}, "
                f"rejected {self.rejected}{f' ({why})' if why else ''} "
                f"in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s)")


# ---- ID numbers: IdNumber.parse with the slow part cached -----------------------------------

_PLAIN_ID = re.compile(r"[0-9]{17}[0-9X]")


class CachedIdParser:
    """Accepts exactly what :meth:`IdNumber.parse` accepts, faster on repeated regions.

    python-stdnum spends most of its time looking the 6-digit region code up in its database
    (``ric.get_birth_place``); that answer depends only on the code and the birth year, so it
    is cached per (code, year). Only plain 18-character ASCII numbers with a good check digit
    and a plausible birth date take this path; everything else, and every refusal, goes to
    ``IdNumber.parse`` itself, so the accepted set and every error message stay the same.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._regions: dict[tuple[str, int], bool] = {}
        self._max = max_entries

    def __call__(self, raw: str, today: date) -> IdNumber:
        if type(raw) is str and len(raw) == 18 and _PLAIN_ID.fullmatch(raw):
            year = int(raw[6:10])
            if raw[17] == ric.calc_check_digit(raw) and year >= 1900:
                try:
                    born: date | None = date(year, int(raw[10:12]), int(raw[12:14]))
                except ValueError:
                    born = None
                if born is not None and born <= today and self._region_known(raw, year):
                    return IdNumber(raw)
        return IdNumber.parse(raw, today=today)

    def _region_known(self, number: str, year: int) -> bool:
        key = (number[:6], year)
        known = self._regions.get(key)
        if known is None:
            try:
                ric.get_birth_place(number)  # depends on the region code and birth year only
                known = True
            except StdnumError:
                known = False
            if len(self._regions) >= self._max:
                self._regions.clear()
            self._regions[key] = known
        return known


# ---- reading the file -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Unreadable:
    """A row that is not a record at all (bad JSON, wrong number of CSV columns)."""

    reason: str


_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")


def _safe_name(name: Any) -> str:
    """A column or field name as it may appear in a message: only tame identifiers."""
    return name if isinstance(name, str) and _SAFE_NAME.fullmatch(name) else "(unnamed)"


MAX_LINE_CHARS = 65_536  # a valid row needs a few hundred; memory stays flat whatever comes


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
            yield line, _Unreadable(f"the row has {len(cells)} columns, the header {width}")
            continue
        raw = dict(zip(header, cells, strict=True))
        for name in optional:  # an empty optional cell means "not given"
            if raw[name] == "":
                del raw[name]
        yield line, raw


def _jsonl_rows(fh: IO[str]) -> Iterator[tuple[int, Any]]:
    for line, text in enumerate(_lines(fh), start=1):
        if text is None:
            yield line, _Unreadable(f"the line is longer than {MAX_LINE_CHARS:,} characters")
            continue
        if not text.strip():
            continue
        try:
            yield line, json.loads(text)
        except (ValueError, RecursionError):
            yield line, _Unreadable("the line is not valid JSON")


def _rows(fh: IO[str], fmt: str) -> Iterator[tuple[int, Any]]:
    return _csv_rows(fh) if fmt == "csv" else _jsonl_rows(fh)


# ---- rejects: never personal data ------------------------------------------------------------

_REF = re.compile(r"[A-Za-z0-9._:/-]{1,128}")  # the schema's ref rule, as a full match
_PERSONAL = (
    re.compile(r"(?<!\d)\d{6}(?:19|20)\d{2}[01]\d[0-3]\d\d{3}[\dXx](?!\d)"),  # letters around too
    re.compile(r"(?<![\d.])1[3-9]\d{9}(?![\d.])"),
)


def _safe_ref(raw: Any) -> str:
    """The row's ref for the reject file, or "" if it is not a valid ref or looks personal."""
    ref = raw.get("ref") if isinstance(raw, dict) else None
    if not isinstance(ref, str) or not _REF.fullmatch(ref):
        return ""
    if any(p.search(ref) for p in _PERSONAL) or ref == raw.get("id_number"):
        return ""
    return ref


def _reason(err: DomainError) -> str:
    parts = [f"{_safe_name(e.get('field'))}: {' '.join(str(m) for m in e.get('messages', []))}"
             for e in err.errors or []]
    return f"{err.code}: {'; '.join(parts) if parts else err.detail}"


class _RejectFile:
    def __init__(self, path: Path | None) -> None:
        self._fh = path.open("w", newline="", encoding="utf-8") if path else None
        self._writer = csv.writer(self._fh) if self._fh else None
        if self._writer:
            self._writer.writerow(["line", "ref", "reason"])

    def write(self, rows: list[tuple[int, str, str]]) -> None:
        if self._writer:
            self._writer.writerows(sorted(rows))

    def close(self) -> None:
        if self._fh:
            self._fh.close()


# ---- staging tables (temporary: they live in the import's connection) --------------------------

_META = MetaData()
STAGE = Table(
    "xinyi_import_stage", _META,
    Column("line", Integer, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("subject_bidx", LargeBinary, nullable=False),
    Column("ref", String, nullable=False),
    Column("content_hash", LargeBinary, nullable=False),
    Column("catalogue_code", String, nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("summary", String, nullable=False),
    Column("occupation", String),
    Column("points", Integer, nullable=False),
    Column("display_months", Integer, nullable=False),
    Column("repair_after_months", Integer),
    Column("display_until", Date, nullable=False),
    Column("repair_from", Date),
    Column("status", String, nullable=False),
    Column("new_subject", Boolean, nullable=False),  # the chunk's first row for this person
    Column("list", String),
    Column("list_entry_id", Uuid),
    Column("event_id", Uuid),
    Column("event_payload", JSON),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)
NEW_SUBJECTS = Table(
    "xinyi_import_subjects", _META,
    Column("bidx", LargeBinary, nullable=False),
    Column("id_number_enc", LargeBinary, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)
TOUCHED = Table(
    "xinyi_import_touched", _META,
    Column("bidx", LargeBinary, nullable=False),
    prefixes=["TEMPORARY"],
)
_TABLES = (STAGE, NEW_SUBJECTS, TOUCHED)

# COPY text format: backslash escapes, \N is NULL, bytea as \x<hex> (backslash doubled).
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value).translate(_COPY_ESCAPES)
    return str(value)


def _text_array(values: list[str]) -> str:
    """A text[] literal of strings (every element quoted, so none reads as NULL)."""
    plain = "".join(values)
    if "\\" in plain or '"' in plain:
        values = [v.replace("\\", "\\\\").replace('"', '\\"') for v in values]
    return '{"' + '","'.join(values) + '"}'


def _bytea_array(values: Iterable[bytes]) -> str:
    """A bytea[] literal."""
    return "{" + ",".join([f'"\\\\x{b.hex()}"' for b in values]) + "}"


def _copy_block(rows: list[tuple[Any, ...]]) -> str:
    return "".join("\t".join([_copy_text(v) for v in row]) + "\n" for row in rows)


# ---- faster equivalents of per-row steps (each held to the original by a test) ----------------

def _fast_load_plan() -> tuple[tuple[str, Any, bool, tuple[Any, ...]], ...] | None:
    """How to load a plainly well-formed row without marshmallow's per-field machinery.

    None when :class:`RecordItemIn` holds anything this path does not reproduce (another hook,
    field type, data key, default, a plain-function validator): then every row goes to
    :func:`load_item`, slower but never different.
    """
    schema = RecordItemIn()
    hooks = {tag: [h[0] for h in found]
             for tag, found in getattr(schema, "_hooks", {}).items() if found}
    if hooks != {"pre_load": ["_refuse_unstorable_text"]} or schema.unknown != RAISE:
        return None
    plan = []
    for name, f in schema.load_fields.items():
        if (type(f) not in (fields.String, OccurredAt) or f.data_key is not None
                or f.attribute is not None or getattr(f, "pre_load", None)
                or getattr(f, "post_load", None) or f.load_default is not missing
                or not all(isinstance(v, Validator) for v in f.validators)):
            return None
        plan.append((name, None if type(f) is fields.String else f, f.allow_none,
                     tuple(f.validators)))
    return tuple(plan)


class FastItemLoader:
    """:func:`load_item` for rows of plain strings, without marshmallow's per-field overhead.

    It runs the schema's own validators and date parser; it only skips the generic machinery,
    and returns the same dict. Any row it is not sure of (a missing or unknown field, a
    non-string, NUL or a lone surrogate, a failed check) goes to :func:`load_item`, so what is
    accepted and every error message stay those of the API.
    """

    def __init__(self) -> None:
        self.plan = _fast_load_plan()
        self._names = FIELDS
        self._required = REQUIRED

    def __call__(self, raw: dict[str, Any]) -> dict[str, Any]:
        item = self.fast(raw) if self.plan is not None else None
        return item if item is not None else load_item(raw)

    def fast(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        if self.plan is None or not self._required <= raw.keys() <= self._names:
            return None
        out: dict[str, Any] = {}
        try:
            for name, parser, allow_none, validators in self.plan:
                if name not in raw:
                    continue  # optional (the required ones were checked above)
                value = raw[name]
                if value is None:
                    if not allow_none:
                        return None
                    out[name] = None
                    continue
                if type(value) is not str or "\x00" in value:
                    return None
                value.encode()  # a lone surrogate raises: the schema refuses it
                loaded = value if parser is None else parser._deserialize(value, name, raw)
                for check in validators:
                    check(loaded)
                out[name] = loaded
        except (MarshmallowError, UnicodeEncodeError):
            return None
        return out


def content_hash(bidx: bytes, item: Mapping[str, Any]) -> bytes:
    """``records.service._content_hash`` without building and sorting a dict per row.

    The same text ``json.dumps(..., sort_keys=True, ensure_ascii=False)`` writes: keys in
    sorted order, default separators, strings through the same C encoder.
    """
    occupation = item.get("occupation")
    text = ('{"code": ' + encode_basestring(item["catalogue_code"])
            + ', "occupation": '
            + ("null" if occupation is None else encode_basestring(occupation))
            + ', "on": "' + item["occurred_at"].isoformat() + '", "subject": "' + bidx.hex()
            + '", "summary": ' + encode_basestring(item["summary"]) + "}")
    return hashlib.sha256(text.encode()).digest()


class _Ids:
    """Time-ordered (version 7, RFC 9562) UUIDs as integers, for the rows an import creates.

    48 bits of Unix milliseconds, then a 12-bit counter that restarts each millisecond, then
    62 random bits (one ``os.urandom`` call per 4,096 ids). Ids from one generator increase
    strictly, even if the clock stalls or steps back, so the primary-key indexes of the new
    rows grow at their right edge instead of splitting pages all over the tree.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._at = 0
        self._ms = 0
        self._seq = 0

    def next(self) -> int:
        ms = time.time_ns() // 1_000_000
        if ms > self._ms:
            self._ms, self._seq = ms, 0
        else:
            self._seq += 1
            if self._seq > 0xFFF:  # 4,096 ids in one millisecond: borrow the next one
                self._ms, self._seq = self._ms + 1, 0
        if self._at >= len(self._buf):
            self._buf, self._at = os.urandom(8 * 4096), 0
        rand = int.from_bytes(self._buf[self._at:self._at + 8]) & 0x3FFF_FFFF_FFFF_FFFF
        self._at += 8
        return (self._ms << 80) | ((0x7000 | self._seq) << 64) | 0x8000_0000_0000_0000 | rand


# ---- one chunk, prepared by the reader thread --------------------------------------------------

@dataclass
class _Chunk:
    rows: list[tuple[Any, ...]] = field(default_factory=list)  # STAGE column order (not PG)
    # PostgreSQL: one entry per staged row in each of these lists. ``copy`` holds the row as
    # COPY text for ``credit_records`` (columns ``_RECORD_COLUMNS``); ``extra`` the rest of its
    # STAGE line (new_subject, list, list_entry_id, event_id, event_payload).
    copy: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    bidxs: list[bytes] = field(default_factory=list)  # each staged row's subject
    digests: list[bytes] = field(default_factory=list)
    # (index of the staged row, list_entries COPY line, outbox_events COPY line)
    listed: list[tuple[int, str, str]] = field(default_factory=list)
    staged: int = 0
    ids: dict[bytes, str] = field(default_factory=dict)  # bidx -> ID number, everyone named
    rejects: list[tuple[int, str, str]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    read: int = 0
    # (line, ref, ref for the reject file, content hash): rows whose ref an earlier row of the
    # chunk has; judged once that one is written (:meth:`_Writer.judge_repeats`)
    repeats: list[tuple[int, str, str, bytes]] = field(default_factory=list)

    def reject(self, line: int, ref: str, err: DomainError) -> None:
        self.rejects.append((line, ref, _reason(err)))
        self.reasons[err.code] += 1


@dataclass(frozen=True)
class _Terms:
    """What ``_snapshot`` fixes onto a record, and whether it is already past display."""

    points: int
    display_months: int
    repair_after_months: int | None
    display_until: date
    repair_from: date | None
    status: str
    listed: str | None
    copy_head: str  # catalogue_code, occurred_on as COPY text
    copy_tail: str  # points ... status, then provider_id ... updated_at as COPY text


def _esc(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


_NULL4 = "\\N\t\\N\t\\N\t\\N"
_NOT_NEW, _NEW = "\tf\t" + _NULL4, "\tt\t" + _NULL4

# The columns of a COPY straight into credit_records: STAGE's id ... status first (a STAGE
# line is the line number, these 14 fields and the row's ``extra``), then the constant ones.
_RECORD_COLUMNS = ("id", "subject_bidx", "provider_ref", "content_hash", "catalogue_code",
                   "occurred_on", "summary", "occupation", "points", "display_months",
                   "repair_after_months", "display_until", "repair_from", "status",
                   "provider_id", "archived_reason", "archived_at", "created_at", "updated_at")
_RECORD_CONSTANTS = 5  # provider_id ... updated_at


_PEOPLE_MAX = 250_000  # subject keys the writer remembers per set (~25 MB); then it forgets
# Seconds; sys.setswitchinterval during an import (see _run). Process-wide: `xinyi
# import-records`, its only caller outside tests, runs one import per process.
SWITCH_INTERVAL = 0.001


class _Preparer:
    """Pure per-row work: validation, blind index, hash, snapshot. No database."""

    def __init__(self, deps: Deps, catalogue: Mapping[str, CatalogueItem], today: date,
                 for_copy: bool, provider_id: uuid.UUID | None = None,
                 now: datetime | None = None) -> None:
        self._deps = deps
        self._catalogue = catalogue
        self._today = today
        self._for_copy = for_copy
        # COPY text of what every new record, list entry and event of this import shares.
        self._now = "" if now is None else now.isoformat()
        provider = "" if provider_id is None else provider_id.hex
        self._record_tail = {
            "active": f"\t{provider}\t\\N\t\\N\t{self._now}\t{self._now}",
            "archived": f"\t{provider}\texpired\t{self._now}\t{self._now}\t{self._now}"}
        self._legal_basis = {code: _esc(item.legal_basis) for code, item in catalogue.items()
                             if item.legal_basis is not None}
        self._parse_id = CachedIdParser()
        self._load = FastItemLoader()
        self._ids = _Ids()
        self._lists = {code: _list_of(item) for code, item in catalogue.items()}
        self._terms: dict[tuple[str, date], _Terms] = {}
        # Cleared while the database side runs Python-heavy code: otherwise each of its GIL
        # hand-overs (one per os.urandom in encryption, say) waits for this thread.
        self.go = threading.Event()
        self.go.set()
        self.line = 0  # the last line read, for a message about an unreadable file

    def terms(self, item: CatalogueItem, occurred_on: date) -> _Terms:
        key = (item.code, occurred_on)
        terms = self._terms.get(key)
        if terms is None:
            until = rules.display_until(occurred_on, item.display_months)
            repair = (None if item.repair_after_months is None
                      else rules.earliest_repair(occurred_on, item.repair_after_months))
            expired = until <= self._today
            status = "archived" if expired else "active"
            numbers = (item.points, item.display_months, item.repair_after_months, until,
                       repair, status)
            terms = _Terms(item.points, item.display_months, item.repair_after_months, until,
                           repair, status, None if expired else self._lists[item.code],
                           _copy_text(item.code) + "\t" + occurred_on.isoformat(),
                           "\t".join(_copy_text(v) for v in numbers)
                           + self._record_tail[status])
            if len(self._terms) >= 100_000:
                self._terms.clear()
            self._terms[key] = terms
        return terms

    def chunks(self, rows: Iterator[tuple[int, Any]], size: int) -> Iterator[_Chunk]:
        chunk = _Chunk()
        seen: set[str] = set()  # refs inside this chunk
        for line, raw in rows:
            if not self.go.is_set():
                self.go.wait()
            self.line = line
            chunk.read += 1
            self._one(chunk, seen, line, raw)
            if chunk.read >= size:
                yield chunk
                chunk, seen = _Chunk(), set()
        if chunk.read:
            yield chunk

    def _one(self, chunk: _Chunk, seen: set[str], line: int, raw: Any) -> None:
        if isinstance(raw, _Unreadable):
            chunk.reject(line, "", ValidationFailed(raw.reason))
            return
        try:
            item, id_number, cat = validate_item(raw, self._catalogue, self._today,
                                                 self._parse_id, self._load)
        except DomainError as err:
            chunk.reject(line, _safe_ref(raw), err)
            return
        ref: str = item["ref"]
        bidx = subject_bidx(self._deps, id_number)
        digest = content_hash(bidx, item)
        if ref in seen:  # the same ref twice in one chunk: the first one counts
            chunk.repeats.append((line, ref, _safe_ref(raw), digest))
            return
        seen.add(ref)
        new_subject = bidx not in chunk.ids
        if new_subject:
            chunk.ids[bidx] = id_number.value
        chunk.staged += 1
        terms = self.terms(cat, item["occurred_at"])
        record_id = self._ids.next()
        listed = terms.listed
        entry_id = event_id = 0
        payload: dict[str, str] | None = None
        if listed is not None:
            entry_id, event_id = self._ids.next(), self._ids.next()
            payload = {"list": listed, "record_id": str(uuid.UUID(int=record_id)),
                       "catalogue_code": cat.code}
        occupation = item.get("occupation")
        if self._for_copy:
            bidx_text = bidx.hex()
            chunk.copy.append(
                f"{record_id:032x}\t\\\\x{bidx_text}\t{_esc(ref)}\t\\\\x{digest.hex()}\t"
                f"{terms.copy_head}\t{_esc(item['summary'])}\t"
                + ("\\N" if occupation is None else _esc(occupation))
                + "\t" + terms.copy_tail + "\n")
            chunk.lines.append(line)
            chunk.refs.append(ref)
            chunk.bidxs.append(bidx)
            chunk.digests.append(digest)
            if payload is None:
                chunk.extra.append(_NEW if new_subject else _NOT_NEW)
            else:
                event = _esc(json.dumps(payload))
                chunk.extra.append(("\tt\t" if new_subject else "\tf\t")
                                   + f"{listed}\t{entry_id:032x}\t{event_id:032x}\t{event}")
                chunk.listed.append((
                    len(chunk.copy) - 1,
                    f"{entry_id:032x}\t\\\\x{bidx_text}\t{record_id:032x}\t{listed}\t"
                    f"{_esc(cat.code)}\t{self._legal_basis[cat.code]}\t"
                    f"{self._now}\n",
                    f"{event_id:032x}\tlist.entered\t{event}\t{self._now}\n"))
        else:
            chunk.rows.append((
                line, uuid.UUID(int=record_id), bidx, ref, digest, cat.code,
                item["occurred_at"], item["summary"], occupation, terms.points,
                terms.display_months, terms.repair_after_months, terms.display_until,
                terms.repair_from, terms.status, new_subject, listed,
                None if payload is None else uuid.UUID(int=entry_id),
                None if payload is None else uuid.UUID(int=event_id), payload))


_DONE = object()


class _Reader(threading.Thread):
    """Prepares chunks ahead of the database (at most ``depth`` waiting: memory stays flat)."""

    def __init__(self, produce: Callable[[], Iterator[_Chunk]], depth: int = 1) -> None:
        super().__init__(name="xinyi-import-reader", daemon=True)
        self._produce = produce
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            for chunk in self._produce():
                if not self._put(chunk):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the importing thread, which raises it
            self._put(exc)

    def __iter__(self) -> Iterator[_Chunk]:
        while True:
            item = self.queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


# ---- the database side -----------------------------------------------------------------------

class _Writer:
    """Set-based writes of one staged chunk; the same statements on every backend."""

    def __init__(self, session: Session, deps: Deps, provider_id: uuid.UUID, now: datetime,
                 catalogue: Mapping[str, CatalogueItem], reader_go: threading.Event) -> None:
        self.session = session
        self.reader_go = reader_go
        self.deps = deps
        self.provider_id = provider_id
        self.now = now
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self._rerun = False  # the last chunk created nothing
        self._now_text = now.isoformat()
        self.fallbacks = 0  # chunks redone the staged way after a concurrent writer
        # Subjects an earlier chunk's direct write found or stored, and put in the touched set:
        # a later chunk need not look them up or add them again. Forgetting costs only that.
        self._stored: set[bytes] = set()
        self._touched: set[bytes] = set()
        self._written: tuple[set[bytes], set[bytes]] = (set(), set())
        self._legal_basis = {code: item.legal_basis for code, item in catalogue.items()
                             if _list_of(item) is not None and item.legal_basis}

    def _conn(self) -> Connection:
        return self.session.connection()

    def create_tables(self) -> None:
        conn = self._conn()
        for table in _TABLES:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")
            conn.execute(CreateTable(table))

    def drop_tables(self) -> None:
        conn = self._conn()
        for table in _TABLES:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")

    def _empty(self, table: Table) -> None:
        # On PostgreSQL every commit empties the staging tables (ON COMMIT DELETE ROWS, cheaper
        # than TRUNCATE); this DELETE matters only when "commit" is a savepoint (tests).
        self._conn().execute(delete(table))

    def _fill(self, table: Table, rows: list[tuple[Any, ...]],
              copy: list[str] | None = None) -> None:
        """Rows into a staging table: COPY (text lines) on PostgreSQL, else executemany."""
        if self.postgres:
            if copy is None:
                copy = [_copy_block(rows)] if rows else []
            self._copy(table.name, tuple(c.name for c in table.columns), copy)
        elif rows:
            names_list = [c.name for c in table.columns]
            self._conn().execute(insert(table), [dict(zip(names_list, row, strict=True))
                                                 for row in rows])

    def write(self, chunk: _Chunk) -> tuple[int, int, list[tuple[int, str, str]]]:
        """Write one chunk; returns (created, unchanged, duplicate-ref rejects).

        PostgreSQL: straight into the real tables (:meth:`_write_direct`) inside a savepoint;
        if a concurrent import took one of the chunk's refs or subjects meanwhile (a unique
        violation) or the two deadlock, back to the savepoint and the staged way, which
        resolves every conflict with ``ON CONFLICT``.
        """
        if not self.postgres:
            return self._write_staged(chunk)
        try:
            with self.session.begin_nested():
                written = self._write_direct(chunk)
            for known, new in zip((self._stored, self._touched), self._written, strict=True):
                if len(known) + len(new) > _PEOPLE_MAX:
                    known.clear()
                known.update(new)
            return written
        except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected) as exc:
            self.fallbacks += 1
            log.warning("records import: a chunk met a concurrent writer; redone with ON "
                        "CONFLICT", extra={"event": "records_import_conflict",
                                           "sqlstate": exc.sqlstate})
        chunk.rows = []
        chunk.copy = [f"{line}\t{record[:-1].rsplit(chr(9), _RECORD_CONSTANTS)[0]}{extra}\n"
                      for line, record, extra in zip(chunk.lines, chunk.copy, chunk.extra,
                                                     strict=True)]
        return self._write_staged(chunk)

    def _copy(self, table: str, columns: tuple[str, ...], lines: list[str]) -> None:
        """COPY text lines into ``table`` on the import's own connection (PostgreSQL)."""
        if not lines:
            return
        driver = self._conn().connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor, cursor.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN") as pipe:
            pipe.write("".join(lines))

    def _write_direct(self, chunk: _Chunk) -> tuple[int, int, list[tuple[int, str, str]]]:
        """No staging table and no speculative insertion: one indexed look-up of the chunk's
        refs (a single array parameter), then ``COPY`` of what is new into the real tables.
        Every constraint is checked by PostgreSQL as for any insert."""
        driver = self._conn().connection.driver_connection
        assert driver is not None
        # One array parameter each (as text: psycopg's list adapter costs ~4 µs a row), probed
        # row by row through the unique indexes: LIMIT 1 keeps the planner from turning the
        # look-up into a join that scans the whole table.
        with driver.cursor() as cursor:
            stored: dict[str, bytes] = dict(cursor.execute(
                "SELECT u.ref, c.content_hash FROM unnest(%s::text[]) AS u(ref) "
                "CROSS JOIN LATERAL (SELECT content_hash FROM credit_records "
                "WHERE provider_id = %s AND provider_ref = u.ref LIMIT 1) AS c",
                (_text_array(chunk.refs), self.provider_id)).fetchall()) if chunk.refs else {}
        unchanged = 0
        rejects: list[tuple[int, str, str]] = []
        refs, bidxs = chunk.refs, chunk.bidxs
        # Refs in code-point order (PostgreSQL's "C" collation, as _insert_records sorts): two
        # imports of one provider take their row locks in the same order. Usually sorted already.
        order: Any = range(len(refs))
        if any(a > b for a, b in itertools.pairwise(refs)):
            order = sorted(order, key=refs.__getitem__)
        if stored:
            new: list[int] = []
            kept: set[bytes] = set()  # whose rows are new or unchanged
            for n in order:
                held = stored.get(refs[n])
                if held is None:
                    new.append(n)
                elif bytes(held) == chunk.digests[n]:
                    unchanged += 1
                    kept.add(bidxs[n])
                else:
                    rejects.append((chunk.lines[n], _safe_ref({"ref": refs[n]}),
                                    _reason(DuplicateReference())))
            keep = set(new)
            records = [chunk.copy[n] for n in new]
            listed = [x for x in chunk.listed if x[0] in keep]
            people = {bidxs[n] for n in new}
            kept |= people
        else:
            records = chunk.copy if type(order) is range else [chunk.copy[n] for n in order]
            listed = chunk.listed
            people = set(bidxs)
            kept = people
        # Only someone with a new record becomes a subject (as through the API: a refused row
        # stores no one); their scores are recomputed at the end with everyone whose row was
        # new or unchanged (see _write_staged).
        people, kept = people - self._stored, kept - self._touched  # new sets: none is shared
        self._written = (people, kept)
        self._copy(TOUCHED.name, ("bidx",), [f"\\\\x{b.hex()}\n" for b in kept])
        if people:
            with driver.cursor() as cursor:
                known = {bytes(b) for (b,) in cursor.execute(
                    "SELECT u.bidx FROM unnest(%s::bytea[]) AS u(bidx) "
                    "CROSS JOIN LATERAL (SELECT FROM subjects WHERE bidx = u.bidx LIMIT 1) AS s",
                    (_bytea_array(people),)).fetchall()}
            missing = sorted(people - known)  # key order: concurrent imports cannot deadlock
            if missing:
                cipher = self.deps.cipher
                self.reader_go.clear()
                try:
                    subjects = [
                        f"\\\\x{bidx.hex()}\t\\\\x"
                        f"{cipher.encrypt(chunk.ids[bidx], context='subjects.id_number').hex()}"
                        f"\t{self._now_text}\n" for bidx in missing]
                finally:
                    self.reader_go.set()
                self._copy("subjects", ("bidx", "id_number_enc", "first_seen_at"), subjects)
        self._copy(CreditRecord.__tablename__, _RECORD_COLUMNS, records)
        if listed:
            self._copy(ListEntry.__tablename__,
                       ("id", "subject_bidx", "record_id", "list", "catalogue_code",
                        "legal_basis", "entered_at"), [entry for _, entry, _ in listed])
            self._copy(OutboxEvent.__tablename__, ("id", "topic", "payload", "created_at"),
                       [event for _, _, event in listed])
        return len(records), unchanged, rejects

    def _write_staged(self, chunk: _Chunk) -> tuple[int, int, list[tuple[int, str, str]]]:
        """Stage and write one chunk with ``ON CONFLICT`` (SQLite; PostgreSQL's fallback)."""
        self._empty(STAGE)
        self._fill(STAGE, chunk.rows, chunk.copy)
        # Every subject the file names, unchanged rows too: a re-run after a crash between a
        # chunk's commit and the final recompute still brings their scores up to date. Those
        # named by an earlier chunk are in already.
        self._conn().execute(insert(TOUCHED).from_select(
            ["bidx"], select(STAGE.c.subject_bidx).where(STAGE.c.new_subject)))
        self._add_subjects(chunk.ids)
        unchanged = 0
        rejects: list[tuple[int, str, str]] = []
        pending = chunk.staged
        if self._rerun:
            # The last chunk was all known (a re-run, a restart): look up first, and insert only
            # if something is new, instead of an insert that conflicts on every row.
            unchanged, rejects = self._classify_existing(drop_existing=False)
            pending -= unchanged + len(rejects)
            if pending and (unchanged or rejects):
                self._drop_existing()
        created = self._insert_records() if pending else 0
        if created < pending:  # refs already used (or used meanwhile by a concurrent import)
            more_unchanged, more_rejects = self._classify_existing(drop_existing=created > 0)
            unchanged += more_unchanged
            rejects += more_rejects
        if created:
            self._enter_lists()
        self._rerun = created == 0
        return created, unchanged, rejects

    def judge_repeats(self, chunk: _Chunk) -> tuple[int, list[tuple[int, str, str]]]:
        """Rows whose ref an earlier row of their chunk has, after the chunk is written: as the
        API would, against the record that now has the ref (that row's, or one stored before
        it with other content). Returns (unchanged, duplicate-ref rejects)."""
        if not chunk.repeats:
            return 0, []
        refs = sorted({ref for _, ref, _, _ in chunk.repeats})
        held: dict[str, bytes] = {}
        for start in range(0, len(refs), 1000):  # within any backend's bound-parameter limit
            held.update((ref, bytes(digest)) for ref, digest in self._conn().execute(
                select(CreditRecord.provider_ref, CreditRecord.content_hash).where(
                    CreditRecord.provider_id == self.provider_id,
                    CreditRecord.provider_ref.in_(refs[start:start + 1000]))))
        unchanged = 0
        rejects: list[tuple[int, str, str]] = []
        for line, ref, safe_ref, digest in chunk.repeats:
            if held.get(ref) == digest:
                unchanged += 1
            else:
                rejects.append((line, safe_ref, _reason(DuplicateReference())))
        return unchanged, rejects

    def _now(self) -> Any:
        return literal(self.now, UTCDateTime())

    def _add_subjects(self, ids: Mapping[bytes, str]) -> None:
        """Subjects not yet known whose row will be new; only their ID numbers are encrypted
        (AES-GCM). A refused row stores no one, as through the API (should a concurrent import
        take the ref between this and the insert, its person stays stored, without a record).

        Each staged row is checked by correlated probes of the primary and unique keys (a join
        could hash every subject or record per chunk).
        """
        if not ids:
            return
        s = STAGE.c
        known = select(Subject.bidx).where(Subject.bidx == s.subject_bidx).exists()
        used = select(CreditRecord.id).where(CreditRecord.provider_id == self.provider_id,
                                             CreditRecord.provider_ref == s.ref).exists()
        missing = [bytes(b) for b in self._conn().scalars(
            select(s.subject_bidx).where(~known, ~used).distinct())]
        cipher = self.deps.cipher
        self.reader_go.clear()
        try:
            rows = [(bidx, cipher.encrypt(ids[bidx], context="subjects.id_number"))
                    for bidx in missing]
        finally:
            self.reader_go.set()
        if not rows:
            return
        self._empty(NEW_SUBJECTS)
        self._fill(NEW_SUBJECTS, rows, [f"\\\\x{bidx.hex()}\t\\\\x{enc.hex()}\n"
                                        for bidx, enc in rows] if self.postgres else None)
        stmt: Any = insert_for(self.session, Subject.__table__)  # type: ignore[arg-type]
        self._conn().execute(stmt.from_select(
            ["bidx", "id_number_enc", "first_seen_at"],
            select(NEW_SUBJECTS.c.bidx, NEW_SUBJECTS.c.id_number_enc, self._now())
            .where(true())  # SQLite needs a WHERE before ON CONFLICT
            .order_by(NEW_SUBJECTS.c.bidx),  # key order: concurrent imports cannot deadlock
        ).on_conflict_do_nothing(index_elements=["bidx"]))

    def _insert_records(self) -> int:
        s = STAGE.c
        archived = s.status == "archived"
        now = self._now()
        columns = ["id", "subject_bidx", "provider_id", "provider_ref", "content_hash",
                   "catalogue_code", "occurred_on", "summary", "occupation", "points",
                   "display_months", "repair_after_months", "display_until", "repair_from",
                   "status", "archived_reason", "archived_at", "created_at", "updated_at"]
        rows = (select(s.id, s.subject_bidx, literal(self.provider_id, Uuid()), s.ref,
                       s.content_hash, s.catalogue_code, s.occurred_on, s.summary, s.occupation,
                       s.points, s.display_months, s.repair_after_months, s.display_until,
                       s.repair_from, s.status,
                       case((archived, literal("expired")), else_=null()),
                       case((archived, now), else_=null()), now, now)
                .where(true())  # SQLite needs a WHERE before ON CONFLICT
                # row locks in code-point ref order, as _write_direct takes them
                .order_by(s.ref.collate("C") if self.postgres else s.ref))
        stmt: Any = insert_for(self.session, CreditRecord.__table__)  # type: ignore[arg-type]
        result = self._conn().execute(
            stmt.from_select(columns, rows).on_conflict_do_nothing(
                index_elements=["provider_id", "provider_ref"]),
            execution_options={"preserve_rowcount": True})
        return int(result.rowcount)

    def _stored_hash(self) -> Any:
        """The content hash of the record that already holds a staged row's ref, if another.

        A correlated scalar subquery on purpose: one unique-index probe per staged row, where
        a join could hash the whole of ``credit_records`` for every chunk.
        """
        s = STAGE.c
        return (select(CreditRecord.content_hash)
                .where(CreditRecord.provider_id == self.provider_id,
                       CreditRecord.provider_ref == s.ref, CreditRecord.id != s.id)
                .scalar_subquery())

    def _classify_existing(self, drop_existing: bool) -> tuple[int, list[tuple[int, str, str]]]:
        """Staged rows not inserted: their ref exists, with the same content or not."""
        s = STAGE.c
        unchanged = 0
        rejects: list[tuple[int, str, str]] = []
        for line, ref, staged, stored in self._conn().execute(
                select(s.line, s.ref, s.content_hash, self._stored_hash())):
            if stored is None:
                continue  # inserted
            if bytes(staged) == bytes(stored):
                unchanged += 1
            else:
                rejects.append((line, _safe_ref({"ref": ref}), _reason(DuplicateReference())))
        if drop_existing:  # what was not inserted must not be listed either
            self._drop_existing()
        return unchanged, rejects

    def _drop_existing(self) -> None:
        self._conn().execute(delete(STAGE).where(self._stored_hash().is_not(None)))

    def _enter_lists(self) -> None:
        """Red/black-list entries and their ``list.entered`` events, as ``_enter_list``."""
        if not self._legal_basis:
            return
        s = STAGE.c
        listed = s.list.is_not(None)
        now = self._now()
        conn = self._conn()
        conn.execute(insert(ListEntry.__table__).from_select(  # type: ignore[arg-type]
            ["id", "subject_bidx", "record_id", "list", "catalogue_code", "legal_basis",
             "entered_at"],
            select(s.list_entry_id, s.subject_bidx, s.id, s.list, s.catalogue_code,
                   case(self._legal_basis, value=s.catalogue_code), now).where(listed)))
        conn.execute(insert(OutboxEvent.__table__).from_select(  # type: ignore[arg-type]
            ["id", "topic", "payload", "created_at"],
            select(s.event_id, literal("list.entered"), s.event_payload, now).where(listed)))

    def recompute_scores(self, today: date, created: int) -> int:
        if self.postgres:
            # Fresh statistics so the planner sees what was just loaded (a temporary table is
            # never analysed by autovacuum; after a bulk load the real tables lag behind too).
            # Without ownership PostgreSQL skips the real tables with a warning.
            self._conn().exec_driver_sql(f"ANALYZE {TOUCHED.name}")
            if created >= 10_000:
                self._conn().exec_driver_sql("ANALYZE credit_records, subjects")
        return recompute_subjects(self.session, select(TOUCHED.c.bidx).distinct(),
                                  now=self.now, today=today)


# ---- entry points ----------------------------------------------------------------------------

def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is None:
        fmt = "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "csv"
    if fmt not in FORMATS:
        raise ImportFileError(f"format must be one of {', '.join(FORMATS)}")
    return fmt


def _check_provider(session: Session, provider_id: uuid.UUID) -> None:
    client = session.get(ApiClient, provider_id)
    if client is None or client.type != "provider":
        raise NotFound("No data provider has this id")
    if client.disabled_at is not None:
        raise ProviderDisabled()


def import_records(session: Session, deps: Deps, provider_id: uuid.UUID, path: str | Path, *,
                   fmt: str | None = None, reject_path: str | Path | None = None,
                   batch_size: int = 10_000) -> ImportSummary:
    """Import a file of records for a provider; commits after every chunk (restartable).

    The session must stay on one connection for the whole import (its staging tables are
    temporary): bind it to a :class:`~sqlalchemy.Connection`, as :func:`import_file` does.
    """
    if not isinstance(session.get_bind(), Connection):
        raise TypeError("import_records needs a session bound to one Connection")
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    started = time.perf_counter()
    path = Path(path)
    fmt = _format_of(path, fmt)
    if reject_path and Path(reject_path).exists() and os.path.samefile(path, reject_path):
        raise ImportFileError("the reject file must not be the file being imported")
    now = deps.clock()
    today = china_today(now)
    _check_provider(session, provider_id)
    catalogue = _catalogue(session)
    for item in catalogue.values():  # plain loaded values: the reader thread reads them
        session.expunge(item)
    preparer = _Preparer(deps, catalogue, today,
                         for_copy=session.get_bind().dialect.name == "postgresql",
                         provider_id=provider_id, now=now)
    writer = _Writer(session, deps, provider_id, now, catalogue, preparer.go)
    summary = ImportSummary()
    with ExitStack() as files:
        fh = files.enter_context(
            path.open(encoding="utf-8-sig", newline="" if fmt == "csv" else None))
        rejects = _RejectFile(Path(reject_path) if reject_path else None)
        files.callback(rejects.close)
        _run(session, preparer, writer, fh, fmt, rejects, batch_size, summary, today)
    summary.seconds = time.perf_counter() - started
    log.info("records imported", extra={
        "event": "records_import", "provider_id": str(provider_id), "rows_read": summary.read,
        "rows_created": summary.created, "rows_unchanged": summary.unchanged,
        "rows_rejected": summary.rejected, "seconds": round(summary.seconds, 3)})
    return summary


def _run(session: Session, preparer: _Preparer, writer: _Writer, fh: IO[str], fmt: str,
         rejects: _RejectFile, batch_size: int, summary: ImportSummary, today: date) -> None:
    """Chunks from the reader thread, written and committed in file order; then scores."""

    def produce() -> Iterator[_Chunk]:
        try:
            yield from preparer.chunks(_rows(fh, fmt), batch_size)
        except UnicodeDecodeError:
            raise ImportFileError(
                f"the file is not UTF-8 (after line {preparer.line}); "
                "convert it first, e.g. iconv -f GBK -t UTF-8") from None
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit(); never the data
            raise ImportFileError(
                f"the CSV file cannot be read after line {preparer.line}: {exc}") from None

    reader = _Reader(produce)
    # A 1 ms GIL switch interval while the reader thread runs (Python's default is 5 ms):
    # every time the database answers, the writing thread needs the GIL back from the reader,
    # and psycopg takes it many times per COPY. At 5 ms the connection sat "idle in
    # transaction" about 30 % of the time and the backend used only 55 % of a core;
    # 400,000 rows took 17.5–19.0 s at 5 ms and 12.5–13.0 s at 1 ms or 0.5 ms, a re-run of
    # them 10.1–11.7 s either way (docs/PERFORMANCE.md, 2026-11-29).
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(old_interval, SWITCH_INTERVAL))
    try:
        writer.create_tables()
        session.commit()
        reader.start()
        for chunk in reader:
            created, unchanged, duplicates = writer.write(chunk)
            repeated, more = writer.judge_repeats(chunk)
            session.commit()
            summary.read += chunk.read
            summary.created += created
            summary.unchanged += unchanged + repeated
            duplicates += more
            summary.rejected += len(chunk.rejects) + len(duplicates)
            summary.reasons.update(chunk.reasons)
            if duplicates:
                summary.reasons[DuplicateReference.code] += len(duplicates)
            rejects.write(chunk.rejects + duplicates)
        writer.recompute_scores(today, summary.created)
        session.commit()
        summary.redone = writer.fallbacks
    except BaseException:
        session.rollback()
        raise
    finally:
        reader.stop.set()
        preparer.go.set()
        if reader.is_alive():
            reader.join(timeout=5)
        sys.setswitchinterval(old_interval)
        try:
            writer.drop_tables()
            session.commit()
        except Exception:  # the connection may be gone; its temporary tables go with it
            session.rollback()


def import_file(deps: Deps, provider_id: uuid.UUID, path: str | Path, **options: Any
                ) -> ImportSummary:
    """:func:`import_records` on a fresh connection of the app's database (the CLI's way)."""
    with deps.db.engine.connect() as connection, Session(bind=connection) as session:
        return import_records(session, deps, provider_id, path, **options)
