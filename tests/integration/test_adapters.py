"""Partner-kind adapters over HTTP: each kind's words on top of verification and sessions.

Every kind: the common answer, its own rules (partial returns, lost books, unpaid fees,
bills beyond the line, the checkout window, single-use entry), never a refusal of service
(not eligible or a used-up cap is 201 with ``session_id: null``), the kind of the key, bad
input refused naming the rule with nothing written, and the Idempotency-Key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import (
    SENSITIVE_VALUES,
    api_client_headers,
    bearer,
    count,
    login,
    register_citizen,
    staff_headers,
)
from xinyi.adapters.events import CATALOGUE, kind_event_type
from xinyi.adapters.models import AdapterRecord
from xinyi.adapters.registry import KINDS
from xinyi.benefits.models import BenefitSession
from xinyi.benefits.service import exposure_of
from xinyi.citizens.service import citizen_bidx
from xinyi.credentials.models import Verification
from xinyi.worker import benefit_session_sweeps

A = "/v1/adapters"


class World:
    """An operator, partners of each kind and citizens on one app, with a clock we move."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app, self.client = app, client
        self.deps = app.extensions["xinyi"]
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.deps.clock = lambda: self.now
        self.operator = staff_headers(app, client, "operator")

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def partner(self, kind: str) -> dict[str, str]:
        headers, _ = api_client_headers(self.client, self.operator, "partners", kind=kind)
        return headers

    def citizen(self) -> tuple[dict[str, str], bytes]:
        person = register_citizen(self.client)
        headers = bearer(login(self.client, person["phone"])["access_token"])
        account = uuid.UUID(self.client.get("/v1/me", headers=headers).get_json()["id"])
        with self.deps.db.session() as s:
            return headers, citizen_bidx(s, account)

    def credential(self, citizen: dict[str, str]) -> str:
        resp = self.client.post("/v1/me/credentials", json={"count": 1}, headers=citizen)
        assert resp.status_code == 201, resp.get_json()
        item = resp.get_json()["items"][0]
        SENSITIVE_VALUES.update([item["qr_payload"], item["short_code"]])
        return str(item["qr_payload"])

    def due(self, **delta: float) -> str:
        return (self.now + timedelta(**delta)).isoformat()

    def post(self, partner: dict[str, str], path: str, body: dict[str, Any] | None = None,
             key: str | None = None) -> Any:
        headers = {**partner, **({"Idempotency-Key": key} if key else {})}
        return self.client.post(A + path, json=body if body is not None else {},
                                headers=headers)

    def ok(self, partner: dict[str, str], path: str, body: dict[str, Any] | None = None,
           status: int = 200) -> dict[str, Any]:
        resp = self.post(partner, path, body)
        assert resp.status_code == status, resp.get_json()
        answer: dict[str, Any] = resp.get_json()
        return answer

    def session_state(self, partner: dict[str, str], session_id: str) -> str:
        resp = self.client.get(f"/v1/partner/benefit-sessions/{session_id}", headers=partner)
        assert resp.status_code == 200, resp.get_json()
        return str(resp.get_json()["state"])

    def min_score(self, code: str, score: int) -> None:
        resp = self.client.patch(f"/v1/admin/benefit-rules/{code}", json={"min_score": score},
                                 headers=self.operator)
        assert resp.status_code == 200, resp.get_json()

    def exposure(self, bidx: bytes) -> int:
        with self.deps.db.session() as s:
            return exposure_of(s, bidx)


@pytest.fixture
def world(app: Flask, client: FlaskClient) -> World:
    return World(app, client)


def books(n: int, deposit: int = 2000, price: int = 4500) -> list[dict[str, Any]]:
    return [{"barcode": f"978-{i}", "title": f"书{i}", "deposit_fen": deposit,
             "price_fen": price} for i in range(n)]


COMMON = {"id", "kind", "session_id", "decision", "state", "status", "amount_fen",
          "waived_fen", "charge_normally_fen", "amount_owed_fen", "due_at", "reference",
          "created_at", "closed_at", "next_step", "next_step_at"}


# ---- library ----

