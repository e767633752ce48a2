"""Records from data providers, the catalogue, display-period archiving and list entries."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Subquery, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from xinyi.auth.principal import Principal
from xinyi.auth.service import authorised_items, client_refs
from xinyi.deps import Deps
from xinyi.errors import Conflict, DomainError, NotFound, ValidationFailed, field_errors
from xinyi.jsonable import row
from xinyi.outbox.service import emit
from xinyi.pii import IdNumber, InvalidIdentifier
from xinyi.records import rules
from xinyi.records.models import CatalogueItem, CreditRecord, ListEntry
from xinyi.records.schemas import RecordItemIn
from xinyi.subjects.service import ensure_subject, subject_bidx
from xinyi.timeutil import china_today

log = logging.getLogger(__name__)
EARLIEST = date(1949, 10, 1)
_ITEM = RecordItemIn()


class DuplicateReference(Conflict):
    code = "duplicate_reference"
    title = "This reference was already used for a record with different content"


class UnknownCatalogueCode(ValidationFailed):
    code = "unknown_catalogue_code"
    title = "No catalogue item has this code"


class CatalogueItemNotAuthorised(ValidationFailed):
    code = "catalogue_item_not_authorised"
    title = "This data provider is not authorised for this catalogue item"


NOT_AUTHORISED = ("the credit office has not authorised this data provider for this "
                  "catalogue item (each provider pushes only the items it is granted)")


@dataclass(frozen=True)
class ItemResult:
    ref: Any
    status: str
    id: uuid.UUID | None = None
    problem: dict[str, Any] | None = None


def _field(field: str, message: str, error: type[ValidationFailed] = ValidationFailed
           ) -> ValidationFailed:
    return error.at(field, message, detail=f"{field}: {message}")


def _check_date(occurred_on: date, today: date) -> None:
    if occurred_on > today:
        raise _field("occurred_at", "must not be in the future")
    if occurred_on < EARLIEST:
        raise _field("occurred_at", "must not be before 1949-10-01")


def _content_hash(bidx: bytes, item: Mapping[str, Any]) -> bytes:
    canonical = json.dumps({
        "subject": bidx.hex(), "code": item["catalogue_code"],
        "on": item["occurred_at"].isoformat(), "summary": item["summary"],
        "occupation": item.get("occupation")}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).digest()


def _snapshot(record: CreditRecord, item: CatalogueItem) -> None:
    """Fix the item's rules onto the record as they stand today."""
    record.catalogue_code = item.code
    record.points = item.points
    record.display_months = item.display_months
    record.repair_after_months = item.repair_after_months
    record.display_until = rules.display_until(record.occurred_on, item.display_months)
    record.repair_from = (None if item.repair_after_months is None
                          else rules.earliest_repair(record.occurred_on,
                                                     item.repair_after_months))


def _list_of(item: CatalogueItem) -> str | None:
    listed = rules.list_for(rules.Polarity(item.polarity),
                            rules.Severity(item.severity) if item.severity else None,
                            item.legal_basis)
    return None if listed is None else listed.value


def _enter_list(session: Session, record: CreditRecord, item: CatalogueItem,
                now: datetime) -> None:
    listed = _list_of(item)
    if listed is None or item.legal_basis is None:
        return
    entry = ListEntry(subject_bidx=record.subject_bidx, record_id=record.id, list=listed,
                      catalogue_code=item.code, legal_basis=item.legal_basis, entered_at=now)
    session.add(entry)
    emit(session, "list.entered", {"list": listed, "record_id": str(record.id),
                                   "catalogue_code": item.code},
         now=now, subject_bidx=record.subject_bidx)


def _leave_list(session: Session, record: CreditRecord, reason: str, now: datetime) -> None:
    entry = session.scalar(select(ListEntry).where(ListEntry.record_id == record.id,
                                                   ListEntry.left_at.is_(None)))
    if entry is None:
        return
    entry.left_at, entry.left_reason = now, reason
    emit(session, "list.left", {"list": entry.list, "record_id": str(record.id),
                                "catalogue_code": entry.catalogue_code, "reason": reason},
         now=now, subject_bidx=record.subject_bidx)


def _problem(err: DomainError) -> dict[str, Any]:
    return err.to_problem()


