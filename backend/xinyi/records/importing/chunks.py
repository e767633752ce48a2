"""The reader thread's side: rows validated and prepared in chunks, ahead of the database.

:class:`Preparer` does the pure per-row work (validation, blind index, content hash,
catalogue snapshot, new ids) and, on PostgreSQL, writes each staged row as ``COPY`` text
already; :class:`Reader` runs it in a thread, at most one chunk ahead (memory stays flat).
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from xinyi.deps import Deps
from xinyi.errors import DomainError, ValidationFailed
from xinyi.records import rules
from xinyi.records.importing.encoding import copy_text, esc
from xinyi.records.importing.fastpath import CachedIdParser, FastItemLoader, Ids, content_hash
from xinyi.records.importing.source import Reject, Unreadable, reason, safe_ref
from xinyi.records.models import CatalogueItem
from xinyi.records.service import list_of, validate_item
from xinyi.subjects.service import subject_bidx

# The columns of a COPY straight into credit_records: STAGE's id ... status first (a STAGE
# line is the line number, these 14 fields and the row's ``extra``), then the constant ones.
RECORD_COLUMNS = ("id", "subject_bidx", "provider_ref", "content_hash", "catalogue_code",
                  "occurred_on", "summary", "occupation", "points", "display_months",
                  "repair_after_months", "display_until", "repair_from", "status",
                  "provider_id", "archived_reason", "archived_at", "created_at", "updated_at")
RECORD_CONSTANTS = 5  # provider_id ... updated_at

_NULL4 = "\\N\t\\N\t\\N\t\\N"
_NOT_NEW, _NEW = "\tf\t" + _NULL4, "\tt\t" + _NULL4


@dataclass
class Chunk:
    """Up to ``batch_size`` rows of the file, validated and ready to write in one unit."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)  # STAGE column order (not PG)
    # PostgreSQL: one entry per staged row in each of these lists. ``copy`` holds the row as
    # COPY text for ``credit_records`` (columns ``RECORD_COLUMNS``); ``extra`` the rest of its
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
    rejects: list[Reject] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    read: int = 0
    # (line, ref, ref for the reject file, content hash): rows whose ref an earlier row of the
    # chunk has; judged once that one is written (:meth:`StagedWriter.judge_repeats`)
    repeats: list[tuple[int, str, str, bytes]] = field(default_factory=list)

    def reject(self, line: int, ref: str, err: DomainError) -> None:
        self.rejects.append((line, ref, reason(err)))
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


class Preparer:
    """Pure per-row work: validation, blind index, hash, snapshot. No database."""

    def __init__(self, deps: Deps, catalogue: Mapping[str, CatalogueItem], today: date,
                 for_copy: bool, provider_id: uuid.UUID | None = None,
                 now: datetime | None = None, authorised: Container[str] = ()) -> None:
        self._deps = deps
        self._catalogue = catalogue
        self._authorised = authorised  # the provider's catalogue grants: none unless given
        self._today = today
        self._for_copy = for_copy
        # COPY text of what every new record, list entry and event of this import shares.
        self._now = "" if now is None else now.isoformat()
        provider = "" if provider_id is None else provider_id.hex
        self._record_tail = {
            "active": f"\t{provider}\t\\N\t\\N\t{self._now}\t{self._now}",
            "archived": f"\t{provider}\texpired\t{self._now}\t{self._now}\t{self._now}"}
        self._legal_basis = {code: esc(item.legal_basis) for code, item in catalogue.items()
                             if item.legal_basis is not None}
        self._parse_id = CachedIdParser()
        self._load = FastItemLoader()
        self._ids = Ids()
        self._lists = {code: list_of(item) for code, item in catalogue.items()}
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
                           copy_text(item.code) + "\t" + occurred_on.isoformat(),
                           "\t".join(copy_text(v) for v in numbers)
                           + self._record_tail[status])
            if len(self._terms) >= 100_000:
                self._terms.clear()
            self._terms[key] = terms
        return terms

    def chunks(self, rows: Iterator[tuple[int, Any]], size: int) -> Iterator[Chunk]:
        chunk = Chunk()
        seen: set[str] = set()  # refs inside this chunk
        for line, raw in rows:
            if not self.go.is_set():
                self.go.wait()
            self.line = line
            chunk.read += 1
            self._one(chunk, seen, line, raw)
            if chunk.read >= size:
                yield chunk
                chunk, seen = Chunk(), set()
        if chunk.read:
            yield chunk

    def _one(self, chunk: Chunk, seen: set[str], line: int, raw: Any) -> None:
        if isinstance(raw, Unreadable):
            chunk.reject(line, "", ValidationFailed(raw.reason))
            return
        try:
            item, id_number, cat = validate_item(raw, self._catalogue, self._today,
                                                 self._parse_id, self._load,
                                                 authorised=self._authorised)
        except DomainError as err:
            chunk.reject(line, safe_ref(raw), err)
            return
        ref: str = item["ref"]
        bidx = subject_bidx(self._deps, id_number)
        digest = content_hash(bidx, item)
        if ref in seen:  # the same ref twice in one chunk: the first one counts
            chunk.repeats.append((line, ref, safe_ref(raw), digest))
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
                f"{record_id:032x}\t\\\\x{bidx_text}\t{esc(ref)}\t\\\\x{digest.hex()}\t"
                f"{terms.copy_head}\t{esc(item['summary'])}\t"
                + ("\\N" if occupation is None else esc(occupation))
                + "\t" + terms.copy_tail + "\n")
            chunk.lines.append(line)
            chunk.refs.append(ref)
            chunk.bidxs.append(bidx)
            chunk.digests.append(digest)
            if payload is None:
                chunk.extra.append(_NEW if new_subject else _NOT_NEW)
            else:
                event = esc(json.dumps(payload))
                chunk.extra.append(("\tt\t" if new_subject else "\tf\t")
                                   + f"{listed}\t{entry_id:032x}\t{event_id:032x}\t{event}")
                chunk.listed.append((
                    len(chunk.copy) - 1,
                    f"{entry_id:032x}\t\\\\x{bidx_text}\t{record_id:032x}\t{listed}\t"
                    f"{esc(cat.code)}\t{self._legal_basis[cat.code]}\t"
                    f"{self._now}\n",
                    f"{event_id:032x}\tlist.entered\t{event}\t\\\\x{bidx_text}\t"
                    f"{self._now}\n"))
        else:
            chunk.rows.append((
                line, uuid.UUID(int=record_id), bidx, ref, digest, cat.code,
                item["occurred_at"], item["summary"], occupation, terms.points,
                terms.display_months, terms.repair_after_months, terms.display_until,
                terms.repair_from, terms.status, new_subject, listed,
                None if payload is None else uuid.UUID(int=entry_id),
                None if payload is None else uuid.UUID(int=event_id), payload))


_DONE = object()


class Reader(threading.Thread):
    """Prepares chunks ahead of the database (at most ``depth`` waiting: memory stays flat)."""

    def __init__(self, produce: Callable[[], Iterator[Chunk]], depth: int = 1) -> None:
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

    def __iter__(self) -> Iterator[Chunk]:
        while True:
            item = self.queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