def test_a_loan_waives_the_deposits_of_max_books_and_charges_the_rest(world: World) -> None:
    library = world.partner("library")
    citizen, bidx = world.citizen()
    loan = world.ok(library, "/library/loans", {"credential": world.credential(citizen),
                                                "books": books(6), "due_at": world.due(days=14),
                                                "reference": "借阅-1"}, 201)
    assert set(loan) >= COMMON and loan["kind"] == "library"
    assert loan["decision"] == "eligible" and loan["state"] == "open"
    assert loan["session_id"] is not None and loan["reference"] == "借阅-1"
    # max_books is 5: five deposits (2000 each) waived, the sixth charged normally.
    assert (loan["amount_fen"], loan["waived_fen"], loan["charge_normally_fen"]) == (
        12000, 10000, 2000)
    assert [b["waived_fen"] for b in loan["books"]] == [2000] * 5 + [0]
    assert loan["books_out"] == 6 and loan["overdue_days"] == 0
    assert world.exposure(bidx) == 10000
    assert world.session_state(library, loan["session_id"]) == "open"


def test_partial_returns_then_the_loan_closes_fulfilled_when_all_are_back(
        world: World) -> None:
    library = world.partner("library")
    citizen, bidx = world.citizen()
    loan = world.ok(library, "/library/loans", {"credential": world.credential(citizen),
                                                "books": books(3), "due_at": world.due(days=14)},
                    201)
    lid = loan["id"]
    part = world.ok(library, f"/library/loans/{lid}/returns", {"barcodes": ["978-0", "978-2"]})
    assert part["status"] == "open" and part["state"] == "open" and part["books_out"] == 1
    assert [b["status"] for b in part["books"]] == ["returned", "lent", "returned"]
    assert world.exposure(bidx) == 6000  # held until the loan closes

    # A book this loan never lent: named, and nothing changes.
    resp = world.post(library, f"/library/loans/{lid}/returns", {"barcodes": ["978-1", "nope"]})
    assert resp.status_code == 422 and resp.get_json()["code"] == "book_not_lent"
    assert resp.get_json()["errors"][0]["field"] == "barcodes.1"
    again = world.post(library, f"/library/loans/{lid}/returns", {"barcodes": ["978-0"]})
    assert again.status_code == 409 and again.get_json()["code"] == "book_already_back"
    assert world.client.get(f"{A}/library/loans/{lid}", headers=library).get_json()[
        "books_out"] == 1

    done = world.ok(library, f"/library/loans/{lid}/returns", {"barcodes": ["978-1"]})
    assert done["status"] == "closed" and done["state"] == "fulfilled"
    assert done["amount_owed_fen"] == 0 and done["closed_at"] is not None
    assert world.session_state(library, loan["session_id"]) == "fulfilled"
    assert world.exposure(bidx) == 0
    closed = world.post(library, f"/library/loans/{lid}/returns", {"barcodes": ["978-1"]})
    assert closed.status_code == 409 and closed.get_json()["code"] == "adapter_record_closed"


def test_overdue_days_are_reported_and_a_late_return_leaves_no_default(world: World) -> None:
    library = world.partner("library")
    citizen, _ = world.citizen()
    loan = world.ok(library, "/library/loans", {"credential": world.credential(citizen),
                                                "books": books(1), "due_at": world.due(days=1)},
                    201)
    world.advance(days=3, hours=1)
    benefit_session_sweeps(world.deps)
    got = world.client.get(f"{A}/library/loans/{loan['id']}", headers=library).get_json()
    assert got["state"] == "overdue" and got["overdue_days"] == 3
    back = world.ok(library, f"/library/loans/{loan['id']}/returns", {"barcodes": ["978-0"]})
    assert back["state"] == "fulfilled" and back["overdue_days"] == 3
    world.advance(days=10)
    later = world.client.get(f"{A}/library/loans/{loan['id']}", headers=library).get_json()
    assert later["overdue_days"] == 3  # counted until the book came back