def _catalogue(session: Session) -> dict[str, CatalogueItem]:
    return {i.code: i for i in session.scalars(select(CatalogueItem))}


def submit_batch(session: Session, deps: Deps, provider: Principal,
                 items: Iterable[Any]) -> list[ItemResult]:
    """Each item is its own savepoint: a bad item is reported and never blocks the others."""
    now = deps.clock()
    today = china_today(now)
    catalogue = _catalogue(session)
    authorised = authorised_items(session, provider.id)
    results: list[ItemResult] = []
    for raw in items:
        ref = raw.get("ref") if isinstance(raw, dict) else None
        if not isinstance(ref, str):
            ref = None
        try:
            with session.begin_nested():
                results.append(_submit_one(session, deps, provider, raw, catalogue, authorised,
                                           now, today))
        except DomainError as err:
            results.append(ItemResult(ref, "rejected", problem=_problem(err)))
    created = sum(r.status == "created" for r in results)
    log.info("record batch", extra={"event": "record_batch", "provider_id": str(provider.id),
                                    "items": len(results), "items_created": created})
    return results


def _parse_id_number(raw: str, today: date) -> IdNumber:
    return IdNumber.parse(raw, today=today)


def load_item(raw: dict[str, Any]) -> dict[str, Any]:
    """The record's fields as :class:`RecordItemIn` loads them, or every bad field named."""
    try:
        item: dict[str, Any] = _ITEM.load(raw)
    except ValidationError as exc:
        errors = field_errors(exc.messages if isinstance(exc.messages, dict) else {})
        raise ValidationFailed("Some fields are not valid: " + ", ".join(
            sorted(e["field"] for e in errors)), errors=errors) from None
    return item


def _check_authorised(cat: CatalogueItem, authorised: Container[str]) -> None:
    if cat.code not in authorised:
        raise _field("catalogue_code", NOT_AUTHORISED, CatalogueItemNotAuthorised)


def validate_item(raw: Any, catalogue: Mapping[str, CatalogueItem], today: date,
                  parse_id: Callable[[str, date], IdNumber] = _parse_id_number,
                  load: Callable[[dict[str, Any]], dict[str, Any]] = load_item, *,
                  authorised: Container[str],
                  ) -> tuple[dict[str, Any], IdNumber, CatalogueItem]:
    """Every check a pushed record gets, in order, with the errors the batch API reports.

    Pure (no database, no clock): the batch API and ``xinyi import-records`` both call it, so
    the two cannot accept different records. ``parse_id`` and ``load`` must accept exactly
    what :meth:`IdNumber.parse` and :func:`load_item` accept (the importer passes faster
    equivalents, each held to the original by a test). ``authorised`` holds the codes the
    provider may push (``auth.service.authorised_items``).
    Returns the loaded fields, the ID number and the catalogue item.
    """
    if not isinstance(raw, dict):
        raise ValidationFailed("each record must be an object")
    item = load(raw)
    try:
        id_number = parse_id(item["id_number"], today)
    except InvalidIdentifier as exc:
        raise _field("id_number", str(exc)) from None
    cat = catalogue.get(item["catalogue_code"])
    if cat is None:
        raise _field("catalogue_code", "no catalogue item has this code", UnknownCatalogueCode)
    _check_authorised(cat, authorised)
    _check_date(item["occurred_at"], today)
    return item, id_number, cat


def _submit_one(session: Session, deps: Deps, provider: Principal, raw: Any,
                catalogue: Mapping[str, CatalogueItem], authorised: Container[str],
                now: datetime, today: date) -> ItemResult:
    item, id_number, cat = validate_item(raw, catalogue, today, authorised=authorised)
    bidx = subject_bidx(deps, id_number)
    digest = _content_hash(bidx, item)
    existing = session.scalar(select(CreditRecord).where(
        CreditRecord.provider_id == provider.id, CreditRecord.provider_ref == item["ref"]))
    if existing is not None:
        if existing.content_hash == digest:
            return ItemResult(item["ref"], "unchanged", existing.id)
        raise DuplicateReference()
    ensure_subject(session, deps, id_number, now)
    record = CreditRecord(id=uuid.uuid4(), subject_bidx=bidx, provider_id=provider.id,
                          provider_ref=item["ref"], content_hash=digest,
                          occurred_on=item["occurred_at"], summary=item["summary"],
                          occupation=item.get("occupation"), status="active",
                          created_at=now, updated_at=now)
    _snapshot(record, cat)
    session.add(record)
    session.flush()
    if record.display_until <= today:
        _archive(session, record, "expired", now)
    else:
        _enter_list(session, record, cat, now)
    deps.rescore(session, [bidx], now=now, today=today)
    return ItemResult(item["ref"], "created", record.id)


