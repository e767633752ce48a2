"""Benefit sessions (信用免押): open splits the amount, never refuses; close, extend, cancel and
settle follow their rules; sweeps turn a missed due date into a notice, a default, a record —
after notice and grace; the citizen sees every step; staff edit the rules, logged."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from tests.factories import (
    SENSITIVE_VALUES,
    api_client_headers,
    bearer,
    count,
    login,
    register_citizen,
    staff_headers,
)
from xinyi.audit.models import StaffAction
from xinyi.benefits.models import BenefitSession
from xinyi.benefits.service import _view, event_payload, exposure_of, load_view, next_step
from xinyi.citizens.service import citizen_bidx
from xinyi.idempotency import IdempotentRequest
from xinyi.notifications.models import Notification
from xinyi.outbox.models import OutboxEvent
from xinyi.records.models import CreditRecord
from xinyi.worker import benefit_session_sweeps

SESSIONS = "/v1/partner/benefit-sessions"


class World:
    """One operator, partners and citizens on one app, with a clock the test moves."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app, self.client = app, client
        self.deps = app.extensions["xinyi"]
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.deps.clock = lambda: self.now
        self.operator = staff_headers(app, client, "operator")

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def partner(self, kind: str = "library") -> tuple[dict[str, str], uuid.UUID, str]:
        headers, created = api_client_headers(self.client, self.operator, "partners",
                                              kind=kind)
        return headers, uuid.UUID(created["id"]), created["name"]

    def citizen(self) -> tuple[dict[str, str], bytes]:
        person = register_citizen(self.client)
        headers = bearer(login(self.client, person["phone"])["access_token"])
        account = uuid.UUID(self.client.get("/v1/me", headers=headers).get_json()["id"])
        with self.deps.db.session() as s:
            return headers, citizen_bidx(s, account)

    def verification(self, citizen: dict[str, str], partner: dict[str, str],
                     benefit: str = "library.deposit_free") -> dict[str, Any]:
        issued = self.client.post("/v1/me/credentials", json={"count": 1}, headers=citizen)
        assert issued.status_code == 201, issued.get_json()
        item = issued.get_json()["items"][0]
        SENSITIVE_VALUES.update([item["qr_payload"], item["short_code"]])
        resp = self.client.post("/v1/partner/verifications",
                                json={"credential": item["qr_payload"], "benefit": benefit},
                                headers=partner)
        assert resp.status_code == 200, resp.get_json()
        answer: dict[str, Any] = resp.get_json()
        return answer

    def open(self, partner: dict[str, str], verification_id: str, amount: int = 8000, *,
             due: timedelta = timedelta(days=14), key: str | None = None,
             reference: str = "loan-1", **extra: Any) -> Any:
        body = {"verification_id": verification_id, "amount_fen": amount,
                "due_at": (self.now + due).isoformat(), "reference": reference, **extra}
        headers = {**partner, **({"Idempotency-Key": key} if key else {})}
        return self.client.post(SESSIONS, json=body, headers=headers)

    def opened(self, partner: dict[str, str], citizen: dict[str, str], amount: int = 8000,
               **kwargs: Any) -> dict[str, Any]:
        v = self.verification(citizen, partner)
        assert v["decision"] == "eligible", v
        resp = self.open(partner, v["id"], amount, **kwargs)
        assert resp.status_code == 201, resp.get_json()
        body: dict[str, Any] = resp.get_json()
        return body

    def call(self, partner: dict[str, str], session_id: str, action: str,
             body: dict[str, Any] | None = None, key: str | None = None) -> Any:
        headers = {**partner, **({"Idempotency-Key": key} if key else {})}
        return self.client.post(f"{SESSIONS}/{session_id}/{action}", json=body,
                                headers=headers)

    def sweep(self) -> str:
        return benefit_session_sweeps(self.deps)

    def exposure(self, bidx: bytes) -> int:
        with self.deps.db.session() as s:
            return exposure_of(s, bidx)

    def patch_rule(self, code: str, body: dict[str, Any],
                   headers: dict[str, str] | None = None) -> Any:
        return self.client.patch(f"/v1/admin/benefit-rules/{code}", json=body,
                                 headers=headers or self.operator)

    def payloads(self, session_id: str) -> dict[str, dict[str, Any]]:
        with self.deps.db.session() as s:
            rows = s.execute(select(OutboxEvent.topic, OutboxEvent.payload)).all()
        return {t: p for t, p in rows if p.get("session_id") == session_id}

    def events(self, session_id: str) -> list[str]:
        with self.deps.db.session() as s:
            rows = s.execute(select(OutboxEvent.topic, OutboxEvent.payload)
                             .order_by(OutboxEvent.created_at)).all()
        return [t for t, p in rows if p.get("session_id") == session_id]