def test_a_lost_book_is_a_default_of_its_price_and_can_be_settled_in_grace(
        world: World) -> None:
    library = world.partner("library")
    citizen, bidx = world.citizen()
    loan = world.ok(library, "/library/loans", {"credential": world.credential(citizen),
                                                "books": books(2, price=3900),
                                                "due_at": world.due(days=14)}, 201)
    lid = loan["id"]
    world.ok(library, f"/library/loans/{lid}/returns", {"barcodes": ["978-0"]})
    lost = world.ok(library, f"/library/loans/{lid}/lost", {"barcodes": ["978-1"]})
    assert lost["state"] == "defaulted" and lost["amount_owed_fen"] == 3900
    assert lost["lost_fen"] == 3900 and lost["status"] == "closed"
    assert world.exposure(bidx) == 0
    inbox = world.client.get("/v1/me/notifications", headers=citizen).get_json()["items"]
    assert [n["template"] for n in inbox] == ["benefit_session_defaulted"]
    settled = world.ok(library, f"/library/loans/{lid}/settle")
    assert settled["state"] == "settled"
    world.advance(days=8)
    benefit_session_sweeps(world.deps)
    assert world.session_state(library, loan["session_id"]) == "settled"
    records = world.client.get("/v1/me/records", headers=citizen).get_json()["items"]
    assert records == []


# ---- bike ----

def test_a_ride_unlocks_deposit_free_and_an_unpaid_fee_is_a_default(world: World) -> None:
    bike = world.partner("bike")
    citizen, bidx = world.citizen()
    ride = world.ok(bike, "/bike/rides", {"credential": world.credential(citizen),
                                          "bike_id": "BK-1024", "deposit_fen": 29900,
                                          "due_at": world.due(hours=6)}, 201)
    assert (ride["waived_fen"], ride["charge_normally_fen"], ride["bike_id"]) == (
        29900, 0, "BK-1024")
    world.advance(minutes=25)
    bad = world.post(bike, f"/bike/rides/{ride['id']}/lock",
                     {"ended_at": world.due(minutes=-40), "fee_fen": 150})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "ended_at"
    over = world.post(bike, f"/bike/rides/{ride['id']}/lock",
                      {"ended_at": world.due(), "fee_fen": 150, "paid_fen": 200})
    assert over.status_code == 422 and over.get_json()["errors"][0]["field"] == "paid_fen"
    unpaid = world.ok(bike, f"/bike/rides/{ride['id']}/lock",
                      {"ended_at": world.due(), "fee_fen": 150, "paid_fen": 0})
    assert unpaid["state"] == "defaulted" and unpaid["amount_owed_fen"] == 150
    assert unpaid["unpaid_fen"] == 150 and world.exposure(bidx) == 0

    paid = world.ok(bike, "/bike/rides", {"credential": world.credential(citizen),
                                          "bike_id": "BK-7", "deposit_fen": 29900,
                                          "due_at": world.due(hours=6)}, 201)
    world.advance(minutes=10)
    locked = world.ok(bike, f"/bike/rides/{paid['id']}/lock",
                      {"ended_at": world.due(), "fee_fen": 150})
    assert locked["state"] == "fulfilled" and locked["unpaid_fen"] == 0


# ---- hospital ----

def test_an_encounter_line_is_capped_and_bills_beyond_it_are_paid_now(world: World) -> None:
    world.min_score("hospital.pay_later", 600)
    hospital = world.partner("hospital")
    citizen, bidx = world.citizen()  # tier A: exposure cap ¥1,000
    visit = world.ok(hospital, "/hospital/encounters", {
        "credential": world.credential(citizen), "department": "内科",
        "due_at": world.due(days=30)}, 201)
    # The benefit's line is ¥2,000; the citizen's remaining cap (¥1,000) bounds it.
    assert (visit["amount_fen"], visit["credit_line_fen"]) == (200000, 100000)
    assert visit["waived_fen"] == 100000 and world.exposure(bidx) == 100000
    eid = visit["id"]
    first = world.ok(hospital, f"/hospital/encounters/{eid}/bills", {"items": [
        {"code": "REG", "name": "挂号", "amount_fen": 5000},
        {"code": "CT", "name": "CT", "amount_fen": 55000}]})
    assert first["bills"][-1]["deferred_fen"] == 60000 and first["line_left_fen"] == 40000
    second = world.ok(hospital, f"/hospital/encounters/{eid}/bills", {"items": [
        {"code": "MED", "name": "药品", "amount_fen": 70000}]})
    assert (second["bills"][-1]["deferred_fen"], second["bills"][-1]["pay_now_fen"]) == (
        40000, 30000)
    assert second["outstanding_fen"] == 100000 and second["line_left_fen"] == 0
    bad = world.post(hospital, f"/hospital/encounters/{eid}/bills", {"items": [
        {"code": "X", "name": "x", "amount_fen": -1}]})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "items.0.amount_fen"

    part = world.ok(hospital, f"/hospital/encounters/{eid}/settle", {"paid_fen": 40000})
    assert part["status"] == "open" and part["outstanding_fen"] == 60000
    too_much = world.post(hospital, f"/hospital/encounters/{eid}/settle", {"paid_fen": 60001})
    assert too_much.status_code == 422
    done = world.ok(hospital, f"/hospital/encounters/{eid}/settle", {"paid_fen": 60000})
    assert done["state"] == "fulfilled" and done["status"] == "closed"
    assert world.exposure(bidx) == 0


