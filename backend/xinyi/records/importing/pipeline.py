"""The import's entry points: the reader thread's chunks, each written and committed in a
unit of work of its own, in file order; then the scores, in one more unit.

Every unit is opened on the same connection (the staging tables are temporary and live in
it), so a unit per chunk costs a session object, not a connection.
"""

from __future__ import annotations

import csv
import logging
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from xinyi.auth.service import AuthorisedItems, authorised_items, provider_disabled
from xinyi.deps import Deps
from xinyi.errors import NotFound, ValidationFailed
from xinyi.records.importing.chunks import Chunk, Preparer, Reader
from xinyi.records.importing.source import ImportFileError, RejectFile, format_of, rows
from xinyi.records.importing.staging import StagedWriter
from xinyi.records.importing.writers import DirectWriter
from xinyi.records.service import DuplicateReference, catalogue_by_code
from xinyi.timeutil import china_today
from xinyi.uow import UnitOfWork, run_in_unit

log = logging.getLogger(__name__)

# Seconds; sys.setswitchinterval during an import (see _run). Process-wide: `xinyi
# import-records`, its only caller outside tests, runs one import per process.
SWITCH_INTERVAL = 0.001


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


def _check_provider(session: Session, provider_id: uuid.UUID) -> AuthorisedItems:
    """The provider's catalogue grants, if it exists and is enabled."""
    disabled = provider_disabled(session, provider_id)
    if disabled is None:
        raise NotFound("No data provider has this id")
    if disabled:
        raise ProviderDisabled()
    return authorised_items(session, provider_id)


def import_records(sessions: sessionmaker[Session], deps: Deps, provider_id: uuid.UUID,
                   path: str | Path, *, fmt: str | None = None,
                   reject_path: str | Path | None = None,
                   batch_size: int = 10_000) -> ImportSummary:
    """Import a file of records for a provider; every chunk is a unit of work, committed
    (restartable).

    ``sessions`` must be bound to one :class:`~sqlalchemy.Connection`, so that every unit
    lands on it (the staging tables are temporary), as :func:`import_file` does.
    """
    bind = sessions.kw.get("bind")
    if not isinstance(bind, Connection):
        raise TypeError("import_records needs sessions bound to one Connection")
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    started = time.perf_counter()
    path = Path(path)
    fmt = format_of(path, fmt)
    if reject_path and Path(reject_path).exists() and os.path.samefile(path, reject_path):
        raise ImportFileError("the reject file must not be the file being imported")
    now = deps.clock()
    today = china_today(now)
    with UnitOfWork(sessions) as uow:  # reads only
        authorised = _check_provider(uow.session, provider_id)
        catalogue = catalogue_by_code(uow.session)
        for item in catalogue.values():  # plain loaded values: the reader thread reads them
            uow.session.expunge(item)
    postgres = bind.dialect.name == "postgresql"
    preparer = Preparer(deps, catalogue, today, for_copy=postgres, provider_id=provider_id,
                        now=now, authorised=authorised)
    writer = (DirectWriter(deps, provider_id, now, catalogue, preparer.go) if postgres else
              StagedWriter(deps, provider_id, now, catalogue, preparer.go, postgres=False))
    summary = ImportSummary()
    with ExitStack() as files:
        fh = files.enter_context(
            path.open(encoding="utf-8-sig", newline="" if fmt == "csv" else None))
        rejects = RejectFile(Path(reject_path) if reject_path else None)
        files.callback(rejects.close)
        _run(sessions, preparer, writer, fh, fmt, rejects, batch_size, summary, today)
    summary.seconds = time.perf_counter() - started
    log.info("records imported", extra={
        "event": "records_import", "provider_id": str(provider_id), "rows_read": summary.read,
        "rows_created": summary.created, "rows_unchanged": summary.unchanged,
        "rows_rejected": summary.rejected, "seconds": round(summary.seconds, 3)})
    return summary


def _run(sessions: sessionmaker[Session], preparer: Preparer, writer: StagedWriter,
         fh: IO[str], fmt: str, rejects: RejectFile, batch_size: int, summary: ImportSummary,
         today: date) -> None:
    """Chunks from the reader thread, written and committed in file order; then scores."""

    def produce() -> Iterator[Chunk]:
        try:
            yield from preparer.chunks(rows(fh, fmt), batch_size)
        except UnicodeDecodeError:
            raise ImportFileError(
                f"the file is not UTF-8 (after line {preparer.line}); "
                "convert it first, e.g. iconv -f GBK -t UTF-8") from None
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit(); never the data
            raise ImportFileError(
                f"the CSV file cannot be read after line {preparer.line}: {exc}") from None

    reader = Reader(produce)
    # A 1 ms GIL switch interval while the reader thread runs (Python's default is 5 ms):
    # every time the database answers, the writing thread needs the GIL back from the reader,
    # and psycopg takes it many times per COPY. At 5 ms the connection sat "idle in
    # transaction" about 30 % of the time and the backend used only 55 % of a core;
    # 400,000 rows took 17.5–19.0 s at 5 ms and 12.5–13.0 s at 1 ms or 0.5 ms, a re-run of
    # them 10.1–11.7 s either way (docs/PERFORMANCE.md, 2026-11-29).
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(old_interval, SWITCH_INTERVAL))
    try:
        run_in_unit(sessions, writer.create_tables)
        reader.start()
        for chunk in reader:
            with UnitOfWork(sessions) as uow:
                created, unchanged, duplicates = writer.write(uow.session, chunk)
                repeated, more = writer.judge_repeats(uow.session, chunk)
                uow.commit()
            summary.read += chunk.read
            summary.created += created
            summary.unchanged += unchanged + repeated
            duplicates += more
            summary.rejected += len(chunk.rejects) + len(duplicates)
            summary.reasons.update(chunk.reasons)
            if duplicates:
                summary.reasons[DuplicateReference.code] += len(duplicates)
            rejects.write(chunk.rejects + duplicates)
        run_in_unit(sessions, lambda session: writer.recompute_scores(
            session, today, summary.created))
        summary.redone = writer.fallbacks
    finally:
        reader.stop.set()
        preparer.go.set()
        if reader.is_alive():
            reader.join(timeout=5)
        sys.setswitchinterval(old_interval)
        with suppress(Exception):  # the connection may be gone; its temporary tables go with it
            run_in_unit(sessions, writer.drop_tables)


def import_file(deps: Deps, provider_id: uuid.UUID, path: str | Path, **options: Any
                ) -> ImportSummary:
    """:func:`import_records` on a fresh connection of the app's database (the CLI's way)."""
    with deps.db.engine.connect() as connection:
        return import_records(sessionmaker(bind=connection), deps, provider_id, path,
                              **options)
