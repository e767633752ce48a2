"""Authorised query (授权查询, R3): partners ask, citizens decide, reads follow live consent."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import (
    api_client_headers,
    bearer,
    count,
    login,
    register_citizen,
    staff_headers,
)
from xinyi.audit.models import AccessLogEntry
from xinyi.consents import service
from xinyi.consents.models import Consent, ConsentRequest
from xinyi.outbox.models import OutboxEvent
from xinyi.pii import IdNumber, PhoneNumber, mask_id_number
from xinyi.subjects.service import ensure_subject, pseudonym, remember

HOUR = 3600
PURPOSE = "办理免押金借书：核实信用状况"


@dataclass
class World:
    """A provider has pushed records for a registered citizen; a library partner verified
    them and so knows them by its pseudonym ``subject``."""

    operator: dict[str, str]
    provider: dict[str, str]
    partner: dict[str, str]
    partner_id: str
    partner_name: str
    citizen: dict[str, Any]
    me: dict[str, str]
    subject: str


def pseudonym_for(app: Flask, partner_id: str, id_number: str) -> str:
    """What a verification would have recorded (that endpoint is tested elsewhere)."""
    deps = app.extensions["xinyi"]
    with deps.db.session() as session:
        bidx = ensure_subject(session, deps, IdNumber.parse(id_number), deps.clock())
        name = remember(session, deps, uuid.UUID(partner_id), bidx)
        session.commit()
    return name


def push_records(client: FlaskClient, provider: dict[str, str], id_number: str,
                 *codes: str) -> None:
    occurred = (date.today() - timedelta(days=10)).isoformat()
    records = [{"ref": f"r-{uuid.uuid4().hex[:10]}", "id_number": id_number,
                "catalogue_code": code, "occurred_at": occurred, "summary": "测试记录"}
               for code in codes]
    resp = client.post("/v1/provider/records:batch", json={"records": records},
                       headers=provider)
    assert resp.status_code == 200
    assert all(r["status"] == "created" for r in resp.get_json()["results"])


def new_partner(client: FlaskClient, w: World, kind: str = "bike") -> tuple[dict[str, str], str]:
    headers, created = api_client_headers(client, w.operator, "partners", kind=kind)
    return headers, created["id"]


def world(app: Flask, client: FlaskClient, name: str = "王小明") -> World:
    operator = staff_headers(app, client, "operator")
    provider, _ = api_client_headers(client, operator, "providers")
    partner, created = api_client_headers(client, operator, "partners", kind="library")
    citizen = register_citizen(client, name=name)
    push_records(client, provider, citizen["id_number"], "blood.donation",
                 "traffic.violation_minor", "utility.unpaid_bill")
    me = bearer(login(client, citizen["phone"])["access_token"])
    return World(operator, provider, partner, created["id"], created["name"], citizen, me,
                 pseudonym_for(app, created["id"], citizen["id_number"]))


def ask(client: FlaskClient, w: World, scope: str = "report.summary",
        expires_in: int = 30 * 24 * HOUR, purpose: str = PURPOSE) -> dict[str, Any]:
    resp = client.post("/v1/partner/consent-requests", headers=w.partner, json={
        "subject": w.subject, "scope": scope, "purpose": purpose, "expires_in": expires_in})
    assert resp.status_code == 201, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def approve(client: FlaskClient, w: World, request_id: str) -> dict[str, Any]:
    resp = client.post(f"/v1/me/consent-requests/{request_id}/approve", headers=w.me)
    assert resp.status_code == 201, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def consent_for(client: FlaskClient, w: World, scope: str = "report.summary",
                expires_in: int = 30 * 24 * HOUR) -> dict[str, Any]:
    return approve(client, w, ask(client, w, scope, expires_in)["id"])


def read(client: FlaskClient, w: World, scope: str | None = None) -> Any:
    query = f"?scope={scope}" if scope else ""
    return client.get(f"/v1/partner/reports/{w.subject}{query}", headers=w.partner)


def written(app: Flask) -> dict[str, int]:
    return {m.__name__: count(app, m)
            for m in (ConsentRequest, Consent, AccessLogEntry, OutboxEvent)}


def topics(app: Flask) -> list[tuple[str, dict[str, Any]]]:
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        events = s.scalars(select(OutboxEvent).where(OutboxEvent.topic.like("consent.%"))
                           .order_by(OutboxEvent.created_at)).all()
        # A consent event concerns its partner and names the citizen only by the routing
        # column; what the partner will see is its own pseudonym of that citizen.
        assert all(e.partner_id and e.subject_bidx and "subject" not in e.payload
                   for e in events)
        return [(e.topic, {**e.payload, "partner_id": str(e.partner_id),
                           "subject": pseudonym(deps, e.partner_id, e.subject_bidx)})
                for e in events if e.partner_id and e.subject_bidx]


def refused(resp: Any, status: int, code: str) -> None:
    assert resp.status_code == status, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["code"] == code


def advance(app: Flask, delta: timedelta) -> None:
    app.extensions["xinyi"].clock = lambda: datetime.now(UTC) + delta


# ---- the whole story ------------------------------------------------------------------------

def test_request_approve_read_summary_then_revoke_refuses_the_next_read(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    request = ask(client, w, expires_in=7 * 24 * HOUR)
    assert request["status"] == "pending" and request["subject"] == w.subject
    assert request["consent_id"] is None and request["expires_in"] == 7 * 24 * HOUR
    refused(read(client, w), 403, "consent_required")

    pending = client.get("/v1/me/consent-requests", headers=w.me).get_json()
    assert pending["meta"]["total"] == 1
    seen = pending["items"][0]
    assert seen["id"] == request["id"]
    assert seen["partner"] == {"id": w.partner_id, "name": w.partner_name, "kind": "library"}
    assert (seen["scope"], seen["purpose"]) == ("report.summary", PURPOSE)
    assert seen["requested_duration_seconds"] == 7 * 24 * HOUR

    consent = approve(client, w, request["id"])
    assert consent["status"] == "live" and consent["request_id"] == request["id"]
    assert consent["scope"] == "report.summary" and consent["purpose"] == PURPOSE
    granted = datetime.fromisoformat(consent["granted_at"])
    assert datetime.fromisoformat(consent["expires_at"]) - granted == timedelta(days=7)
    assert client.get("/v1/me/consent-requests", headers=w.me).get_json()["meta"]["total"] == 0
    decided = client.get(f"/v1/partner/consent-requests/{request['id']}",
                         headers=w.partner).get_json()
    assert decided["status"] == "approved" and decided["consent_id"] == consent["id"]

    resp = read(client, w)
    assert resp.status_code == 200
    report = resp.get_json()
    assert report["scope"] == "report.summary" and report["consent_id"] == consent["id"]
    assert report["subject"] == w.subject
    assert (report["positive_records"], report["negative_records"]) == (1, 2)
    assert report["score"] == client.get("/v1/me/credit", headers=w.me).get_json()["score"]
    assert report["tier"] in ("AAA", "AA", "A", "B", "C")
    assert "records" not in report

    before = written(app)
    refused(read(client, w, scope="report.full"), 403, "consent_required")
    assert written(app) == before

    revoked = client.post(f"/v1/me/consents/{consent['id']}/revoke", headers=w.me)
    assert revoked.status_code == 200
    assert revoked.get_json()["status"] == "revoked" and revoked.get_json()["revoked_at"]
    before = written(app)
    refused(read(client, w), 403, "consent_required")
    assert written(app) == before
    assert [t for t, _ in topics(app)] == ["consent.granted", "consent.revoked"]
    granted_event, revoked_event = (p for _, p in topics(app))
    assert granted_event["consent_id"] == consent["id"]
    assert granted_event["subject"] == w.subject and granted_event["scope"] == "report.summary"
    assert revoked_event["consent_id"] == consent["id"]
    assert revoked_event["subject"] == w.subject


def test_full_report_lists_active_records_and_nothing_that_identifies_the_citizen(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client, name="欧阳娜娜")
    consent = consent_for(client, w, scope="report.full")
    resp = read(client, w)
    assert resp.status_code == 200
    report = resp.get_json()
    assert report["scope"] == "report.full" and report["consent_id"] == consent["id"]
    assert sorted(r["catalogue_code"] for r in report["records"]) == [
        "blood.donation", "traffic.violation_minor", "utility.unpaid_bill"]
    assert {tuple(sorted(r)) for r in report["records"]} == {(
        "catalogue_code", "display_until", "name_en", "name_zh", "occurred_at", "points",
        "polarity", "severity", "under_objection")}
    assert sum(r["points"] for r in report["records"]) == report["score"] - 600
    assert read(client, w, scope="report.summary").get_json().get("records") is None

    text = resp.get_data(as_text=True) + json.dumps(report, ensure_ascii=False)
    idn, phone = w.citizen["id_number"], w.citizen["phone"]
    for secret in (idn, mask_id_number(idn), phone, PhoneNumber(phone).masked(),
                   "欧阳娜娜", "欧阳", w.citizen["id"], "测试记录"):
        assert secret not in text


def test_a_full_consent_wins_when_both_scopes_are_live(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    consent_for(client, w, scope="report.summary")
    full = consent_for(client, w, scope="report.full")
    report = read(client, w).get_json()
    assert report["scope"] == "report.full" and report["consent_id"] == full["id"]
    assert len(report["records"]) == 3


def test_denied_request_gives_no_access_and_cannot_be_decided_again(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    request = ask(client, w)
    resp = client.post(f"/v1/me/consent-requests/{request['id']}/deny", headers=w.me)
    assert resp.status_code == 200 and resp.get_json()["status"] == "denied"
    assert client.get(f"/v1/partner/consent-requests/{request['id']}",
                      headers=w.partner).get_json()["status"] == "denied"
    before = written(app)
    refused(read(client, w), 403, "consent_required")
    for action in ("approve", "deny"):
        refused(client.post(f"/v1/me/consent-requests/{request['id']}/{action}",
                            headers=w.me), 409, "consent_request_decided")
    assert written(app) == before
    assert written(app)["Consent"] == 0 and topics(app) == []


def test_approving_twice_is_a_conflict_and_makes_one_consent(app: Flask,
                                                            client: FlaskClient) -> None:
    w = world(app, client)
    request = ask(client, w)
    approve(client, w, request["id"])
    before = written(app)
    refused(client.post(f"/v1/me/consent-requests/{request['id']}/approve", headers=w.me),
            409, "consent_request_decided")
    assert written(app) == before and before["Consent"] == 1


def test_expired_consent_is_refused(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    consent = consent_for(client, w, expires_in=HOUR)
    assert read(client, w).status_code == 200
    advance(app, timedelta(hours=1, minutes=1))
    before = written(app)
    refused(read(client, w), 403, "consent_required")
    # Citizen tokens are checked against the wall clock, so the citizen's side is asked of
    # the service directly at the advanced time.
    deps = app.extensions["xinyi"]
    account = uuid.UUID(w.citizen["id"])
    with deps.db.session() as session:
        listed, _ = service.citizen_consents(session, deps, account, page=1, page_size=20)
        assert [(str(c.id), c.status) for c in listed] == [(consent["id"], "expired")]
        live, _ = service.citizen_consents(session, deps, account, status="live", page=1,
                                           page_size=20)
        assert live == []
        with pytest.raises(service.ConsentNotLive):
            service.revoke(session, deps, account, uuid.UUID(consent["id"]))
    assert written(app) == before


def test_revoking_twice_is_a_conflict(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    consent = consent_for(client, w)
    assert client.post(f"/v1/me/consents/{consent['id']}/revoke",
                       headers=w.me).status_code == 200
    before = written(app)
    refused(client.post(f"/v1/me/consents/{consent['id']}/revoke", headers=w.me), 409,
            "consent_not_live")
    assert written(app) == before


def test_undecided_request_lapses_after_seven_days(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    request = ask(client, w)
    advance(app, timedelta(days=7, minutes=1))
    deps = app.extensions["xinyi"]
    account, request_id = uuid.UUID(w.citizen["id"]), uuid.UUID(request["id"])
    before = written(app)
    with deps.db.session() as session:
        assert service.pending_requests(session, deps, account, page=1, page_size=20) == ([], 0)
        for decide in (service.approve_request, service.deny_request):
            with pytest.raises(service.ConsentRequestExpired):
                decide(session, deps, account, request_id)
    assert written(app) == before
    assert client.get(f"/v1/partner/consent-requests/{request['id']}",
                      headers=w.partner).get_json()["status"] == "expired"
    with deps.db.session() as session:
        assert service.lapse_requests(session, deps) == 1
        assert service.lapse_requests(session, deps) == 0
        assert session.scalar(select(ConsentRequest.status)) == "expired"


# ---- who may do what ------------------------------------------------------------------------

def test_a_partner_cannot_use_another_partners_subject(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    request = ask(client, w)
    approve(client, w, request["id"])
    other, _ = new_partner(client, w)
    before = written(app)
    refused(client.post("/v1/partner/consent-requests", headers=other, json={
        "subject": w.subject, "scope": "report.full", "purpose": PURPOSE,
        "expires_in": HOUR}), 404, "unknown_subject")
    refused(client.get(f"/v1/partner/reports/{w.subject}", headers=other), 404,
            "unknown_subject")
    refused(client.get(f"/v1/partner/consent-requests/{request['id']}", headers=other), 404,
            "not_found")
    for nonsense in ("ps_" + "a" * 300, "x", "ps_UPPER", "%00", "ps_%E2%80%8B"):
        assert client.get(f"/v1/partner/reports/{nonsense}", headers=other).status_code == 404
    assert written(app) == before


def test_a_citizen_cannot_decide_or_revoke_another_citizens_consent(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    pending = ask(client, w)
    consent = consent_for(client, w)
    stranger = register_citizen(client)
    them = bearer(login(client, stranger["phone"])["access_token"])
    before = written(app)
    for action in ("approve", "deny"):
        refused(client.post(f"/v1/me/consent-requests/{pending['id']}/{action}", headers=them),
                404, "not_found")
    refused(client.post(f"/v1/me/consents/{consent['id']}/revoke", headers=them), 404,
            "not_found")
    refused(client.post(f"/v1/me/consent-requests/{uuid.uuid4()}/approve", headers=them),
            404, "not_found")
    assert client.get("/v1/me/consent-requests", headers=them).get_json()["items"] == []
    assert client.get("/v1/me/consents", headers=them).get_json()["items"] == []
    assert written(app) == before
    assert client.get(f"/v1/partner/consent-requests/{pending['id']}",
                      headers=w.partner).get_json()["status"] == "pending"


# ---- direct grants --------------------------------------------------------------------------

def test_direct_grant_lets_the_partner_read_under_its_own_pseudonym(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    bike, bike_id = new_partner(client, w, kind="bike")
    resp = client.post("/v1/me/consents", headers=w.me, json={
        "partner_id": bike_id, "scope": "report.full", "purpose": "共享单车免押",
        "expires_in": 24 * HOUR})
    assert resp.status_code == 201, resp.get_json()
    consent = resp.get_json()
    assert consent["request_id"] is None and consent["status"] == "live"
    assert consent["partner"]["id"] == bike_id and consent["partner"]["kind"] == "bike"
    [(topic, event)] = topics(app)
    assert topic == "consent.granted" and event["consent_id"] == consent["id"]
    assert event["subject"] != w.subject  # a different partner, a different pseudonym
    report = client.get(f"/v1/partner/reports/{event['subject']}", headers=bike)
    assert report.status_code == 200 and report.get_json()["consent_id"] == consent["id"]
    refused(read(client, w), 403, "consent_required")  # the library was not authorised
    listed = client.get("/v1/me/consents", headers=w.me).get_json()
    assert listed["meta"]["total"] == 1 and listed["items"][0]["id"] == consent["id"]


def test_direct_grant_needs_an_active_partner(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    _, disabled_id = new_partner(client, w)
    assert client.put(f"/v1/admin/partners/{disabled_id}/status", json={"disabled": True},
                      headers=w.operator).status_code == 200
    _, provider = api_client_headers(client, w.operator, "providers")
    before = written(app)
    for partner_id in (str(uuid.uuid4()), disabled_id, provider["id"]):
        resp = client.post("/v1/me/consents", headers=w.me, json={
            "partner_id": partner_id, "scope": "report.summary", "purpose": PURPOSE,
            "expires_in": HOUR})
        refused(resp, 422, "unknown_partner")
        assert resp.get_json()["errors"][0]["field"] == "partner_id"
    assert written(app) == before


def test_bad_input_is_refused_with_the_field_named_and_nothing_written(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    good = {"subject": w.subject, "scope": "report.summary", "purpose": PURPOSE,
            "expires_in": HOUR}
    before = written(app)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"expires_in": HOUR - 1}, "expires_in"),
        ({"expires_in": 365 * 24 * HOUR + 1}, "expires_in"),
        ({"expires_in": "3600"}, "expires_in"),
        ({"expires_in": 3600.5}, "expires_in"),
        ({"scope": "report.everything"}, "scope"),
        ({"purpose": ""}, "purpose"),
        ({"purpose": "   "}, "purpose"),
        ({"purpose": "x" * 501}, "purpose"),
        ({"purpose": "a\x00b"}, "purpose"),
        ({"subject": None}, "subject"),
        ({"status": "approved"}, "status"),
    ]
    for change, field in cases:
        resp = client.post("/v1/partner/consent-requests", headers=w.partner,
                           json={**good, **change})
        refused(resp, 422, "validation_error")
        assert field in {e["field"] for e in resp.get_json()["errors"]}, change
    grant = {"partner_id": w.partner_id, "scope": "report.full", "purpose": PURPOSE,
             "expires_in": HOUR}
    grant_cases: list[tuple[dict[str, Any], str]] = [
        ({"partner_id": "not-a-uuid"}, "partner_id"), ({"expires_in": 0}, "expires_in"),
        ({"request_id": str(uuid.uuid4())}, "request_id")]
    for change, field in grant_cases:
        resp = client.post("/v1/me/consents", headers=w.me, json={**grant, **change})
        refused(resp, 422, "validation_error")
        assert resp.get_json()["errors"][0]["field"] == field
    refused(read(client, w, scope="report.secret"), 422, "validation_error")
    refused(client.get("/v1/me/consents?status=maybe", headers=w.me), 422, "validation_error")
    assert written(app) == before