# ---- hotel ----

def test_a_stay_checks_out_with_charges_only_within_72_hours(world: World) -> None:
    world.min_score("hotel.deposit_free", 600)
    hotel = world.partner("hotel")
    citizen, _ = world.citizen()
    stay = world.ok(hotel, "/hotel/stays", {"credential": world.credential(citizen),
                                            "room": "1208", "nights": 2,
                                            "deposit_fen": 50000}, 201)
    assert stay["waived_fen"] == 50000 and stay["nights"] == 2
    assert datetime.fromisoformat(stay["checkout_by"]) == world.now + timedelta(days=2, hours=72)
    world.advance(days=2, hours=71)
    unpaid = world.ok(hotel, f"/hotel/stays/{stay['id']}/checkout",
                      {"charges_fen": 3800, "paid_fen": 800})
    assert unpaid["state"] == "defaulted" and unpaid["amount_owed_fen"] == 3000

    late = world.ok(hotel, "/hotel/stays", {"credential": world.credential(citizen),
                                            "room": "1209", "nights": 1,
                                            "deposit_fen": 50000}, 201)
    world.advance(days=1, hours=72, seconds=1)
    refused = world.post(hotel, f"/hotel/stays/{late['id']}/checkout", {"charges_fen": 100})
    assert refused.status_code == 409 and refused.get_json()["code"] == "checkout_window_closed"
    assert world.client.get(f"{A}/hotel/stays/{late['id']}", headers=hotel).get_json()[
        "status"] == "open"
    left = world.ok(hotel, f"/hotel/stays/{late['id']}/checkout", {"charges_fen": 0})
    assert left["status"] == "closed" and left["amount_owed_fen"] == 0

    # Charges beyond the waived deposit: the default under the card is the deposit.
    big = world.ok(hotel, "/hotel/stays", {"credential": world.credential(citizen),
                                           "room": "1210", "nights": 1,
                                           "deposit_fen": 20000}, 201)
    over = world.ok(hotel, f"/hotel/stays/{big['id']}/checkout",
                    {"charges_fen": 80000, "paid_fen": 0})
    assert over["unpaid_fen"] == 80000 and over["amount_owed_fen"] == 20000


# ---- scenic ----

def test_a_scenic_entry_is_single_use_and_holds_no_exposure(world: World) -> None:
    world.min_score("scenic.discount", 600)
    scenic = world.partner("scenic")
    citizen, bidx = world.citizen()
    qr = world.credential(citizen)
    entry = world.ok(scenic, "/scenic/entries", {"credential": qr, "ticket_fen": 8000}, 201)
    assert entry["session_id"] is None and entry["state"] == "admitted"
    assert (entry["waived_fen"], entry["charge_normally_fen"]) == (1600, 6400)
    assert entry["discount_percent"] == 20 and entry["due_at"] is None
    assert world.exposure(bidx) == 0 and count(world.app, BenefitSession) == 0
    again = world.post(scenic, "/scenic/entries", {"credential": qr, "ticket_fen": 8000})
    assert again.status_code == 409 and again.get_json()["code"] == "credential_used"
    assert count(world.app, AdapterRecord) == 1


# ---- never a refusal of service ----

