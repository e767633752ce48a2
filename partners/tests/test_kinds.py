"""The per-kind kit: typed clients of /v1/adapters/<kind>/… and typed webhook events.

The clients talk to a local stand-in server that records what it was sent and answers as
the deployment does; the dispatcher is fed deliveries signed by the official library."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook
from xinyi_partner import WebhookError
from xinyi_partner._adapter import ApiError, SessionEvent, UnknownEvent
from xinyi_partner.bike import BikeClient, Ride
from xinyi_partner.hospital import BillItem, HospitalClient
from xinyi_partner.hotel import HotelClient, StayUnsettled
from xinyi_partner.library import (
    Book,
    LibraryClient,
    LibraryEvents,
    Loan,
    LoanOverdue,
)
from xinyi_partner.scenic import ScenicClient

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
COMMON = {"id": "r1", "kind": "library", "session_id": "s1", "decision": "eligible",
          "state": "open", "status": "open", "amount_fen": 6000, "waived_fen": 6000,
          "charge_normally_fen": 0, "amount_owed_fen": None,
          "due_at": "2026-12-15T08:00:00+00:00", "reference": "ref-1",
          "created_at": "2026-12-01T08:00:00+00:00", "closed_at": None,
          "next_step": "Return or pay by the due date", "next_step_at": None}


@dataclass
class Stand:
    answers: list[tuple[int, dict[str, Any]]]
    seen: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    drop_first: bool = False


@contextmanager
def stand(*answers: tuple[int, dict[str, Any]], drop_first: bool = False) -> Iterator[Stand]:
    state = Stand(list(answers), drop_first=drop_first)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.seen.append({"method": self.command, "path": self.path, "body": body,
                               "headers": dict(self.headers)})
            if state.drop_first:
                state.drop_first = False
                self.close_connection = True
                self.connection.close()  # the answer is lost after the server acted
                return
            status, doc = state.answers.pop(0)
            raw = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/problem+json" if status >= 400
                             else "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def loan_json(**extra: Any) -> dict[str, Any]:
    return {**COMMON, "books": [
        {"barcode": "B1", "title": "红楼梦", "deposit_fen": 3000, "price_fen": 4500,
         "waived_fen": 3000, "status": "lent", "back_at": None},
        {"barcode": "B2", "title": "水浒传", "deposit_fen": 3000, "price_fen": 4000,
         "waived_fen": 3000, "status": "returned", "back_at": "2026-12-02T08:00:00+00:00"}],
        "books_out": 1, "overdue_days": 0, "lost_fen": 0, **extra}


def test_library_client_sends_the_contract_and_types_the_answer() -> None:
    with stand((201, loan_json())) as server:
        client = LibraryClient(server.url, "xyk_a_b")
        loan = client.lend("XY1:abc", [Book("B1", "红楼梦", 3000, 4500)],
                           due_at=NOW + timedelta(days=14), reference="ref-1",
                           idempotency_key="k-1")
    sent = server.seen[0]
    assert sent["method"] == "POST" and sent["path"] == "/v1/adapters/library/loans"
    assert sent["headers"]["Authorization"] == "Bearer xyk_a_b"
    assert sent["headers"]["Idempotency-Key"] == "k-1"
    assert sent["body"] == {"credential": "XY1:abc", "due_at": "2026-12-15T08:00:00+00:00",
                            "reference": "ref-1", "books": [
                                {"barcode": "B1", "title": "红楼梦", "deposit_fen": 3000,
                                 "price_fen": 4500}]}
    assert isinstance(loan, Loan) and loan.session_id == "s1" and loan.books_out == 1
    assert loan.due_at == NOW + timedelta(days=14)
    assert loan.books[1].status == "returned" and loan.books[1].back_at is not None


def test_every_write_carries_an_idempotency_key_and_a_lost_answer_is_retried_with_it() -> None:
    with stand((200, loan_json()), drop_first=True) as server:
        LibraryClient(server.url, "xyk_a_b").return_books("r1", ["B2"])
    assert len(server.seen) == 2
    first, retry = (s["headers"]["Idempotency-Key"] for s in server.seen)
    assert first == retry and len(first) >= 32
    assert server.seen[0]["body"] == {"barcodes": ["B2"]}


def test_a_refusal_is_an_api_error_with_the_problem_code() -> None:
    problem = {"type": "x", "title": "t", "status": 422, "code": "book_not_lent",
               "detail": "A barcode names a book that this loan did not lend",
               "errors": [{"field": "barcodes.0", "location": "json", "messages": ["m"]}]}
    with stand((422, problem)) as server, pytest.raises(ApiError) as caught:
        LibraryClient(server.url, "xyk_a_b").return_books("r1", ["nope"])
    assert caught.value.status == 422 and caught.value.code == "book_not_lent"
    assert caught.value.errors[0]["field"] == "barcodes.0"


def test_naive_datetimes_are_refused_before_sending() -> None:
    client = BikeClient("http://127.0.0.1:9", "xyk_a_b")
    with pytest.raises(ValueError, match="aware"):
        client.unlock("XY1:x", bike_id="B", deposit_fen=1, due_at=datetime(2026, 12, 2))


def test_each_kind_client_speaks_its_routes() -> None:
    ride = {**COMMON, "kind": "bike", "bike_id": "BK-1", "ended_at": None, "fee_fen": None,
            "unpaid_fen": 0}
    encounter = {**COMMON, "kind": "hospital", "department": "内科", "credit_line_fen": 200000,
                 "line_left_fen": 188000, "bills": [{"id": "b", "total_fen": 12000,
                                                     "deferred_fen": 12000, "pay_now_fen": 0,
                                                     "billed_at": COMMON["created_at"]}],
                 "deferred_fen": 12000, "paid_fen": 0, "outstanding_fen": 12000}
    stay = {**COMMON, "kind": "hotel", "room": "1208", "nights": 2,
            "checkout_by": COMMON["due_at"], "checked_out_at": None, "charges_fen": None,
            "unpaid_fen": 0}
    entry = {**COMMON, "kind": "scenic", "session_id": None, "state": "admitted",
             "status": "closed", "discount_percent": 20}
    with stand((201, ride), (200, ride), (201, encounter), (200, encounter), (201, stay),
               (200, stay), (201, entry)) as server:
        bike = BikeClient(server.url, "k")
        assert isinstance(bike.unlock("q", bike_id="BK-1", deposit_fen=29900,
                                      due_at=NOW + timedelta(hours=2)), Ride)
        bike.lock("r1", ended_at=NOW, fee_fen=150, paid_fen=0)
        hospital = HospitalClient(server.url, "k")
        hospital.open("q", department="内科", due_at=NOW + timedelta(days=30))
        assert hospital.bill("r1", [BillItem("X", "胸片", 12000)]).outstanding_fen == 12000
        hotel = HotelClient(server.url, "k")
        hotel.check_in("q", room="1208", nights=2, deposit_fen=50000)
        hotel.checkout("r1", charges_fen=3800)
        assert ScenicClient(server.url, "k").admit("q", ticket_fen=8000).discount_percent == 20
    assert [(s["method"], s["path"]) for s in server.seen] == [
        ("POST", "/v1/adapters/bike/rides"), ("POST", "/v1/adapters/bike/rides/r1/lock"),
        ("POST", "/v1/adapters/hospital/encounters"),
        ("POST", "/v1/adapters/hospital/encounters/r1/bills"),
        ("POST", "/v1/adapters/hotel/stays"), ("POST", "/v1/adapters/hotel/stays/r1/checkout"),
        ("POST", "/v1/adapters/scenic/entries")]
    assert server.seen[1]["body"] == {"ended_at": NOW.isoformat(), "fee_fen": 150,
                                      "paid_fen": 0}
    assert server.seen[3]["body"] == {"items": [{"code": "X", "name": "胸片",
                                                 "amount_fen": 12000}]}


def _secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _delivery(secret: str, message: dict[str, Any], msg_id: str) -> tuple[dict[str, str], bytes]:
    body = json.dumps(message, ensure_ascii=False).encode()
    sent = datetime.now(UTC)
    return ({"webhook-id": msg_id, "webhook-timestamp": str(int(sent.timestamp())),
             "webhook-signature": Webhook(secret).sign(msg_id, sent, body.decode())}, body)


def _message(kind_type: str, seq: int = 7) -> dict[str, Any]:
    return {"type": kind_type, "timestamp": "2026-12-16T00:00:00+00:00", "seq": seq,
            "id": "msg_" + "a" * 32, "version": 1,
            "data": {"session_id": "s1", "state": "overdue", "reference": "ref-1",
                     "amount_fen": 6000, "waived_fen": 6000, "amount_owed_fen": None,
                     "due_at": "2026-12-15T08:00:00+00:00", "grace_until": None,
                     "record_id": None, "kind": "library"}}


def test_dispatcher_verifies_types_and_calls_handlers_once_per_message() -> None:
    secret = _secret()
    events = LibraryEvents(secret)
    overdue: list[LoanOverdue] = []
    every: list[SessionEvent] = []
    events.on(LoanOverdue)(overdue.append)
    events.on(SessionEvent)(every.append)
    headers, body = _delivery(secret, _message("library.loan_overdue"), "msg_1")
    event = events.handle(headers, body)
    assert isinstance(event, LoanOverdue) and event.state == "overdue" and event.seq == 7
    assert event.due_at == datetime(2026, 12, 15, 8, tzinfo=UTC) and event.reference == "ref-1"
    assert overdue == [event] and every == [event]
    assert events.handle(headers, body) is None  # a redelivery: handlers do not run again
    assert len(overdue) == 1


def test_dispatcher_refuses_a_forged_delivery_and_keeps_unknown_types() -> None:
    secret = _secret()
    events = LibraryEvents(secret)
    headers, body = _delivery(_secret(), _message("library.loan_overdue"), "msg_2")
    with pytest.raises(WebhookError) as caught:
        events.handle(headers, body)
    assert caught.value.code == "signature_invalid"
    headers, body = _delivery(secret, _message("library.something_new"), "msg_3")
    assert isinstance(events.handle(headers, body), UnknownEvent)


def test_a_handler_that_fails_lets_the_redelivery_run_it_again() -> None:
    from xinyi_partner.hotel import HotelEvents

    secret = _secret()
    events = HotelEvents(secret)
    calls: list[str] = []

    def flaky(event: StayUnsettled) -> None:
        calls.append(event.type)
        if len(calls) == 1:
            raise RuntimeError("database down")

    events.on(StayUnsettled)(flaky)
    headers, body = _delivery(secret, _message("hotel.stay_unsettled"), "msg_4")
    with pytest.raises(RuntimeError):
        events.handle(headers, body)
    assert isinstance(events.handle(headers, body), StayUnsettled)
    assert calls == ["hotel.stay_unsettled", "hotel.stay_unsettled"]


def test_a_receiver_that_verified_by_itself_hands_over_the_parsed_message() -> None:
    from xinyi_partner.bike import BikeEvents, RideFeeUnpaid

    events = BikeEvents(_secret())
    got: list[RideFeeUnpaid] = []
    events.on(RideFeeUnpaid)(got.append)
    message = _message("bike.ride_fee_unpaid")
    events.handle_message(message)
    events.handle_message(message)  # the same id again: handled once
    assert len(got) == 1 and got[0].message_id == message["id"]