@pytest.fixture
def world(app: Flask, client: FlaskClient) -> World:
    return World(app, client)


def sessions_of(app: Flask) -> int:
    return count(app, BenefitSession)


# ---- open ----

def test_open_splits_the_amount_and_close_releases_the_exposure(world: World) -> None:
    partner, partner_id, _ = world.partner()
    citizen, bidx = world.citizen()
    opened = world.opened(partner, citizen, 15000)
    # library.deposit_free waives up to 10000 fen; the rest is charged normally.
    assert (opened["state"], opened["waived_fen"], opened["charge_normally_fen"]) == (
        "open", 10000, 5000)
    assert opened["session_id"] == opened["id"] and opened["kind"] == "library"
    assert opened["next_step_at"] == opened["due_at"]
    assert world.exposure(bidx) == 10000
    got = world.client.get(f"{SESSIONS}/{opened['id']}", headers=partner).get_json()
    assert got == opened

    closed = world.call(partner, opened["id"], "close",
                        {"outcome": "fulfilled", "amount_owed_fen": 0})
    assert closed.status_code == 200, closed.get_json()
    assert closed.get_json()["state"] == "fulfilled" and closed.get_json()["closed_at"]
    assert world.exposure(bidx) == 0
    twice = world.call(partner, opened["id"], "close",
                       {"outcome": "fulfilled", "amount_owed_fen": 0})
    assert twice.status_code == 409 and twice.get_json()["code"] == "benefit_session_closed"
    assert world.events(opened["id"]) == ["benefit_session.opened", "benefit_session.closed"]
    with world.deps.db.session() as s:
        event = s.scalar(select(OutboxEvent).where(OutboxEvent.topic ==
                                                   "benefit_session.opened"))
        assert event is not None and event.partner_id == partner_id
        assert event.subject_bidx is None and "subject" not in event.payload


def test_another_partners_session_and_verification_are_not_found(world: World) -> None:
    mine, _, _ = world.partner()
    theirs, _, _ = world.partner()
    citizen, _ = world.citizen()
    opened = world.opened(mine, citizen)
    assert world.client.get(f"{SESSIONS}/{opened['id']}", headers=theirs).status_code == 404
    for action, body in (("close", {"outcome": "fulfilled", "amount_owed_fen": 0}),
                         ("extend", {"due_at": (world.now + timedelta(days=20)).isoformat()}),
                         ("cancel", None), ("settle", None)):
        resp = world.call(theirs, opened["id"], action, body)
        assert resp.status_code == 404, (action, resp.get_json())
        assert resp.get_json()["code"] == "benefit_session_not_found"
    v = world.verification(citizen, mine)
    resp = world.open(theirs, v["id"])
    assert resp.status_code == 404 and resp.get_json()["code"] == "verification_not_found"
    unknown = world.open(mine, str(uuid.uuid4()))
    assert unknown.status_code == 404
    assert world.client.get(f"{SESSIONS}/{opened['id']}",
                            headers=mine).get_json()["state"] == "open"


def test_the_exposure_cap_splits_never_refuses_and_counts_every_partner(world: World) -> None:
    assert world.patch_rule("library.deposit_free",
                            {"exposure_caps": {"A": 15000}}).status_code == 200
    first, _, _ = world.partner()
    second, _, _ = world.partner()
    citizen, bidx = world.citizen()
    a = world.opened(first, citizen, 10000)
    b = world.opened(second, citizen, 10000)
    c = world.opened(first, citizen, 10000, reference="loan-3")
    assert [s["waived_fen"] for s in (a, b, c)] == [10000, 5000, 0]
    assert [s["charge_normally_fen"] for s in (a, b, c)] == [0, 5000, 10000]
    assert world.exposure(bidx) == 15000
    world.call(first, a["id"], "cancel")
    assert world.exposure(bidx) == 5000
    d = world.opened(second, citizen, 20000, reference="loan-4")
    assert d["waived_fen"] == 10000  # the benefit's limit, within what the cap has left


def test_a_tier_without_a_cap_waives_nothing(world: World) -> None:
    assert world.patch_rule("library.deposit_free",
                            {"exposure_caps": {"A": 0}}).status_code == 200
    partner, _, _ = world.partner()
    citizen, bidx = world.citizen()
    opened = world.opened(partner, citizen, 5000)
    assert (opened["waived_fen"], opened["charge_normally_fen"]) == (0, 5000)
    assert world.exposure(bidx) == 0