def test_a_credential_not_eligible_still_gets_the_service_on_normal_terms(
        world: World) -> None:
    world.min_score("library.deposit_free", 900)
    library = world.partner("library")
    citizen, bidx = world.citizen()
    loan = world.ok(library, "/library/loans", {"credential": world.credential(citizen),
                                                "books": books(2), "due_at": world.due(days=14)},
                    201)
    assert loan["decision"] == "standard_terms" and loan["session_id"] is None
    assert (loan["waived_fen"], loan["charge_normally_fen"]) == (0, 4000)
    assert count(world.app, BenefitSession) == 0 and world.exposure(bidx) == 0
    back = world.ok(library, f"/library/loans/{loan['id']}/returns",
                    {"barcodes": ["978-0", "978-1"]})
    assert back["status"] == "closed" and back["state"] == "closed"


def test_a_used_up_cap_answers_201_with_no_session_and_normal_terms(world: World) -> None:
    world.min_score("hospital.pay_later", 600)
    hospital, library = world.partner("hospital"), world.partner("library")
    citizen, bidx = world.citizen()
    world.ok(hospital, "/hospital/encounters", {"credential": world.credential(citizen),
                                                "department": "外科",
                                                "due_at": world.due(days=30)}, 201)
    assert world.exposure(bidx) == 100000  # the whole tier A cap
    loan = world.ok(library, "/library/loans", {"credential": world.credential(citizen),
                                                "books": books(1), "due_at": world.due(days=14)},
                    201)
    assert loan["decision"] == "eligible" and loan["session_id"] is None
    assert (loan["waived_fen"], loan["charge_normally_fen"]) == (0, 2000)
    assert count(world.app, BenefitSession) == 1


# ---- who may call ----

def test_a_key_of_another_kind_is_refused_naming_the_mismatch(world: World) -> None:
    library, bike = world.partner("library"), world.partner("bike")
    citizen, _ = world.citizen()
    resp = world.post(library, "/bike/rides", {"credential": world.credential(citizen),
                                               "bike_id": "B", "deposit_fen": 100,
                                               "due_at": world.due(hours=1)})
    assert resp.status_code == 403 and resp.get_json()["code"] == "partner_kind_mismatch"
    assert "bike" in resp.get_json()["detail"] and "library" in resp.get_json()["detail"]
    assert count(world.app, Verification) == 0
    # Even a body this kind would refuse: the key's kind is the first thing checked.
    resp = world.post(library, "/bike/rides", {"bike_id": 7})
    assert resp.status_code == 403 and resp.get_json()["code"] == "partner_kind_mismatch"
    got = world.client.get(f"{A}/library/loans/{uuid.uuid4()}", headers=bike)
    assert got.status_code == 403 and got.get_json()["code"] == "partner_kind_mismatch"


def test_another_partners_record_is_not_found(world: World) -> None:
    mine, theirs = world.partner("library"), world.partner("library")
    citizen, _ = world.citizen()
    loan = world.ok(mine, "/library/loans", {"credential": world.credential(citizen),
                                             "books": books(1), "due_at": world.due(days=3)},
                    201)
    assert world.client.get(f"{A}/library/loans/{loan['id']}",
                            headers=theirs).status_code == 404
    resp = world.post(theirs, f"/library/loans/{loan['id']}/returns", {"barcodes": ["978-0"]})
    assert resp.status_code == 404 and resp.get_json()["code"] == "adapter_record_not_found"
    assert world.client.get(f"{A}/library/loans/{loan['id']}", headers=mine).get_json()[
        "books_out"] == 1


# ---- bad input ----

@pytest.mark.parametrize(("change", "field"), [
    ({"books": [{"barcode": "x", "title": "t", "deposit_fen": -1, "price_fen": 1}]},
     "books.0.deposit_fen"),
    ({"books": [{"barcode": "x", "title": "t", "deposit_fen": 1.5, "price_fen": 1}]},
     "books.0.deposit_fen"),
    ({"books": [{"barcode": "x", "title": "t", "deposit_fen": 100_000_001, "price_fen": 1}]},
     "books.0.deposit_fen"),
    ({"books": [{"barcode": "x", "title": "t", "deposit_fen": "5", "price_fen": 1}]},
     "books.0.deposit_fen"),
    ({"books": []}, "books"),
    ({"books": books(1) * 2}, "books.1.barcode"),
    ({"due_at": "past"}, "due_at"),
    ({"due_at": "far"}, "due_at"),
    ({"due_at": "2026-12-24T10:00:00"}, "due_at"),
    ({"extra": 1}, "extra"),
])
def test_bad_loan_input_names_the_field_and_writes_nothing(world: World, change: dict[str, Any],
                                                          field: str) -> None:
    library = world.partner("library")
    citizen, _ = world.citizen()
    qr = world.credential(citizen)
    body: dict[str, Any] = {"credential": qr, "books": books(1), "due_at": world.due(days=7)}
    body.update(change)
    if body["due_at"] == "past":
        body["due_at"] = world.due(minutes=-1)
    elif body["due_at"] == "far":
        body["due_at"] = world.due(days=91)
    resp = world.post(library, "/library/loans", body)
    assert resp.status_code == 422, resp.get_json()
    assert field in [e["field"] for e in resp.get_json()["errors"]]
    assert count(world.app, AdapterRecord) == 0 and count(world.app, BenefitSession) == 0
    assert count(world.app, Verification) == 0
    # The credential was not used up by the refused call.
    ok = world.post(library, "/library/loans", {"credential": qr, "books": books(1),
                                                "due_at": world.due(days=7)})
    assert ok.status_code == 201


