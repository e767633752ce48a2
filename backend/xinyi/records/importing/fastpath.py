"""Faster equivalents of the per-row steps that dominate the batch API's cost.

Each accepts and returns exactly what its original does, and is held to it by a test:
:class:`CachedIdParser` (``IdNumber.parse``), :class:`FastItemLoader` (the schema load) and
:func:`content_hash` (``records.service``'s content hash). :class:`Ids` draws the
time-ordered ids of the rows an import creates.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Mapping
from datetime import date
from json.encoder import encode_basestring
from typing import Any

from marshmallow import RAISE, fields, missing
from marshmallow.exceptions import MarshmallowError
from marshmallow.validate import Validator
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError

from xinyi.pii import IdNumber
from xinyi.records.importing.source import FIELDS, REQUIRED
from xinyi.records.schemas import OccurredAt, RecordItemIn
from xinyi.records.service import load_item

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


# ---- the schema load ---------------------------------------------------------------------------

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


# ---- the content hash and new ids --------------------------------------------------------------

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


class Ids:
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