def test_the_adapter_cap_bounds_the_waivable_part(app: Flask, world: World) -> None:
    from xinyi.auth.principal import Principal
    from xinyi.benefits.service import open_session
    from xinyi.uow import UnitOfWork

    partner, partner_id, name = world.partner()
    citizen, _ = world.citizen()
    v = world.verification(citizen, partner)
    with UnitOfWork(world.deps.db.sessions) as uow:
        view = open_session(uow.session, world.deps,
                            Principal("partner", partner_id, client_kind="library",
                                      client_name=name),
                            verification_id=uuid.UUID(v["id"]), amount_fen=9000,
                            due_at=world.now + timedelta(days=3), reference="books",
                            waivable_fen=3000)
        uow.commit()
    assert (view.waived_fen, view.charge_normally_fen) == (3000, 6000)


# ---- idempotency ----

def test_an_idempotency_key_replays_the_answer_and_refuses_another_body(world: World) -> None:
    partner, _, _ = world.partner()
    citizen, _ = world.citizen()
    v = world.verification(citizen, partner)
    first = world.open(partner, v["id"], 5000, key="open-1")
    again = world.open(partner, v["id"], 5000, key="open-1")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    other = world.open(partner, v["id"], 6000, key="open-1")
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_key_reused"
    assert other.get_json()["errors"][0]["field"] == "Idempotency-Key"
    assert sessions_of(world.app) == 1
    sid = first.get_json()["id"]
    body = {"outcome": "defaulted", "amount_owed_fen": 4000}
    closed = world.call(partner, sid, "close", body, key="close-1")
    replay = world.call(partner, sid, "close", body, key="close-1")
    assert closed.status_code == replay.status_code == 200
    assert replay.get_json() == closed.get_json()
    assert world.events(sid).count("benefit_session.defaulted") == 1
    # The same key on another call (settle) is refused, not replayed.
    reused = world.call(partner, sid, "settle", key="close-1")
    assert reused.status_code == 422 and reused.get_json()["code"] == "idempotency_key_reused"
    # A key is the partner's own: another partner may use the same string.
    other_partner, _, _ = world.partner()
    v2 = world.verification(citizen, other_partner)
    assert world.open(other_partner, v2["id"], 5000, key="open-1").status_code == 201


# ---- bad input ----

@pytest.mark.parametrize(("field", "value"), [
    ("amount_fen", -1), ("amount_fen", 0), ("amount_fen", 1.5), ("amount_fen", "100"),
    ("amount_fen", 100_000_001), ("amount_fen", True), ("due_at", "past"),
    ("due_at", "far"), ("due_at", "2026-12-01T10:00:00"), ("reference", ""),
    ("reference", "x" * 101), ("verification_id", "not-a-uuid"),
])
def test_bad_open_input_names_the_field_and_changes_nothing(world: World, field: str,
                                                            value: Any) -> None:
    partner, _, _ = world.partner()
    citizen, bidx = world.citizen()
    v = world.verification(citizen, partner)
    body: dict[str, Any] = {"verification_id": v["id"], "amount_fen": 5000,
                            "due_at": (world.now + timedelta(days=3)).isoformat(),
                            "reference": "r-1"}
    if value == "past":
        value = (world.now - timedelta(minutes=1)).isoformat()
    elif value == "far":
        value = (world.now + timedelta(days=91)).isoformat()
    body[field] = value
    resp = world.client.post(SESSIONS, json=body, headers=partner)
    assert resp.status_code == 422, resp.get_json()
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert field in [e["field"] for e in resp.get_json()["errors"]]
    assert sessions_of(world.app) == 0 and world.exposure(bidx) == 0


def test_a_standard_terms_stale_or_used_verification_opens_nothing(world: World) -> None:
    partner, _, _ = world.partner()
    citizen, bidx = world.citizen()
    assert world.patch_rule("library.deposit_free", {"min_score": 900}).status_code == 200
    standard = world.verification(citizen, partner)
    assert standard["decision"] == "standard_terms"
    resp = world.open(partner, standard["id"])
    assert resp.status_code == 422 and resp.get_json()["code"] == "verification_not_eligible"
    assert world.patch_rule("library.deposit_free", {"min_score": 600}).status_code == 200

    stale = world.verification(citizen, partner)
    world.advance(minutes=10, seconds=1)
    resp = world.open(partner, stale["id"])
    assert resp.status_code == 422 and resp.get_json()["code"] == "verification_stale"
    assert sessions_of(world.app) == 0

    fresh = world.verification(citizen, partner)
    assert world.open(partner, fresh["id"]).status_code == 201
    used = world.open(partner, fresh["id"], reference="again")
    assert used.status_code == 409 and used.get_json()["code"] == "verification_used"
    assert sessions_of(world.app) == 1 and world.exposure(bidx) == 8000