def _owned(session: Session, provider: Principal, record_id: uuid.UUID) -> CreditRecord:
    record = session.get(CreditRecord, record_id)
    # Another provider's record answers exactly like a missing one: nothing to learn.
    if record is None or record.provider_id != provider.id:
        raise NotFound("No record of yours has this id")
    return record


def get_provider_record(session: Session, provider: Principal,
                        record_id: uuid.UUID) -> CreditRecord:
    return _owned(session, provider, record_id)


def correct_record(session: Session, deps: Deps, provider: Principal, record_id: uuid.UUID,
                   changes: Mapping[str, Any]) -> CreditRecord:
    """A correction (更正) by the owning provider; list membership and score follow."""
    record = _owned(session, provider, record_id)
    return _correct(session, deps, record, changes, provider_id=provider.id)


def _correct(session: Session, deps: Deps, record: CreditRecord, changes: Mapping[str, Any],
             *, provider_id: uuid.UUID) -> CreditRecord:
    now = deps.clock()
    today = china_today(now)
    if record.status != "active":
        raise Conflict("An archived record cannot be corrected")
    if not changes:
        raise ValidationFailed("Nothing to change")
    cat = session.get(CatalogueItem, changes.get("catalogue_code", record.catalogue_code))
    if cat is None:
        raise _field("catalogue_code", "no catalogue item has this code", UnknownCatalogueCode)
    if cat.code != record.catalogue_code:  # a correction cannot reach an item not granted
        _check_authorised(cat, authorised_items(session, provider_id))
    if "occurred_at" in changes:
        _check_date(changes["occurred_at"], today)
        record.occurred_on = changes["occurred_at"]
    for name in ("summary", "occupation"):
        if name in changes:
            setattr(record, name, changes[name])
    previous_code = record.catalogue_code
    if previous_code != cat.code:
        _snapshot(record, cat)
    else:  # the rules it was recorded under stay; only its dates follow a new occurrence date
        record.display_until = rules.display_until(record.occurred_on, record.display_months)
        record.repair_from = (None if record.repair_after_months is None
                              else rules.earliest_repair(record.occurred_on,
                                                         record.repair_after_months))
    # The reference now stands for the corrected content (a re-push of it is "unchanged").
    record.content_hash = _content_hash(record.subject_bidx, {
        "catalogue_code": record.catalogue_code, "occurred_at": record.occurred_on,
        "summary": record.summary, "occupation": record.occupation})
    record.updated_at = now
    expired = record.display_until <= today
    if previous_code != cat.code:
        _leave_list(session, record, "corrected", now)
        if not expired:  # archived at once below: it never enters a list
            _enter_list(session, record, cat, now)
    if expired:
        _archive(session, record, "expired", now)
    emit(session, "record.corrected", {"record_id": str(record.id),
                                       "catalogue_code": record.catalogue_code},
         now=now, subject_bidx=record.subject_bidx)
    deps.rescore(session, [record.subject_bidx], now=now, today=today)
    session.flush()
    return record


def withdraw_record(session: Session, deps: Deps, provider: Principal,
                    record_id: uuid.UUID) -> None:
    """Withdrawal (撤回): the record is archived, no longer shown to partners nor scored."""
    now = deps.clock()
    record = _owned(session, provider, record_id)
    if record.status == "active":
        _archive(session, record, "withdrawn", now)
        deps.rescore(session, [record.subject_bidx], now=now, today=china_today(now))


def _archive(session: Session, record: CreditRecord, reason: str, now: datetime) -> None:
    record.status, record.archived_reason, record.archived_at = "archived", reason, now
    record.updated_at = now
    _leave_list(session, record, reason, now)


