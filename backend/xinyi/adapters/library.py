"""Libraries (信易阅): deposit-free loans of books.

``POST /v1/adapters/library/loans {credential, books: [{barcode, title, deposit_fen,
price_fen}], due_at}`` lends the books. The deposits of the first ``max_books`` books (the
benefit's limit) are waivable; further books are charged normally. ``…/loans/{id}/returns
{barcodes}`` takes books back, some at a time; ``…/loans/{id}/lost {barcodes}`` reports books
that will not come back. When every book is back or lost the loan closes: all back means
fulfilled (late or not: the overdue days are reported), a lost book is a default with its
price. ``…/loans/{id}/settle`` records that the citizen paid during grace.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from marshmallow import Schema, fields, validate

from xinyi.adapters import base
from xinyi.adapters.errors import BookAlreadyBack, BookNotLent
from xinyi.adapters.models import AdapterRecord
from xinyi.adapters.schemas import (
    DATE_TIME,
    AdapterOut,
    SettleIn,
    amount,
    barcode,
    credential,
    due_at,
    reference,
)
from xinyi.errors import ValidationFailed
from xinyi.partner_kinds import PartnerKind
from xinyi.schemas import StrictSchema

MAX_BOOKS_PER_LOAN = 50
DAY_SECONDS = 86_400


class BookIn(StrictSchema):
    barcode = barcode()
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    deposit_fen = amount("The deposit you would ask of anyone", required=True)
    price_fen = amount("What the book costs if it is lost", required=True)


class LoanIn(StrictSchema):
    credential = credential()
    books = fields.List(fields.Nested(BookIn), required=True,
                        validate=validate.Length(min=1, max=MAX_BOOKS_PER_LOAN))
    due_at = due_at(required=True)
    reference = reference()


class BarcodesIn(StrictSchema):
    barcodes = fields.List(barcode(), required=True,
                           validate=validate.Length(min=1, max=MAX_BOOKS_PER_LOAN))


class BookOut(Schema):
    barcode = fields.String(required=True)
    title = fields.String(required=True)
    deposit_fen = fields.Integer(required=True)
    price_fen = fields.Integer(required=True)
    waived_fen = fields.Integer(required=True, metadata={
        "description": "The part of its deposit covered by the card"})
    status = fields.String(required=True, validate=validate.OneOf(["lent", "returned", "lost"]))
    back_at = fields.String(required=True, allow_none=True, metadata=DATE_TIME)


class LoanOut(AdapterOut):
    books = fields.List(fields.Nested(BookOut), required=True)
    books_out = fields.Integer(required=True, metadata={"description": "Books not back yet"})
    overdue_days = fields.Integer(required=True, metadata={
        "description": "Days past due_at (until the last book came back)"})
    lost_fen = fields.Integer(required=True, metadata={
        "description": "The price of the books reported lost"})


def overdue_days(due: datetime | None, until: datetime) -> int:
    """Started days past due: one second late is one day."""
    if due is None or until <= due:
        return 0
    return -(-int((until - due).total_seconds()) // DAY_SECONDS)


def _render(record: AdapterRecord, now: datetime) -> dict[str, Any]:
    books: list[dict[str, Any]] = record.details["books"]
    return {"books": books, "books_out": sum(1 for b in books if b["status"] == "lent"),
            "overdue_days": overdue_days(record.due_at, record.closed_at or now),
            "lost_fen": sum(b["price_fen"] for b in books if b["status"] == "lost")}


def _lend(call: base.Call, body: dict[str, Any]) -> base.Outcome:
    books = body["books"]
    seen: set[str] = set()
    for i, book in enumerate(books):
        if book["barcode"] in seen:
            raise ValidationFailed.at(f"books.{i}.barcode", "appears twice in this loan")
        seen.add(book["barcode"])
        base.check_amount(f"books.{i}.deposit_fen", book["deposit_fen"], allow_zero=True)
        base.check_amount(f"books.{i}.price_fen", book["price_fen"], allow_zero=True)
    total = sum(b["deposit_fen"] for b in books)
    base.check_amount("books", total, allow_zero=True)
    base.check_due("due_at", body["due_at"], call.now)

    def terms(limits: Mapping[str, int]) -> base.Terms:
        max_books = limits.get("max_books", 0)
        return base.Terms(total, sum(b["deposit_fen"] for b in books[:max_books]))

    outcome = base.open_record(call, KIND, credential=body["credential"], terms=terms,
                               due_at=body["due_at"], reference=body.get("reference"),
                               details={"books": []})
    left = outcome.record.waived_fen
    lent = []
    for book in books:  # the waived amount covers the first books' deposits, in order
        waived = min(book["deposit_fen"], left)
        left -= waived
        lent.append({**book, "waived_fen": waived, "status": "lent", "back_at": None})
    base.set_details(call, outcome.record, {"books": lent})
    return outcome


def _books_back(call: base.Call, record: AdapterRecord, barcodes: list[str],
                status: str) -> base.Outcome:
    base.must_be_open(record)
    books: list[dict[str, Any]] = [dict(b) for b in record.details["books"]]
    by_code = {b["barcode"]: b for b in books}
    if len(set(barcodes)) != len(barcodes):
        raise ValidationFailed.at("barcodes", "a barcode appears twice")
    for i, code in enumerate(barcodes):
        book = by_code.get(code)
        if book is None:
            raise BookNotLent.at(f"barcodes.{i}", "this loan did not lend this book")
        if book["status"] != "lent":
            raise BookAlreadyBack(f"barcodes.{i} was already {book['status']}")
        book["status"], book["back_at"] = status, call.now.isoformat()
    base.set_details(call, record, {**record.details, "books": books})
    if any(b["status"] == "lent" for b in books):
        return base.Outcome(record)
    lost = sum(b["price_fen"] for b in books if b["status"] == "lost")
    return base.Outcome(record, base.close(call, KIND, record, owed_fen=lost, scope="close"))


def _returns(call: base.Call, record: AdapterRecord, body: dict[str, Any]) -> base.Outcome:
    return _books_back(call, record, body["barcodes"], "returned")


def _lost(call: base.Call, record: AdapterRecord, body: dict[str, Any]) -> base.Outcome:
    return _books_back(call, record, body["barcodes"], "lost")


def _settle(call: base.Call, record: AdapterRecord, body: dict[str, Any]) -> base.Outcome:
    del body
    return base.settle(call, KIND, record)


KIND = base.KindSpec(
    kind=PartnerKind.LIBRARY.value,
    benefit="library.deposit_free",
    noun="loans",
    description="Libraries (信易阅): deposit-free loans, partial returns, lost books",
    answer=LoanOut,
    render=_render,
    operations=(
        base.Operation("lend", "", LoanIn, "Lend books; deposits waived up to max_books",
                       opens=_lend, status=201),
        base.Operation("returns", "/<uuid:record_id>/returns", BarcodesIn,
                       "Books come back (some or all); the loan closes when all are back",
                       acts=_returns),
        base.Operation("lost", "/<uuid:record_id>/lost", BarcodesIn,
                       "Books reported lost: a default with their price once the loan closes",
                       acts=_lost),
        base.Operation("settle", "/<uuid:record_id>/settle", SettleIn,
                       "The citizen paid what the default owed, during grace: no record",
                       acts=_settle),
    ),
    events={
        "benefit_session.opened": "library.loan_opened",
        "benefit_session.closed": "library.loan_closed",
        "benefit_session.overdue": "library.loan_overdue",
        "benefit_session.defaulted": "library.loan_defaulted",
        "benefit_session.settled": "library.loan_settled",
        "benefit_session.recorded": "library.loan_recorded",
    },
)