def test_bad_stay_and_ride_input_is_refused(world: World) -> None:
    world.min_score("hotel.deposit_free", 600)
    hotel, bike = world.partner("hotel"), world.partner("bike")
    citizen, _ = world.citizen()
    for body, field in (({"room": "1", "nights": 0, "deposit_fen": 100}, "nights"),
                        ({"room": "1", "nights": 61, "deposit_fen": 100}, "nights"),
                        ({"room": "1", "nights": 1, "deposit_fen": 0}, "deposit_fen")):
        resp = world.post(hotel, "/hotel/stays", {"credential": world.credential(citizen),
                                                  **body})
        assert resp.status_code == 422 and resp.get_json()["errors"][0]["field"] == field
    resp = world.post(bike, "/bike/rides", {"credential": world.credential(citizen),
                                            "bike_id": "B", "deposit_fen": 0,
                                            "due_at": world.due(hours=1)})
    assert resp.status_code == 422 and resp.get_json()["errors"][0]["field"] == "deposit_fen"
    assert count(world.app, AdapterRecord) == 0


# ---- Idempotency-Key ----

def test_an_idempotency_key_replays_the_answer_and_refuses_another_body(world: World) -> None:
    library = world.partner("library")
    citizen, _ = world.citizen()
    body = {"credential": world.credential(citizen), "books": books(2),
            "due_at": world.due(days=7)}
    first = world.post(library, "/library/loans", body, key="lend-1")
    again = world.post(library, "/library/loans", body, key="lend-1")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert count(world.app, AdapterRecord) == 1 and count(world.app, BenefitSession) == 1
    other = world.post(library, "/library/loans", {**body, "books": books(1)}, key="lend-1")
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_key_reused"

    lid = first.get_json()["id"]
    ret = world.post(library, f"/library/loans/{lid}/returns", {"barcodes": ["978-0"]},
                     key="ret-1")
    replay = world.post(library, f"/library/loans/{lid}/returns", {"barcodes": ["978-0"]},
                        key="ret-1")
    assert replay.status_code == 200 and replay.get_json() == ret.get_json()
    assert ret.get_json()["books_out"] == 1


# ---- the catalogue ----

def test_every_kind_with_sessions_names_each_generic_event() -> None:
    generic = {f"benefit_session.{t}" for t in ("opened", "closed", "overdue", "defaulted",
                                                  "settled", "recorded")}
    for spec in KINDS.values():
        assert set(spec.events) in (generic, set()), spec.kind
    assert kind_event_type("library", "benefit_session.overdue") == "library.loan_overdue"
    assert kind_event_type("hotel", "benefit_session.overdue") == "hotel.stay_unsettled"
    assert kind_event_type("scenic", "benefit_session.opened") is None
    names = [e.name for e in CATALOGUE]
    assert len(names) == len(set(names)) == 4 * 6
    assert all(e.name.startswith(e.kind + ".") and e.match == {"kind": e.kind}
               for e in CATALOGUE)
    # The data is the generic event's: what the session service emits fits the schema.
    from xinyi.benefits.events import EVENT_TYPES

    generic_schema = {t.topic: t.schema for t in EVENT_TYPES}
    assert all(e.schema is generic_schema[e.topic] for e in CATALOGUE)
