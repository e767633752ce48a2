"""Objections (异议): one open per record, shown as under objection where the record is shown,
resolved by the owning provider or a reviewer, with the effects each outcome has."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

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
from xinyi.disputes.models import Dispute
from xinyi.outbox.models import OutboxEvent
from xinyi.pii import IdNumber
from xinyi.subjects.service import ensure_subject, remember


@dataclass
class World:
    operator: dict[str, str]
    reviewer: dict[str, str]
    provider: dict[str, str]
    partner: dict[str, str]
    subject: str
    person: dict[str, Any]
    me: dict[str, str]


def world(app: Flask, client: FlaskClient) -> World:
    operator = staff_headers(app, client, "operator")
    reviewer = staff_headers(app, client, "reviewer")
    provider, _ = api_client_headers(client, operator, "providers")
    partner, created = api_client_headers(client, operator, "partners", kind="library")
    person = register_citizen(client)
    me = bearer(login(client, person["phone"])["access_token"])
    deps = app.extensions["xinyi"]
    with deps.db.session() as session:
        bidx = ensure_subject(session, deps, IdNumber.parse(person["id_number"]), deps.clock())
        subject = remember(session, deps, uuid.UUID(created["id"]), bidx)
        session.commit()
    asked = client.post("/v1/partner/consent-requests", headers=partner, json={
        "subject": subject, "scope": "report.full", "purpose": "核实信用状况",
        "expires_in": 86400}).get_json()
    assert client.post(f"/v1/me/consent-requests/{asked['id']}/approve",
                       headers=me).status_code == 201
    return World(operator, reviewer, provider, partner, subject, person, me)


def push(client: FlaskClient, w: World, code: str = "utility.unpaid_bill",
         provider: dict[str, str] | None = None) -> str:
    resp = client.post("/v1/provider/records:batch", headers=provider or w.provider, json={
        "records": [{"ref": f"r-{uuid.uuid4().hex[:10]}", "id_number": w.person["id_number"],
                     "catalogue_code": code, "summary": "测试记录",
                     "occurred_at": (date.today() - timedelta(days=5)).isoformat()}]})
    [result] = resp.get_json()["results"]
    assert result["status"] == "created", result
    return str(result["id"])


def object_to(client: FlaskClient, w: World, record_id: str) -> Any:
    return client.post("/v1/me/disputes", headers=w.me, json={
        "record_id": record_id, "reason": "该账单已于到期前缴清", "evidence": "缴费凭证号 12345"})


def report(client: FlaskClient, w: World) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/v1/partner/reports/{w.subject}",
                                      headers=w.partner).get_json()
    return body


def corrected_events(app: Flask) -> list[dict[str, Any]]:
    with app.extensions["xinyi"].db.session() as s:
        return [e.payload for e in s.scalars(select(OutboxEvent).where(
            OutboxEvent.topic == "record.corrected"))]


def test_one_open_objection_shown_everywhere_the_record_is(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    record = push(client, w)
    filed = object_to(client, w, record)
    assert filed.status_code == 201, filed.get_json()
    dispute = filed.get_json()
    assert dispute["status"] == "open" and dispute["due_on"] > dispute["received_on"]
    again = object_to(client, w, record)
    assert again.status_code == 409 and again.get_json()["code"] == "dispute_open"
    assert count(app, Dispute) == 1
    [mine] = client.get("/v1/me/records", headers=w.me).get_json()["items"]
    assert mine["under_objection"] is True
    full = report(client, w)
    assert full["records_under_objection"] == 1 and full["records"][0]["under_objection"]
    other = register_citizen(client)
    them = bearer(login(client, other["phone"])["access_token"])
    assert client.post("/v1/me/disputes", headers=them, json={
        "record_id": record, "reason": "不是我的"}).status_code == 404
    assert client.post("/v1/me/disputes", headers=w.me, json={
        "record_id": record, "reason": "x" * 2001}).status_code == 422


def test_the_provider_corrects_and_partners_hear_of_it(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    record = push(client, w, "utility.unpaid_bill")  # -10
    dispute = object_to(client, w, record).get_json()
    before = client.get("/v1/me/credit", headers=w.me).get_json()["score"]
    other, _ = api_client_headers(client, w.operator, "providers")
    assert client.post(f"/v1/provider/disputes/{dispute['id']}/resolve", headers=other, json={
        "outcome": "upheld", "reason": "x"}).status_code == 404  # not its record
    assert client.post(f"/v1/provider/disputes/{dispute['id']}/resolve", headers=w.provider,
                       json={"outcome": "corrected", "reason": "无更正"}).status_code == 422
    queue = client.get("/v1/provider/disputes?status=open", headers=w.provider).get_json()
    assert [d["id"] for d in queue["items"]] == [dispute["id"]]
    done = client.post(f"/v1/provider/disputes/{dispute['id']}/resolve", headers=w.provider,
                       json={"outcome": "corrected", "reason": "核实为图书逾期，非欠费",
                             "correction": {"catalogue_code": "library.overdue_default"}})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["resolved_by"] == "provider"
    after = client.get("/v1/me/credit", headers=w.me).get_json()["score"]
    assert after == before + 5  # -10 became -5
    [mine] = client.get("/v1/me/records", headers=w.me).get_json()["items"]
    assert mine["catalogue_code"] == "library.overdue_default" and not mine["under_objection"]
    assert report(client, w)["score"] == after
    [event] = corrected_events(app)  # once: the correction's own event
    assert event["record_id"] == record and event["catalogue_code"] == "library.overdue_default"
    again = client.post(f"/v1/provider/disputes/{dispute['id']}/resolve", headers=w.provider,
                        json={"outcome": "upheld", "reason": "再次"})
    assert again.status_code == 409 and again.get_json()["code"] == "dispute_resolved"


def test_a_reviewer_deletes_or_upholds(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    wrong, right = push(client, w), push(client, w, "bike.default")
    d1 = object_to(client, w, wrong).get_json()
    d2 = object_to(client, w, right).get_json()
    assert client.post(f"/v1/admin/disputes/{d1['id']}/resolve", headers=w.operator, json={
        "outcome": "deleted", "reason": "x"}).status_code == 403
    assert client.post(f"/v1/admin/disputes/{d1['id']}/resolve", headers=w.reviewer, json={
        "outcome": "deleted", "reason": "数据报送错误"}).status_code == 200
    assert client.post(f"/v1/admin/disputes/{d2['id']}/resolve", headers=w.reviewer, json={
        "outcome": "upheld", "reason": "经核实记录属实"}).status_code == 200
    [kept] = client.get("/v1/me/records", headers=w.me).get_json()["items"]
    assert kept["id"] == right and kept["objection_note"] == "经核实记录属实"
    assert not kept["under_objection"]
    full = report(client, w)
    assert full["negative_records"] == 1 and full["records_under_objection"] == 0
    assert [e["outcome"] for e in corrected_events(app)] == ["deleted"]
    mine = client.get("/v1/me/disputes", headers=w.me).get_json()["items"]
    assert {d["status"] for d in mine} == {"deleted", "upheld"}


def test_a_benefit_withheld_by_a_record_under_objection_says_so(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    record = push(client, w, "exam.cheating")  # -100, a black-list entry (legal basis)
    push(client, w, "bravery.act")  # +60 twice: the score alone would grant the benefits
    push(client, w, "redlist.moral_model")
    withheld = [b for b in client.get("/v1/me/credit", headers=w.me).get_json()["benefits"]
                if b["reason"] == "black_list_entry"]
    assert withheld and not any(b["under_objection"] for b in withheld)
    object_to(client, w, record)
    withheld = [b for b in client.get("/v1/me/credit", headers=w.me).get_json()["benefits"]
                if b["reason"] == "black_list_entry"]
    assert withheld and all(b["under_objection"] for b in withheld)
