"""Library kit (信易阅): deposit-free loans, partial returns, lost books, and their events.

    from xinyi_partner.library import Book, LibraryClient, LibraryEvents, LoanOverdue

    client = LibraryClient("https://api.xinyi.example.cn", "xyk_…")
    loan = client.lend(qr_text, [Book("9787020002207", "红楼梦", 3000, 4500)], due_at=due)
    if loan.session_id is None:  # standard terms: take the deposit as usual
        ...
    loan = client.return_books(loan.id, ["9787020002207"])   # closes when all are back
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from ._adapter import (
    GENERIC_EVENTS,
    AdapterAnswer,
    AdapterClient,
    EventDispatcher,
    SessionEvent,
    event_classes,
    iso,
    parse_time,
)

__all__ = ["Book", "LibraryClient", "LibraryEvents", "Loan", "LoanClosed",
           "LoanDefaulted", "LoanOpened", "LoanOverdue", "LoanRecorded", "LoanSettled"]


@dataclass(frozen=True)
class Book:
    """A book to lend: its deposit (asked of anyone) and price (if it is lost), in fen."""

    barcode: str
    title: str
    deposit_fen: int
    price_fen: int




@dataclass(frozen=True)
class LentBook:
    barcode: str
    title: str
    deposit_fen: int
    price_fen: int
    waived_fen: int  # the part of its deposit the card covers
    status: str  # lent | returned | lost
    back_at: datetime | None


@dataclass(frozen=True)
class Loan(AdapterAnswer):
    books: tuple[LentBook, ...]
    books_out: int
    overdue_days: int
    lost_fen: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Loan:
        books = tuple(LentBook(b["barcode"], b["title"], b["deposit_fen"], b["price_fen"],
                               b["waived_fen"], b["status"], parse_time(b.get("back_at")))
                      for b in data["books"])
        return cls(**AdapterAnswer.common(data), books=books, books_out=data["books_out"],
                   overdue_days=data["overdue_days"], lost_fen=data["lost_fen"])


class LibraryClient(AdapterClient):
    """``/v1/adapters/library`` with a library partner's API key."""

    kind = "library"

    def lend(self, credential: str, books: Sequence[Book], *, due_at: datetime,
             reference: str | None = None, idempotency_key: str | None = None) -> Loan:
        """Lend ``books``; the deposits of the first ``max_books`` may be waived."""
        body: dict[str, Any] = {"credential": credential, "due_at": iso(due_at),
                                "books": [asdict(b) for b in books]}
        if reference is not None:
            body["reference"] = reference
        return Loan.from_json(self._post("/loans", body, idempotency_key))

    def return_books(self, loan_id: str, barcodes: Sequence[str], *,
                     idempotency_key: str | None = None) -> Loan:
        """Some or all books came back; the loan closes when every book is back or lost."""
        return Loan.from_json(self._post(f"/loans/{loan_id}/returns",
                                         {"barcodes": list(barcodes)}, idempotency_key))

    def report_lost(self, loan_id: str, barcodes: Sequence[str], *,
                    idempotency_key: str | None = None) -> Loan:
        """Books that will not come back: a default of their price once the loan closes."""
        return Loan.from_json(self._post(f"/loans/{loan_id}/lost",
                                         {"barcodes": list(barcodes)}, idempotency_key))

    def settle(self, loan_id: str, *, idempotency_key: str | None = None) -> Loan:
        """The citizen paid what the default owed, during grace: no record is written."""
        return Loan.from_json(self._post(f"/loans/{loan_id}/settle", {}, idempotency_key))

    def get(self, loan_id: str) -> Loan:
        return Loan.from_json(self._get(f"/loans/{loan_id}"))


class LoanOpened(SessionEvent):
    TYPE = "library.loan_opened"


class LoanClosed(SessionEvent):
    TYPE = "library.loan_closed"


class LoanOverdue(SessionEvent):
    TYPE = "library.loan_overdue"


class LoanDefaulted(SessionEvent):
    TYPE = "library.loan_defaulted"


class LoanSettled(SessionEvent):
    TYPE = "library.loan_settled"


class LoanRecorded(SessionEvent):
    TYPE = "library.loan_recorded"


EVENTS = {**GENERIC_EVENTS, **event_classes(LoanOpened, LoanClosed, LoanOverdue,
                                            LoanDefaulted, LoanSettled, LoanRecorded)}


class LibraryEvents(EventDispatcher):
    """The dispatcher for a library's webhook endpoint: ``@events.on(LoanOverdue)``."""

    def __init__(self, secret: str, *, tolerance_seconds: int = 300) -> None:
        super().__init__(secret, EVENTS, tolerance_seconds=tolerance_seconds)
