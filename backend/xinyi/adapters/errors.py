"""The adapters' refusals, each with a stable ``code``. None quotes a submitted value."""

from __future__ import annotations

from xinyi.errors import Conflict, Forbidden, NotFound, ValidationFailed


class KindMismatch(Forbidden):
    code = "partner_kind_mismatch"
    title = "This partner's kind does not use this adapter"

    def __init__(self, route_kind: str, partner_kind: str | None) -> None:
        super().__init__(f"/v1/adapters/{route_kind} serves {route_kind} partners; this API "
                         f"key belongs to a {partner_kind or 'partner without a'} kind")


class RecordNotFound(NotFound):
    code = "adapter_record_not_found"
    title = "No such record of this partner"


class RecordClosed(Conflict):
    code = "adapter_record_closed"
    title = "This record is closed; nothing more can be reported on it"


class NothingToSettle(Conflict):
    code = "nothing_to_settle"
    title = "Nothing is owed on this record in its grace period"


class BookNotLent(ValidationFailed):
    code = "book_not_lent"
    title = "A barcode names a book that this loan did not lend"


class BookAlreadyBack(Conflict):
    code = "book_already_back"
    title = "A book was already returned or reported lost"


class CheckoutWindowClosed(Conflict):
    code = "checkout_window_closed"
    title = "Charges can be put on a deposit-free stay only at checkout or within 72 hours"