def archive_expired_batch(session: Session, deps: Deps, *, batch: int = 5000) -> int:
    """Daily sweep, one batch: archive records past their display period (R10). Idempotent;
    rows another worker (or a provider's change) holds are skipped, never archived twice.
    The worker commits each batch in a unit of its own and stops at a batch of 0."""
    now = deps.clock()
    today = china_today(now)
    records = list(session.scalars(
        select(CreditRecord).where(CreditRecord.status == "active",
                                   CreditRecord.display_until <= today)
        .limit(batch).with_for_update(skip_locked=True)))
    touched = set()
    for record in records:
        _archive(session, record, "expired", now)
        touched.add(record.subject_bidx)
    session.flush()
    if touched:
        deps.rescore(session, sorted(touched), now=now, today=today)
    return len(records)


def archive_expired(session: Session, deps: Deps, *, batch: int = 5000) -> int:
    """Every batch of the sweep inside the caller's unit (what it archived is no longer
    active there, so the loop ends)."""
    total = 0
    while archived := archive_expired_batch(session, deps, batch=batch):
        total += archived
    return total


# ---- query pieces for the domains that read records (scoring, credentials, consents) -------

def counted_points(today: date) -> Subquery:
    """``(bidx, points)`` of every record that counts towards a score today: active, inside
    its display period (R10) and already occurred."""
    return (select(CreditRecord.subject_bidx.label("bidx"), CreditRecord.points.label("points"))
            .where(CreditRecord.status == "active", CreditRecord.display_until > today,
                   CreditRecord.occurred_on <= today)
            .subquery("counted"))


def active_records(session: Session, bidx: bytes) -> list[rules.ActiveRecord]:
    rows = session.execute(
        select(CreditRecord, CatalogueItem)
        .join(CatalogueItem, CatalogueItem.code == CreditRecord.catalogue_code)
        .where(CreditRecord.subject_bidx == bidx, CreditRecord.status == "active"))
    out = []
    for record, item in rows:
        out.append(rules.ActiveRecord(
            record_id=str(record.id), catalogue_code=item.code, name_zh=item.name_zh,
            name_en=item.name_en, polarity=rules.Polarity(item.polarity),
            severity=rules.Severity(item.severity) if item.severity else None,
            points=record.points, occurred_on=record.occurred_on,
            display_months=record.display_months,
            repair_after_months=record.repair_after_months,
            repairable_by_volunteering=item.repairable_by_volunteering,
            under_objection=record.objection_status == "open"))
    return out


def black_listed(subject: Any) -> ColumnElement[bool]:
    """Whether ``subject`` (a bidx value or column) has an open black-list entry."""
    return (select(ListEntry.id).where(ListEntry.subject_bidx == subject,
                                       ListEntry.list == "black", ListEntry.left_at.is_(None))
            .exists())


def catalogue_by_code(session: Session) -> dict[str, CatalogueItem]:
    """Every catalogue item by its code: what pushed records are checked against."""
    return _catalogue(session)


def catalogue_codes(session: Session) -> frozenset[str]:
    """The code of every catalogue item (what a provider may be granted)."""
    return frozenset(session.scalars(select(CatalogueItem.code)))


def list_of(item: CatalogueItem) -> str | None:
    """The list (``red`` or ``black``) a record of ``item`` enters, if any."""
    return _list_of(item)


@dataclass(frozen=True)
class DefaultRecord:
    """A minor market-default record a partner's benefit session leads to, after notice and
    grace: ``ref`` names the session (the evidence), unique per partner."""

    subject_bidx: bytes
    partner_id: uuid.UUID
    catalogue_code: str
    ref: str
    summary: str
    occurred_on: date


