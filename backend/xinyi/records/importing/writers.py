"""The writer strategies, and the choice between them.

* :class:`~xinyi.records.importing.staging.StagedWriter` (SQLite, and PostgreSQL's fallback):
  the chunk is staged in a temporary table and written with ``ON CONFLICT``;
* :class:`DirectWriter` (PostgreSQL): each chunk looks its refs and new subjects up first (one
  array parameter each, probed through the unique indexes), then copies (``COPY``) only what
  is new straight into ``subjects``, ``credit_records``, ``list_entries`` and
  ``outbox_events``, inside a savepoint. If a concurrent import of the same provider wrote one
  of the refs or subjects after the look-up (a unique violation) or the two deadlock, the
  chunk goes back to the savepoint and is redone the staged way.

Both insert subjects in key order and records in ref order, so concurrent imports take their
row locks in the same order. Every constraint is checked by PostgreSQL as for any insert.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy.orm import Session

from xinyi.deps import Deps
from xinyi.outbox.service import events_table
from xinyi.records.importing.chunks import RECORD_COLUMNS, RECORD_CONSTANTS, Chunk
from xinyi.records.importing.encoding import bytea_array, text_array
from xinyi.records.importing.source import Reject, reason, safe_ref
from xinyi.records.importing.staging import TOUCHED, StagedWriter, Written
from xinyi.records.models import CatalogueItem, CreditRecord, ListEntry
from xinyi.records.service import DuplicateReference
from xinyi.subjects.service import district_of

log = logging.getLogger(__name__)

_PEOPLE_MAX = 250_000  # subject keys the writer remembers per set (~25 MB); then it forgets


class DirectWriter(StagedWriter):
    """PostgreSQL: ``COPY`` straight into the real tables, the staged way after a conflict."""

    def __init__(self, deps: Deps, provider_id: uuid.UUID, now: datetime,
                 catalogue: Mapping[str, CatalogueItem], reader_go: threading.Event) -> None:
        super().__init__(deps, provider_id, now, catalogue, reader_go, postgres=True)
        self._now_text = now.isoformat()
        # Subjects an earlier chunk's direct write found or stored, and put in the touched set:
        # a later chunk need not look them up or add them again. Forgetting costs only that.
        self._stored: set[bytes] = set()
        self._touched: set[bytes] = set()
        self._written: tuple[set[bytes], set[bytes]] = (set(), set())

    def write(self, session: Session, chunk: Chunk) -> Written:
        """Write one chunk; returns (created, unchanged, duplicate-ref rejects).

        Straight into the real tables (:meth:`_write_direct`) inside a savepoint; if a
        concurrent import took one of the chunk's refs or subjects meanwhile (a unique
        violation) or the two deadlock, back to the savepoint and the staged way, which
        resolves every conflict with ``ON CONFLICT``.
        """
        try:
            with session.begin_nested():
                written = self._write_direct(session, chunk)
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
        chunk.copy = [f"{line}\t{record[:-1].rsplit(chr(9), RECORD_CONSTANTS)[0]}{extra}\n"
                      for line, record, extra in zip(chunk.lines, chunk.copy, chunk.extra,
                                                     strict=True)]
        return super().write(session, chunk)

    def _write_direct(self, session: Session, chunk: Chunk) -> Written:
        """No staging table and no speculative insertion: one indexed look-up of the chunk's
        refs (a single array parameter), then ``COPY`` of what is new into the real tables.
        Every constraint is checked by PostgreSQL as for any insert."""
        conn = session.connection()
        driver = conn.connection.driver_connection
        assert driver is not None
        # One array parameter each (as text: psycopg's list adapter costs ~4 µs a row), probed
        # row by row through the unique indexes: LIMIT 1 keeps the planner from turning the
        # look-up into a join that scans the whole table.
        with driver.cursor() as cursor:
            stored: dict[str, bytes] = dict(cursor.execute(
                "SELECT u.ref, c.content_hash FROM unnest(%s::text[]) AS u(ref) "
                "CROSS JOIN LATERAL (SELECT content_hash FROM credit_records "
                "WHERE provider_id = %s AND provider_ref = u.ref LIMIT 1) AS c",
                (text_array(chunk.refs), self.provider_id)).fetchall()) if chunk.refs else {}
        unchanged = 0
        rejects: list[Reject] = []
        refs, bidxs = chunk.refs, chunk.bidxs
        # Refs in code-point order (PostgreSQL's "C" collation, as the staged way sorts): two
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
                    rejects.append((chunk.lines[n], safe_ref({"ref": refs[n]}),
                                    reason(DuplicateReference())))
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
        # new or unchanged (see StagedWriter.write).
        people, kept = people - self._stored, kept - self._touched  # new sets: none is shared
        self._written = (people, kept)
        self._copy(conn, TOUCHED.name, ("bidx",), [f"\\\\x{b.hex()}\n" for b in kept])
        if people:
            with driver.cursor() as cursor:
                known = {bytes(b) for (b,) in cursor.execute(
                    "SELECT u.bidx FROM unnest(%s::bytea[]) AS u(bidx) "
                    "CROSS JOIN LATERAL (SELECT FROM subjects WHERE bidx = u.bidx LIMIT 1) AS s",
                    (bytea_array(people),)).fetchall()}
            missing = sorted(people - known)  # key order: concurrent imports cannot deadlock
            if missing:
                cipher = self.deps.cipher
                self.reader_go.clear()
                try:
                    # The district: the first six digits of the ID number in hand.
                    subjects = [
                        f"\\\\x{bidx.hex()}\t\\\\x"
                        f"{cipher.encrypt(chunk.ids[bidx], context='subjects.id_number').hex()}"
                        f"\t{district_of(chunk.ids[bidx])}\t{self._now_text}\n"
                        for bidx in missing]
                finally:
                    self.reader_go.set()
                self._copy(conn, "subjects",
                           ("bidx", "id_number_enc", "district", "first_seen_at"), subjects)
        self._copy(conn, CreditRecord.__tablename__, RECORD_COLUMNS, records)
        if listed:
            self._copy(conn, ListEntry.__tablename__,
                       ("id", "subject_bidx", "record_id", "list", "catalogue_code",
                        "legal_basis", "entered_at"), [entry for _, entry, _ in listed])
            self._copy(conn, events_table().name,
                       ("id", "topic", "payload", "subject_bidx", "created_at"),
                       [event for _, _, event in listed])
        return len(records), unchanged, rejects

