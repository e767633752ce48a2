"""The staged way of writing a chunk: SQLite's, and PostgreSQL's when the direct way meets a
concurrent writer.

The chunk goes into a temporary table (``COPY`` / ``executemany``) and is written with
set-based ``INSERT … SELECT … ON CONFLICT DO NOTHING``; refs that exist already are then
sorted into unchanged rows and ``duplicate_reference`` rejects. The same statements on every
backend. The staging tables are temporary: they live in the import's one connection.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

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

from xinyi.db import UTCDateTime
from xinyi.dbutil import insert_for
from xinyi.deps import Deps
from xinyi.outbox.service import events_table
from xinyi.records.importing.chunks import Chunk
from xinyi.records.importing.encoding import copy_block
from xinyi.records.importing.source import Reject, reason, safe_ref
from xinyi.records.models import CatalogueItem, CreditRecord, ListEntry
from xinyi.records.service import DuplicateReference, list_of
from xinyi.subjects.service import district_of, subjects_table

Written = tuple[int, int, list[Reject]]  # created, unchanged, duplicate-ref rejects

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
    Column("district", String, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)
TOUCHED = Table(
    "xinyi_import_touched", _META,
    Column("bidx", LargeBinary, nullable=False),
    prefixes=["TEMPORARY"],
)
_TABLES = (STAGE, NEW_SUBJECTS, TOUCHED)

SUBJECTS = subjects_table()


class StagedWriter:
    """Set-based writes of one staged chunk; the same statements on every backend.

    Every method works in the unit of work whose session it is handed (one per chunk); the
    writer itself keeps only what carries over from one chunk to the next.
    """

    def __init__(self, deps: Deps, provider_id: uuid.UUID, now: datetime,
                 catalogue: Mapping[str, CatalogueItem], reader_go: threading.Event,
                 postgres: bool) -> None:
        self.reader_go = reader_go
        self.deps = deps
        self.provider_id = provider_id
        self.now = now
        self.postgres = postgres
        self._rerun = False  # the last chunk created nothing
        self.fallbacks = 0  # chunks redone the staged way after a concurrent writer
        self._legal_basis = {code: item.legal_basis for code, item in catalogue.items()
                             if list_of(item) is not None and item.legal_basis}

    def create_tables(self, session: Session) -> None:
        conn = session.connection()
        for table in _TABLES:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")
            conn.execute(CreateTable(table))

    def drop_tables(self, session: Session) -> None:
        conn = session.connection()
        for table in _TABLES:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")

    def _empty(self, conn: Connection, table: Table) -> None:
        # On PostgreSQL every commit empties the staging tables (ON COMMIT DELETE ROWS, cheaper
        # than TRUNCATE); this DELETE matters only when "commit" is a savepoint (tests).
        conn.execute(delete(table))

    def _fill(self, conn: Connection, table: Table, rows: list[tuple[Any, ...]],
              copy: list[str] | None = None) -> None:
        """Rows into a staging table: COPY (text lines) on PostgreSQL, else executemany."""
        if self.postgres:
            if copy is None:
                copy = [copy_block(rows)] if rows else []
            self._copy(conn, table.name, tuple(c.name for c in table.columns), copy)
        elif rows:
            names_list = [c.name for c in table.columns]
            conn.execute(insert(table), [dict(zip(names_list, row, strict=True))
                                         for row in rows])

    def _copy(self, conn: Connection, table: str, columns: tuple[str, ...],
              lines: list[str]) -> None:
        """COPY text lines into ``table`` on the unit's connection (PostgreSQL): the driver's
        cursor, inside the unit's transaction, which the unit commits."""
        if not lines:
            return
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor, cursor.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN") as pipe:
            pipe.write("".join(lines))

    def write(self, session: Session, chunk: Chunk) -> Written:
        """Stage and write one chunk with ``ON CONFLICT``; returns (created, unchanged,
        duplicate-ref rejects)."""
        conn = session.connection()
        self._empty(conn, STAGE)
        self._fill(conn, STAGE, chunk.rows, chunk.copy)
        # Every subject the file names, unchanged rows too: a re-run after a crash between a
        # chunk's commit and the final recompute still brings their scores up to date. Those
        # named by an earlier chunk are in already.
        conn.execute(insert(TOUCHED).from_select(
            ["bidx"], select(STAGE.c.subject_bidx).where(STAGE.c.new_subject)))
        self._add_subjects(session, chunk.ids)
        unchanged = 0
        rejects: list[Reject] = []
        pending = chunk.staged
        if self._rerun:
            # The last chunk was all known (a re-run, a restart): look up first, and insert only
            # if something is new, instead of an insert that conflicts on every row.
            unchanged, rejects = self._classify_existing(conn, drop_existing=False)
            pending -= unchanged + len(rejects)
            if pending and (unchanged or rejects):
                self._drop_existing(conn)
        created = self._insert_records(session) if pending else 0
        if created < pending:  # refs already used (or used meanwhile by a concurrent import)
            more_unchanged, more_rejects = self._classify_existing(conn,
                                                                   drop_existing=created > 0)
            unchanged += more_unchanged
            rejects += more_rejects
        if created:
            self._enter_lists(conn)
        self._rerun = created == 0
        return created, unchanged, rejects

    def judge_repeats(self, session: Session, chunk: Chunk) -> tuple[int, list[Reject]]:
        """Rows whose ref an earlier row of their chunk has, after the chunk is written: as the
        API would, against the record that now has the ref (that row's, or one stored before
        it with other content). Returns (unchanged, duplicate-ref rejects)."""
        if not chunk.repeats:
            return 0, []
        refs = sorted({ref for _, ref, _, _ in chunk.repeats})
        held: dict[str, bytes] = {}
        conn = session.connection()
        for start in range(0, len(refs), 1000):  # within any backend's bound-parameter limit
            held.update((ref, bytes(digest)) for ref, digest in conn.execute(
                select(CreditRecord.provider_ref, CreditRecord.content_hash).where(
                    CreditRecord.provider_id == self.provider_id,
                    CreditRecord.provider_ref.in_(refs[start:start + 1000]))))
        unchanged = 0
        rejects: list[Reject] = []
        for line, ref, ref_shown, digest in chunk.repeats:
            if held.get(ref) == digest:
                unchanged += 1
            else:
                rejects.append((line, ref_shown, reason(DuplicateReference())))
        return unchanged, rejects

    def _now(self) -> Any:
        return literal(self.now, UTCDateTime())

    def _add_subjects(self, session: Session, ids: Mapping[bytes, str]) -> None:
        """Subjects not yet known whose row will be new; only their ID numbers are encrypted
        (AES-GCM). A refused row stores no one, as through the API (should a concurrent import
        take the ref between this and the insert, its person stays stored, without a record).

        Each staged row is checked by correlated probes of the primary and unique keys (a join
        could hash every subject or record per chunk).
        """
        if not ids:
            return
        conn = session.connection()
        s = STAGE.c
        known = select(SUBJECTS.c.bidx).where(SUBJECTS.c.bidx == s.subject_bidx).exists()
        used = select(CreditRecord.id).where(CreditRecord.provider_id == self.provider_id,
                                             CreditRecord.provider_ref == s.ref).exists()
        missing = [bytes(b) for b in conn.scalars(
            select(s.subject_bidx).where(~known, ~used).distinct())]
        cipher = self.deps.cipher
        self.reader_go.clear()
        try:
            # The district is the ID number's first six digits, taken from the number in hand.
            rows = [(bidx, cipher.encrypt(ids[bidx], context="subjects.id_number"),
                     district_of(ids[bidx])) for bidx in missing]
        finally:
            self.reader_go.set()
        if not rows:
            return
        self._empty(conn, NEW_SUBJECTS)
        self._fill(conn, NEW_SUBJECTS, rows,
                   [f"\\\\x{bidx.hex()}\t\\\\x{enc.hex()}\t{district}\n"
                    for bidx, enc, district in rows] if self.postgres else None)
        stmt: Any = insert_for(session, SUBJECTS)
        conn.execute(stmt.from_select(
            ["bidx", "id_number_enc", "district", "first_seen_at"],
            select(NEW_SUBJECTS.c.bidx, NEW_SUBJECTS.c.id_number_enc, NEW_SUBJECTS.c.district,
                   self._now())
            .where(true())  # SQLite needs a WHERE before ON CONFLICT
            .order_by(NEW_SUBJECTS.c.bidx),  # key order: concurrent imports cannot deadlock
        ).on_conflict_do_nothing(index_elements=["bidx"]))

    def _insert_records(self, session: Session) -> int:
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
                # row locks in code-point ref order, as the direct way takes them
                .order_by(s.ref.collate("C") if self.postgres else s.ref))
        stmt: Any = insert_for(session, CreditRecord.__table__)  # type: ignore[arg-type]
        result = session.connection().execute(
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

    def _classify_existing(self, conn: Connection,
                           drop_existing: bool) -> tuple[int, list[Reject]]:
        """Staged rows not inserted: their ref exists, with the same content or not."""
        s = STAGE.c
        unchanged = 0
        rejects: list[Reject] = []
        for line, ref, staged, stored in conn.execute(
                select(s.line, s.ref, s.content_hash, self._stored_hash())):
            if stored is None:
                continue  # inserted
            if bytes(staged) == bytes(stored):
                unchanged += 1
            else:
                rejects.append((line, safe_ref({"ref": ref}), reason(DuplicateReference())))
        if drop_existing:  # what was not inserted must not be listed either
            self._drop_existing(conn)
        return unchanged, rejects

    def _drop_existing(self, conn: Connection) -> None:
        conn.execute(delete(STAGE).where(self._stored_hash().is_not(None)))

    def _enter_lists(self, conn: Connection) -> None:
        """Red/black-list entries and their ``list.entered`` events, as ``_enter_list``."""
        if not self._legal_basis:
            return
        s = STAGE.c
        listed = s.list.is_not(None)
        now = self._now()
        conn.execute(insert(ListEntry.__table__).from_select(  # type: ignore[arg-type]
            ["id", "subject_bidx", "record_id", "list", "catalogue_code", "legal_basis",
             "entered_at"],
            select(s.list_entry_id, s.subject_bidx, s.id, s.list, s.catalogue_code,
                   case(self._legal_basis, value=s.catalogue_code), now).where(listed)))
        conn.execute(insert(events_table()).from_select(
            ["id", "topic", "payload", "subject_bidx", "created_at"],
            select(s.event_id, literal("list.entered"), s.event_payload, s.subject_bidx,
                   now).where(listed)))

    def recompute_scores(self, session: Session, today: date, created: int) -> int:
        """Scores of every subject the file named, set-based, once at the end."""
        if self.postgres:
            # Fresh statistics so the planner sees what was just loaded (a temporary table is
            # never analysed by autovacuum; after a bulk load the real tables lag behind too).
            # Without ownership PostgreSQL skips the real tables with a warning.
            conn = session.connection()
            conn.exec_driver_sql(f"ANALYZE {TOUCHED.name}")
            if created >= 10_000:
                conn.exec_driver_sql("ANALYZE credit_records, subjects")
        return self.deps.rescore(session, select(TOUCHED.c.bidx).distinct(),
                                 now=self.now, today=today)