def record_defaults(session: Session, deps: Deps, defaults: list[DefaultRecord], *,
                    now: datetime) -> dict[str, uuid.UUID]:
    """Write these default records (the worker's, not a provider push: the partner is the
    record's source, the catalogue item its rules), rescoring the citizens once. A ref
    already recorded for that partner is not written again: ``{ref: record id}`` covers
    both. The citizen can object to each like any other record."""
    if not defaults:
        return {}
    catalogue = _catalogue(session)
    today = china_today(now)
    out: dict[str, uuid.UUID] = {}
    for d in defaults:
        existing = session.scalar(select(CreditRecord.id).where(
            CreditRecord.provider_id == d.partner_id, CreditRecord.provider_ref == d.ref))
        if existing is not None:
            out[d.ref] = existing
            continue
        cat = catalogue.get(d.catalogue_code)
        if cat is None:
            raise ValueError(f"no catalogue item {d.catalogue_code!r}")
        digest = _content_hash(d.subject_bidx, {"catalogue_code": cat.code,
                                                "occurred_at": d.occurred_on,
                                                "summary": d.summary})
        record = CreditRecord(id=uuid.uuid4(), subject_bidx=d.subject_bidx,
                              provider_id=d.partner_id, provider_ref=d.ref,
                              content_hash=digest, occurred_on=d.occurred_on,
                              summary=d.summary[:500], occupation=None, status="active",
                              created_at=now, updated_at=now)
        _snapshot(record, cat)
        session.add(record)
        session.flush()
        if record.display_until <= today:
            _archive(session, record, "expired", now)
        else:
            _enter_list(session, record, cat, now)
        out[d.ref] = record.id
    deps.rescore(session, sorted({d.subject_bidx for d in defaults}), now=now, today=today)
    return out


# ---- what repairs (信用修复) and objections (异议) do to a record --------------------------

@dataclass(frozen=True)
class RecordFacts:
    """One record and the catalogue rules that apply to it, for the domains that decide on
    it (repairs, objections). ``repair_hours_required`` is the catalogue's value today."""

    id: uuid.UUID
    subject_bidx: bytes
    provider_id: uuid.UUID
    catalogue_code: str
    name_zh: str
    name_en: str
    polarity: str
    severity: str | None
    summary: str
    points: int
    occurred_on: date
    display_until: date
    repair_after_months: int | None
    repair_from: date | None
    repairable_by_volunteering: bool
    repair_hours_required: int | None
    status: str
    archived_reason: str | None
    objection_status: str | None


def _facts(record: CreditRecord, item: CatalogueItem) -> RecordFacts:
    volunteering = (item.repairable_by_volunteering and item.severity != "serious"
                    and record.repair_after_months is not None)
    return RecordFacts(
        id=record.id, subject_bidx=record.subject_bidx, provider_id=record.provider_id,
        catalogue_code=item.code, name_zh=item.name_zh, name_en=item.name_en,
        polarity=item.polarity, severity=item.severity, summary=record.summary,
        points=record.points, occurred_on=record.occurred_on,
        display_until=record.display_until, repair_after_months=record.repair_after_months,
        repair_from=record.repair_from, repairable_by_volunteering=volunteering,
        repair_hours_required=item.repair_hours_required if volunteering else None,
        status=record.status, archived_reason=record.archived_reason,
        objection_status=record.objection_status)


def _record_and_item(session: Session, record_id: uuid.UUID, *,
                     lock: bool = False) -> tuple[CreditRecord, CatalogueItem] | None:
    stmt = select(CreditRecord).where(CreditRecord.id == record_id)
    record = session.scalar(stmt.with_for_update() if lock else stmt)
    if record is None:
        return None
    item = session.get(CatalogueItem, record.catalogue_code)
    assert item is not None  # a foreign key
    return record, item


def record_facts(session: Session, record_id: uuid.UUID) -> RecordFacts:
    found = _record_and_item(session, record_id)
    if found is None:
        raise NotFound("No record has this id")
    return _facts(*found)


def subject_record(session: Session, bidx: bytes, record_id: uuid.UUID) -> RecordFacts:
    """One of this subject's records; another's answers exactly like a missing one."""
    found = _record_and_item(session, record_id)
    if found is None or found[0].subject_bidx != bidx:
        raise NotFound("No record of yours has this id")
    return _facts(*found)


def repair_candidates(session: Session, bidx: bytes, today: date) -> list[RecordFacts]:
    """The subject's displayed negative records, oldest first: what a repair could reach."""
    rows = session.execute(
        select(CreditRecord, CatalogueItem)
        .join(CatalogueItem, CatalogueItem.code == CreditRecord.catalogue_code)
        .where(CreditRecord.subject_bidx == bidx, CreditRecord.status == "active",
               CatalogueItem.polarity == "negative", CreditRecord.display_until > today,
               CreditRecord.occurred_on <= today)
        .order_by(CreditRecord.occurred_on, CreditRecord.id))
    return [_facts(r, i) for r, i in rows]