@pytest.mark.parametrize("body", [
    {"outcome": "fulfilled", "amount_owed_fen": 100},
    {"outcome": "defaulted", "amount_owed_fen": 0},
    {"outcome": "defaulted", "amount_owed_fen": -5},
    {"outcome": "lost", "amount_owed_fen": 0},
    {"outcome": "defaulted", "amount_owed_fen": 100_000_001},
    {"outcome": "defaulted"},
])
def test_bad_close_input_is_refused_and_the_session_stays_open(world: World,
                                                               body: dict[str, Any]) -> None:
    partner, _, _ = world.partner()
    citizen, bidx = world.citizen()
    opened = world.opened(partner, citizen)
    resp = world.call(partner, opened["id"], "close", body)
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["errors"][0]["field"] in ("outcome", "amount_owed_fen")
    assert world.client.get(f"{SESSIONS}/{opened['id']}",
                            headers=partner).get_json()["state"] == "open"
    assert world.exposure(bidx) == 8000


# ---- cancel and extend ----

def test_cancel_only_within_15_minutes_of_an_open_session(world: World) -> None:
    partner, _, _ = world.partner()
    citizen, bidx = world.citizen()
    early = world.opened(partner, citizen)
    late = world.opened(partner, citizen, reference="loan-2")
    world.advance(minutes=14)
    cancelled = world.call(partner, early["id"], "cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "cancelled"
    assert cancelled.get_json()["amount_owed_fen"] == 0
    world.advance(minutes=2)
    refused = world.call(partner, late["id"], "cancel")
    assert refused.status_code == 409 and refused.get_json()["code"] == "cancel_window_over"
    assert world.exposure(bidx) == 8000
    again = world.call(partner, early["id"], "cancel")
    assert again.status_code == 409 and again.get_json()["code"] == "benefit_session_closed"
    assert world.events(early["id"]) == ["benefit_session.opened", "benefit_session.closed"]


def test_extend_once_within_30_days_of_the_original_due_date(world: World) -> None:
    partner, _, _ = world.partner()
    citizen, _ = world.citizen()
    opened = world.opened(partner, citizen, due=timedelta(days=10))
    original = datetime.fromisoformat(opened["due_at"])
    too_far = world.call(partner, opened["id"], "extend",
                         {"due_at": (original + timedelta(days=30, seconds=1)).isoformat()})
    assert too_far.status_code == 422 and too_far.get_json()["errors"][0]["field"] == "due_at"
    earlier = world.call(partner, opened["id"], "extend",
                         {"due_at": (original - timedelta(days=1)).isoformat()})
    assert earlier.status_code == 422
    done = world.call(partner, opened["id"], "extend",
                      {"due_at": (original + timedelta(days=30)).isoformat()})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["extended"] and datetime.fromisoformat(
        done.get_json()["due_at"]) == original + timedelta(days=30)
    twice = world.call(partner, opened["id"], "extend",
                       {"due_at": (original + timedelta(days=29)).isoformat()})
    assert twice.status_code == 409
    assert twice.get_json()["code"] == "benefit_session_already_extended"
    # The extended due date is what the sweep goes by.
    world.advance(days=11)
    world.sweep()
    assert world.client.get(f"{SESSIONS}/{opened['id']}",
                            headers=partner).get_json()["state"] == "open"


# ---- defaults, grace, records ----

def test_a_default_settled_in_grace_never_becomes_a_record(world: World) -> None:
    partner, _, name = world.partner()
    citizen, bidx = world.citizen()
    opened = world.opened(partner, citizen)
    closed = world.call(partner, opened["id"], "close",
                        {"outcome": "defaulted", "amount_owed_fen": 6000}).get_json()
    assert closed["state"] == "defaulted" and closed["amount_owed_fen"] == 6000
    grace = datetime.fromisoformat(closed["grace_until"])
    assert grace == world.now + timedelta(days=7)
    assert world.exposure(bidx) == 0
    inbox = world.client.get("/v1/me/notifications", headers=citizen).get_json()["items"]
    assert [n["template"] for n in inbox] == ["benefit_session_defaulted"]
    assert name in inbox[0]["text"] and "60.00" in inbox[0]["text"]
    world.advance(days=6)
    settled = world.call(partner, opened["id"], "settle")
    assert settled.status_code == 200 and settled.get_json()["state"] == "settled"
    world.advance(days=30)
    world.sweep()
    assert count(world.app, CreditRecord, CreditRecord.subject_bidx == bidx) == 0
    again = world.call(partner, opened["id"], "settle")
    assert again.status_code == 409 and again.get_json()["code"] == "benefit_session_not_defaulted"
    assert world.events(opened["id"]) == [
        "benefit_session.opened", "benefit_session.closed", "benefit_session.defaulted",
        "benefit_session.settled"]


def test_settling_after_grace_is_refused_and_the_default_is_recorded(world: World) -> None:
    partner, _, _ = world.partner()
    citizen, bidx = world.citizen()
    opened = world.opened(partner, citizen)
    world.call(partner, opened["id"], "close", {"outcome": "defaulted", "amount_owed_fen": 900})
    world.advance(days=7)
    late = world.call(partner, opened["id"], "settle")
    assert late.status_code == 409 and late.get_json()["code"] == "grace_over"
    world.sweep()
    after = world.call(partner, opened["id"], "settle")
    assert after.status_code == 409 and after.get_json()["code"] == "grace_over"
    got = world.client.get(f"{SESSIONS}/{opened['id']}", headers=partner).get_json()
    assert got["state"] == "recorded" and got["record_id"]
    assert count(world.app, CreditRecord, CreditRecord.subject_bidx == bidx) == 1


def test_verify_open_overdue_default_grace_record_and_the_citizen_sees_why(
        world: World) -> None:
    """The whole loop, by the worker alone: nobody closes the session."""
    partner, partner_id, name = world.partner()
    citizen, bidx = world.citizen()
    before = world.client.get("/v1/me/credit", headers=citizen).get_json()["score"]
    opened = world.opened(partner, citizen, 8000, due=timedelta(days=14))
    sid = opened["id"]

    world.advance(days=14, seconds=1)
    world.sweep()
    world.sweep()  # a second run (or a second worker) changes nothing more
    mine = world.client.get("/v1/me/benefit-sessions", headers=citizen).get_json()
    [item] = mine["items"]
    assert item["state"] == "overdue" and item["partner_name"] == name
    assert datetime.fromisoformat(item["next_step_at"]) == (
        datetime.fromisoformat(opened["due_at"]) + timedelta(days=30))
    inbox = world.client.get("/v1/me/notifications", headers=citizen).get_json()["items"]
    assert [n["template"] for n in inbox] == ["benefit_session_overdue"]
    assert world.exposure(bidx) == 8000  # overdue still holds the exposure

    world.advance(days=30)
    world.sweep()
    world.sweep()
    got = world.client.get(f"{SESSIONS}/{sid}", headers=partner).get_json()
    assert got["state"] == "defaulted" and got["amount_owed_fen"] == 8000
    assert world.exposure(bidx) == 0
    assert count(world.app, CreditRecord, CreditRecord.subject_bidx == bidx) == 0

    world.advance(days=7)
    world.sweep()
    world.sweep()
    got = world.client.get(f"{SESSIONS}/{sid}", headers=partner).get_json()
    assert got["state"] == "recorded" and got["next_step_at"] is None
    assert world.events(sid) == [f"benefit_session.{t}" for t in (
        "opened", "overdue", "defaulted", "recorded")]
    inbox = world.client.get("/v1/me/notifications", headers=citizen).get_json()["items"]
    assert sorted(n["template"] for n in inbox) == [
        "benefit_session_defaulted", "benefit_session_overdue", "benefit_session_recorded"]
    texts = {n["template"]: n["text"] for n in inbox}
    due_day = (datetime.fromisoformat(opened["due_at"]) + timedelta(hours=8)).date()
    assert f"{due_day.year}年{due_day.month}月{due_day.day}日" in texts[
        "benefit_session_overdue"]
    assert all(name in t and "信易阅" in t for t in texts.values())
    assert "80.00元" in texts["benefit_session_defaulted"]
    assert "图书经催告逾期未还" in texts["benefit_session_recorded"]
    payloads = world.payloads(sid)
    assert payloads["benefit_session.overdue"]["state"] == "overdue"
    assert payloads["benefit_session.defaulted"]["amount_owed_fen"] == 8000
    assert datetime.fromisoformat(payloads["benefit_session.defaulted"]["due_at"]) == (
        datetime.fromisoformat(opened["due_at"]))

    mine = world.client.get("/v1/me/benefit-sessions", headers=citizen).get_json()
    [item] = mine["items"]
    assert item["state"] == "recorded" and item["record_id"] == got["record_id"]
    records = world.client.get("/v1/me/records", headers=citizen).get_json()["items"]
    [record] = [r for r in records if r["id"] == got["record_id"]]
    assert record["catalogue_code"] == "library.overdue_default"
    assert sid in record["summary"] and name in record["summary"]
    assert "宽限期" in record["summary"]
    with world.deps.db.session() as s:
        row = s.get(CreditRecord, uuid.UUID(got["record_id"]))
        assert row is not None and row.provider_id == partner_id
        assert row.provider_ref == f"benefit_session:{sid}"
    after = world.client.get("/v1/me/credit", headers=citizen).get_json()["score"]
    assert after == before - 5


def test_an_overdue_session_returned_late_leaves_no_record(world: World) -> None:
    partner, _, _ = world.partner()
    citizen, bidx = world.citizen()
    opened = world.opened(partner, citizen, due=timedelta(days=1))
    world.advance(days=2)
    world.sweep()
    assert world.client.get(f"{SESSIONS}/{opened['id']}",
                            headers=partner).get_json()["state"] == "overdue"
    assert world.call(partner, opened["id"], "extend", {
        "due_at": (world.now + timedelta(days=3)).isoformat()}).status_code == 409
    closed = world.call(partner, opened["id"], "close",
                        {"outcome": "fulfilled", "amount_owed_fen": 0})
    assert closed.status_code == 200 and closed.get_json()["state"] == "fulfilled"
    assert world.exposure(bidx) == 0
    world.advance(days=60)
    world.sweep()
    assert count(world.app, CreditRecord, CreditRecord.subject_bidx == bidx) == 0


def test_grace_of_zero_days_records_at_the_next_sweep(world: World) -> None:
    resp = world.patch_rule("bike.deposit_free", {"grace_days": 0})
    assert resp.status_code == 200 and resp.get_json()["grace_days"] == 0
    partner, _, _ = world.partner("bike")
    citizen, bidx = world.citizen()
    v = world.verification(citizen, partner, "bike.deposit_free")
    opened = world.open(partner, v["id"], 29900).get_json()
    closed = world.call(partner, opened["id"], "close",
                        {"outcome": "defaulted", "amount_owed_fen": 350}).get_json()
    assert closed["grace_until"] == closed["closed_at"]
    settle = world.call(partner, opened["id"], "settle")
    assert settle.status_code == 409 and settle.get_json()["code"] == "grace_over"
    world.sweep()
    with world.deps.db.session() as s:
        codes = list(s.scalars(select(CreditRecord.catalogue_code)
                               .where(CreditRecord.subject_bidx == bidx)))
    assert codes == ["bike.default"]


def test_sweeps_write_each_notice_and_event_once(world: World) -> None:
    partner, _, _ = world.partner()
    citizens = [world.citizen() for _ in range(3)]
    ids = [world.opened(partner, c, due=timedelta(hours=1))["id"] for c, _ in citizens]
    world.advance(hours=2)
    for _ in range(3):
        world.sweep()
    assert count(world.app, Notification,
                 Notification.template == "benefit_session_overdue") == 3
    for sid in ids:
        assert world.events(sid) == ["benefit_session.opened", "benefit_session.overdue"]


# ---- the citizen's view ----

def test_the_citizen_sees_their_own_sessions_only_with_the_next_step(world: World) -> None:
    partner, _, name = world.partner()
    me, _ = world.citizen()
    other, _ = world.citizen()
    first = world.opened(partner, me, 5000, reference="loan-a")
    world.advance(seconds=1)
    second = world.opened(partner, me, 20000, reference="loan-b")
    world.call(partner, first["id"], "close", {"outcome": "fulfilled", "amount_owed_fen": 0})
    page = world.client.get("/v1/me/benefit-sessions", headers=me).get_json()
    assert page["meta"]["total"] == 2
    assert [i["id"] for i in page["items"]] == [second["id"], first["id"]]
    newest = page["items"][0]
    assert newest["partner_name"] == name and newest["state"] == "open"
    assert (newest["waived_fen"], newest["charge_normally_fen"]) == (10000, 10000)
    assert newest["next_step"] and newest["next_step_at"] == second["due_at"]
    assert "reference" not in newest
    assert page["items"][1]["state"] == "fulfilled" and page["items"][1]["next_step_at"] is None
    assert world.client.get("/v1/me/benefit-sessions",
                            headers=other).get_json()["meta"]["total"] == 0
    assert world.client.get("/v1/me/benefit-sessions?page_size=1",
                            headers=me).get_json()["items"][0]["id"] == second["id"]


# ---- staff edit the rules ----

def test_staff_edit_the_rules_validated_and_logged(app: Flask, client: FlaskClient,
                                                    world: World) -> None:
    listed = client.get("/v1/admin/benefit-rules", headers=world.operator).get_json()["items"]
    library = next(r for r in listed if r["code"] == "library.deposit_free")
    assert library["grace_days"] == 7
    assert library["exposure_caps"] == {"AAA": 500000, "AA": 300000, "A": 100000, "B": 0,
                                        "C": 0}
    resp = world.patch_rule("library.deposit_free", {
        "min_score": 620, "limits": {"max_books": 3, "deposit_waived_fen": 8000},
        "exposure_caps": {"AA": 250000}, "grace_days": 3})
    assert resp.status_code == 200, resp.get_json()
    changed = resp.get_json()
    assert changed["min_score"] == 620 and changed["limits"]["max_books"] == 3
    assert changed["exposure_caps"]["AA"] == 250000 and changed["exposure_caps"]["A"] == 100000
    assert changed["grace_days"] == 3
    public = client.get("/v1/benefits").get_json()["items"]
    assert next(b for b in public if b["code"] == "library.deposit_free")["min_score"] == 620
    with world.deps.db.session() as s:
        [logged] = s.scalars(select(StaffAction).where(
            StaffAction.target == "benefit_rule:library.deposit_free")).all()
    assert logged.action == "benefit_rule.update" and logged.actor_role == "operator"
    assert logged.before is not None and logged.after is not None
    assert logged.before["grace_days"] == 7 and logged.after["grace_days"] == 3
    assert logged.before["min_score"] == 600 and logged.after["min_score"] == 620


@pytest.mark.parametrize("body", [
    {}, {"grace_days": -1}, {"grace_days": 91}, {"grace_days": 1.5},
    {"exposure_caps": {"AAAA": 1}}, {"exposure_caps": {"A": -1}},
    {"min_score": 349}, {"limits": {"deposit_waived_fen": -1}}, {"colour": "red"},
])
def test_bad_rule_edits_are_refused_and_change_nothing(world: World,
                                                       body: dict[str, Any]) -> None:
    resp = world.patch_rule("library.deposit_free", body)
    assert resp.status_code == 422, resp.get_json()
    assert count(world.app, StaffAction) == 0
    listed = world.client.get("/v1/admin/benefit-rules",
                              headers=world.operator).get_json()["items"]
    library = next(r for r in listed if r["code"] == "library.deposit_free")
    assert library["grace_days"] == 7 and library["min_score"] == 600


def test_only_operators_edit_rules(app: Flask, client: FlaskClient, world: World) -> None:
    auditor = staff_headers(app, client, "auditor")
    assert client.get("/v1/admin/benefit-rules", headers=auditor).status_code == 200
    assert world.patch_rule("library.deposit_free", {"grace_days": 1},
                            auditor).status_code == 403
    assert world.patch_rule("nope.none", {"grace_days": 1}).status_code == 404
    partner, _, _ = world.partner()
    assert client.get("/v1/admin/benefit-rules", headers=partner).status_code == 403




def test_every_emitted_event_is_in_the_catalogue_and_dumps_whole(world: World) -> None:
    from xinyi.benefits.events import EVENT_TYPES

    partner, _, _ = world.partner()
    citizen, _ = world.citizen()
    opened = world.opened(partner, citizen)
    world.call(partner, opened["id"], "close", {"outcome": "defaulted", "amount_owed_fen": 1})
    world.advance(days=8)
    world.sweep()
    by_topic = {e.topic: e for e in EVENT_TYPES}
    with world.deps.db.session() as s:
        rows = s.execute(select(OutboxEvent.topic, OutboxEvent.payload)
                         .where(OutboxEvent.topic.like("benefit_session.%"))).all()
    assert {t for t, _ in rows} == {"benefit_session.opened", "benefit_session.closed",
                                    "benefit_session.defaulted", "benefit_session.recorded"}
    for topic, payload in rows:
        schema = by_topic[topic].schema()
        dumped = schema.dump(payload)
        assert set(dumped) == set(payload) == set(schema.fields)


def _parsed(payload: dict[str, Any]) -> dict[str, Any]:
    """Timestamps as instants: the one-statement paths write ISO text in SQL."""
    return {k: datetime.fromisoformat(v) if k in ("due_at", "grace_until") and v else v
            for k, v in payload.items()}


def test_open_and_close_events_and_stored_answers_match_the_row(world: World) -> None:
    """On PostgreSQL an open and a close are one statement each (payloads and answers made
    in SQL); on either database the event payloads and the answers stored for the
    Idempotency-Key are those of the row, and a replay answers the same."""
    partner, _, _ = world.partner()
    citizen, _ = world.citizen()
    opened = world.opened(partner, citizen, 8000, key="speed-open")
    close = {"outcome": "fulfilled", "amount_owed_fen": 0}
    closed = world.call(partner, opened["id"], "close", close, key="speed-close")
    assert closed.status_code == 200
    sid = uuid.UUID(opened["id"])
    with world.deps.db.session() as s:
        row = s.execute(select(*BenefitSession.__table__.c)
                        .where(BenefitSession.id == sid)).one()
        stored = {r.key: r.response for r in s.scalars(select(IdempotentRequest).where(
            IdempotentRequest.key.in_(["speed-open", "speed-close"])))}
    now_row = _view(row)
    assert now_row.state == "fulfilled"
    payloads = world.payloads(opened["id"])
    assert _parsed(payloads["benefit_session.closed"]) == _parsed(event_payload(row))
    assert _parsed(payloads["benefit_session.opened"]) == _parsed(
        {**event_payload(row), "state": "open", "amount_owed_fen": None})
    assert load_view(stored["speed-close"]) == now_row
    step, at = next_step("open", due_at=row.due_at, grace_until=None)
    assert load_view(stored["speed-open"]) == replace(
        now_row, state="open", amount_owed_fen=None, closed_at=None, next_step=step,
        next_step_at=at)
    again = world.call(partner, opened["id"], "close", close, key="speed-close")
    assert again.status_code == 200 and again.get_json() == closed.get_json()
    assert world.open(partner, opened["verification_id"], 8000,
                      key="speed-open").get_json() == opened


def test_event_payloads_written_in_sql_keep_any_reference_text_exactly(world: World) -> None:
    """The close and the sweeps write their payloads as JSON text in SQL: a partner's
    reference with quotes, backslashes, braces and CJK comes back unchanged,
    and every value of the overdue and defaulted events is the row's."""
    partner, _, _ = world.partner()
    citizen, _ = world.citizen()
    odd = 'a "b" \\c\\n \u4e66/\'e\'}{\\u0041'
    swept = world.opened(partner, citizen, 8000, reference=odd, due=timedelta(days=1))
    closed = world.opened(partner, citizen, 8000, reference=odd + "-2")
    assert world.call(partner, closed["id"], "close",
                      {"outcome": "fulfilled", "amount_owed_fen": 0}).status_code == 200
    world.advance(days=2)
    world.sweep()
    overdue = world.payloads(swept["id"])["benefit_session.overdue"]
    world.advance(days=31)
    world.sweep()
    with world.deps.db.session() as s:
        rows = {str(r.id): r for r in s.execute(select(*BenefitSession.__table__.c).where(
            BenefitSession.id.in_([uuid.UUID(swept["id"]), uuid.UUID(closed["id"])])))}
    defaulted = world.payloads(swept["id"])["benefit_session.defaulted"]
    assert defaulted["reference"] == odd
    assert _parsed(defaulted) == _parsed(event_payload(rows[swept["id"]]))
    assert _parsed(overdue) == _parsed({**event_payload(rows[swept["id"]]), "state": "overdue",
                                        "amount_owed_fen": None, "grace_until": None})
    assert _parsed(world.payloads(closed["id"])["benefit_session.closed"]) == _parsed(
        event_payload(rows[closed["id"]]))


def test_on_postgresql_an_open_and_a_close_are_one_statement_each(world: World) -> None:
    """The hot path's shape (what the HTTP benchmark measures): besides authentication
    (kept up to 1 s per process) and the Idempotency-Key's row, an open reads the
    verification with its terms once and writes in ONE statement (hold, session, event,
    answer); a close writes in ONE statement (session, exposure, event, answer)."""
    if world.deps.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs the same steps one statement at a time")
    partner, _, _ = world.partner()
    citizen, _ = world.citizen()
    v = world.verification(citizen, partner)  # the partner's key is read and kept
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            seen.append(" ".join(statement.split()[:3]))

    event.listen(world.deps.db.engine, "before_cursor_execute", count)
    try:
        opened = world.open(partner, v["id"], 5000, key="shape-open")
        opens, seen[:] = list(seen), []
        closed = world.call(partner, opened.get_json()["id"], "close",
                            {"outcome": "fulfilled", "amount_owed_fen": 0}, key="shape-close")
        closes = list(seen)
    finally:
        event.remove(world.deps.db.engine, "before_cursor_execute", count)
    assert opened.status_code == 201 and closed.status_code == 200
    assert len(opens) == 3, opens  # the key's row, the verification with its terms, the open
    assert opens[2].startswith("WITH held AS"), opens
    assert len(closes) == 2, closes  # the key's row, the close
    assert closes[1].startswith("WITH moved AS"), closes
    assert world.events(opened.get_json()["id"]) == ["benefit_session.opened",
                                                     "benefit_session.closed"]