def archive_for_repair(session: Session, deps: Deps, record_id: uuid.UUID) -> bool:
    """A repair was approved (信用修复): the record is archived (kept, no longer shown to
    partners nor scored) and the score recomputed. False if it was no longer active."""
    now = deps.clock()
    found = _record_and_item(session, record_id, lock=True)
    if found is None or found[0].status != "active":
        return False
    record = found[0]
    _archive(session, record, "repaired", now)
    deps.rescore(session, [record.subject_bidx], now=now, today=china_today(now))
    session.flush()
    return True


def mark_disputed(session: Session, record_id: uuid.UUID, *, status: str | None,
                  note: str | None = None) -> None:
    """Show the record as under objection (``open``), as upheld with ``note``, or neither."""
    if status not in (None, "open", "upheld"):
        raise ValueError("unknown objection status")
    found = _record_and_item(session, record_id, lock=True)
    if found is None:
        raise NotFound("No record has this id")
    found[0].objection_status, found[0].objection_note = status, note


def correct_for_dispute(session: Session, deps: Deps, record_id: uuid.UUID,
                        changes: Mapping[str, Any]) -> CreditRecord:
    """An objection found the record wrong (异议更正): corrected as its provider would."""
    found = _record_and_item(session, record_id, lock=True)
    if found is None:
        raise NotFound("No record has this id")
    record = found[0]
    return _correct(session, deps, record, changes, provider_id=record.provider_id)


def delete_for_dispute(session: Session, deps: Deps, record_id: uuid.UUID) -> None:
    """An objection found the record should not exist (异议删除): archived as withdrawn, so
    it is kept for the file but neither shown nor scored, and the score recomputed."""
    now = deps.clock()
    found = _record_and_item(session, record_id, lock=True)
    if found is None:
        raise NotFound("No record has this id")
    record = found[0]
    if record.status == "active":
        _archive(session, record, "withdrawn", now)
        deps.rescore(session, [record.subject_bidx], now=now, today=china_today(now))
    session.flush()


def black_list_under_objection(subject: Any) -> ColumnElement[bool]:
    """Whether an open black-list entry of ``subject`` rests on a record under objection."""
    return (select(ListEntry.id)
            .join(CreditRecord, CreditRecord.id == ListEntry.record_id)
            .where(ListEntry.subject_bidx == subject, ListEntry.list == "black",
                   ListEntry.left_at.is_(None), CreditRecord.objection_status == "open")
            .exists())


def export_records(session: Session, deps: Deps, account_id: uuid.UUID,
                   bidx: bytes) -> list[dict[str, Any]]:
    """Every record about the citizen for their export, archived ones included."""
    rows = session.execute(select(CreditRecord, CatalogueItem.name_zh)
                           .join(CatalogueItem, CatalogueItem.code == CreditRecord.catalogue_code)
                           .where(CreditRecord.subject_bidx == bidx)
                           .order_by(CreditRecord.created_at, CreditRecord.id)).all()
    names = client_refs(session, {r.provider_id for r, _ in rows})
    return [row(r, "id", "catalogue_code", "provider_id", "provider_ref", "occurred_on",
                "summary", "occupation", "points", "display_months", "repair_after_months",
                "display_until", "repair_from", "status", "archived_reason", "archived_at",
                "objection_status", "objection_note", "created_at", "updated_at",
                catalogue_name=name,
                provider_name=names[r.provider_id].name if r.provider_id in names else None)
            for r, name in rows]


def export_list_entries(session: Session, deps: Deps, account_id: uuid.UUID,
                        bidx: bytes) -> list[dict[str, Any]]:
    """Every entry of the citizen on a red or black list, past ones included (export)."""
    return [row(e, "id", "record_id", "list", "catalogue_code", "legal_basis", "entered_at",
                "left_at", "left_reason")
            for e in session.scalars(select(ListEntry).where(ListEntry.subject_bidx == bidx)
                                     .order_by(ListEntry.entered_at, ListEntry.id))]
def holds_records_for(session: Session, provider_id: uuid.UUID, bidx: bytes) -> bool:
    """Whether this provider has (or had: archived ones count) a record of this subject:
    what lets it look at the person's commitments (信用承诺)."""
    return session.scalar(select(CreditRecord.id).where(
        CreditRecord.provider_id == provider_id, CreditRecord.subject_bidx == bidx)
        .limit(1)) is not None
