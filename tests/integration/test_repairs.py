"""Credit repair (信用修复): eligibility judged at once (every shortfall named, nothing written),
review within working days by reviewers only and once, and what approval and rejection do."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pypdf
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
from xinyi.alerts.models import StaffAlert
from xinyi.audit.models import AccessLogEntry
from xinyi.commitments.models import CreditCommitment
from xinyi.commitments.service import verify_commitment
from xinyi.notifications.models import Notification
from xinyi.outbox.models import OutboxEvent
from xinyi.repairs.models import RepairApplication
from xinyi.timeutil import CHINA
from xinyi.volunteering.models import HoursClaim
from xinyi.worker import flag_overdue_cases


@dataclass
class World:
    operator: dict[str, str]
    reviewer: dict[str, str]
    provider: dict[str, str]
    org: dict[str, str]
    person: dict[str, Any]
    me: dict[str, str]


def world(app: Flask, client: FlaskClient) -> World:
    operator = staff_headers(app, client, "operator")
    reviewer = staff_headers(app, client, "reviewer")
    provider, _ = api_client_headers(client, operator, "providers")
    org, _ = api_client_headers(client, operator, "orgs")
    person = register_citizen(client)
    me = bearer(login(client, person["phone"])["access_token"])
    assert client.post("/v1/org/volunteers", headers=org, json={
        "id_number": person["id_number"], "name": "测试公民"}).status_code == 201
    return World(operator, reviewer, provider, org, person, me)


def push(client: FlaskClient, w: World, code: str, days_ago: int = 10) -> str:
    resp = client.post("/v1/provider/records:batch", headers=w.provider, json={"records": [{
        "ref": f"r-{uuid.uuid4().hex[:10]}", "id_number": w.person["id_number"],
        "catalogue_code": code, "summary": "测试记录",
        "occurred_at": (date.today() - timedelta(days=days_ago)).isoformat()}]})
    [result] = resp.get_json()["results"]
    assert result["status"] == "created", result
    return str(result["id"])


def serve(client: FlaskClient, w: World, hours: int, days_ago: int = 1, ref: str = "s") -> None:
    day = datetime.now(CHINA).date() - timedelta(days=days_ago)
    resp = client.post("/v1/org/service-records", headers=w.org, json={
        "id_number": w.person["id_number"], "activity_ref": f"{ref}-{days_ago}",
        "activity_name": "社区服务",
        "started_at": datetime.combine(day, time(7), CHINA).isoformat(),
        "ended_at": datetime.combine(day, time(7 + hours), CHINA).isoformat()})
    assert resp.status_code == 201, resp.get_json()


def apply(client: FlaskClient, w: World, record_id: str, **overrides: Any) -> Any:
    body = {"record_id": record_id, "basis": "volunteer_hours", "commitment_accepted": True}
    body.update(overrides)
    return client.post("/v1/me/repairs", headers=w.me, json=body)


def nothing_written(app: Flask) -> dict[str, int]:
    return {m.__name__: count(app, m) for m in (RepairApplication, CreditCommitment, HoursClaim)}


def test_a_refusal_names_every_shortfall_and_writes_nothing(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    minor = push(client, w, "traffic.violation_minor")
    serve(client, w, 2)
    resp = apply(client, w, minor, commitment_accepted=False)
    assert resp.status_code == 422 and resp.get_json()["code"] == "repair_not_eligible"
    problem = resp.get_json()
    assert "8 more hours" in problem["detail"]
    assert {e["field"] for e in problem["errors"]} == {"basis", "commitment_accepted"}
    general = push(client, w, "commitment.broken", days_ago=20)  # repair after 3 months
    resp = apply(client, w, general)
    opens = resp.get_json()["detail"]
    assert "earliest_repair_date: possible from" in opens
    assert "38 more hours" in opens  # 2 of the 40 served since the record
    serious = push(client, w, "telecom.fraud", days_ago=400)
    resp = apply(client, w, serious)
    assert "serious_not_by_volunteering" in resp.get_json()["detail"]
    resp = apply(client, w, serious, basis="fulfilled_obligation")
    assert "evidence_required" in resp.get_json()["detail"]
    assert nothing_written(app) == {"RepairApplication": 0, "CreditCommitment": 0,
                                    "HoursClaim": 0}


def test_bad_input_and_another_citizens_record(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    record = push(client, w, "traffic.violation_minor")
    other = register_citizen(client)
    them = bearer(login(client, other["phone"])["access_token"])
    resp = client.post("/v1/me/repairs", headers=them, json={
        "record_id": record, "basis": "volunteer_hours", "commitment_accepted": True})
    assert resp.status_code == 404
    assert apply(client, w, record, evidence="字" * 2001).status_code == 422
    many = [str(uuid.uuid4()) for _ in range(6)]
    assert apply(client, w, record, attachment_ids=many).status_code == 422
    resp = apply(client, w, record, attachment_ids=[str(uuid.uuid4())])
    assert resp.status_code == 422 and resp.get_json()["code"] == "unknown_attachment"
    assert apply(client, w, record, basis="luck").status_code == 422
    assert apply(client, w, record, commitment_accepted="yes").status_code == 422
    assert nothing_written(app)["RepairApplication"] == 0


def test_approval_archives_rescores_documents_notifies_and_tells_partners(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    record = push(client, w, "traffic.violation_minor")
    serve(client, w, 10)
    before = client.get("/v1/me/credit", headers=w.me).get_json()["score"]
    made = apply(client, w, record, evidence="已完成10小时志愿服务")
    assert made.status_code == 201, made.get_json()
    repair = made.get_json()
    assert repair["status"] == "pending" and repair["hours_claimed"] == 10
    assert repair["received_on"] == datetime.now(CHINA).date().isoformat()
    dup = apply(client, w, record)
    assert dup.status_code == 409 and dup.get_json()["code"] == "repair_pending"
    # Only a reviewer decides: an operator, an auditor, the provider are refused.
    for who in (w.operator, staff_headers(app, client, "auditor"), w.provider):
        assert client.post(f"/v1/admin/repairs/{repair['id']}/decide", headers=who, json={
            "outcome": "approved", "reason": "x"}).status_code == 403
    logged = count(app, AccessLogEntry)
    done = client.post(f"/v1/admin/repairs/{repair['id']}/decide", headers=w.reviewer,
                       json={"outcome": "approved", "reason": "符合修复条件"})
    assert done.status_code == 200 and done.get_json()["status"] == "approved"
    assert count(app, AccessLogEntry) == logged + 1  # the decision is in the access log
    again = client.post(f"/v1/admin/repairs/{repair['id']}/decide", headers=w.reviewer,
                        json={"outcome": "rejected", "reason": "改主意"})
    assert again.status_code == 409 and again.get_json()["code"] == "repair_decided"
    credit = client.get("/v1/me/credit", headers=w.me).get_json()
    assert record not in [c["record_id"] for c in credit["contributions"]]
    assert credit["score"] == before + 5
    archived = client.get("/v1/me/records?archived=true", headers=w.me).get_json()["items"]
    assert [(r["id"], r["archived_reason"]) for r in archived] == [(record, "repaired")]
    pdf = client.get(f"/v1/me/repairs/{repair['id']}/decision.pdf", headers=w.me)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.data)).pages)
    assert "准予信用修复" in text and "符合修复条件" in text
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        [event] = s.scalars(select(OutboxEvent).where(OutboxEvent.topic == "record.repaired"))
        assert event.payload["record_id"] == record and event.subject_bidx is not None
        assert "subject" not in event.payload
        templates = set(s.scalars(select(Notification.template)))
        [commitment_id] = s.scalars(select(CreditCommitment.id))
        assert verify_commitment(s, commitment_id)
    assert {"repair_received", "repair_approved"} <= templates


def test_rejection_gives_the_reason_and_the_way_back_and_frees_the_hours(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    record = push(client, w, "traffic.violation_minor")
    serve(client, w, 10)
    repair = apply(client, w, record).get_json()
    hours = client.get("/v1/me/service-hours", headers=w.me).get_json()
    assert hours["repair_requirements"][0]["hours_available"] == 0
    assert client.get(f"/v1/me/repairs/{repair['id']}/decision.pdf",
                      headers=w.me).get_json()["code"] == "decision_not_ready"
    done = client.post(f"/v1/admin/repairs/{repair['id']}/decide", headers=w.reviewer,
                       json={"outcome": "rejected", "reason": "证明材料不足"}).get_json()
    assert done["decision_reason"] == "证明材料不足" and "重新提交" in done["reapply"]
    hours = client.get("/v1/me/service-hours", headers=w.me).get_json()
    assert hours["repair_requirements"][0]["hours_available"] == 10
    assert apply(client, w, record).status_code == 201  # may apply again
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(client.get(
        f"/v1/me/repairs/{repair['id']}/decision.pdf", headers=w.me).data)).pages)
    assert "不予信用修复" in text


def test_hours_used_by_one_repair_do_not_repair_another(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    first = push(client, w, "traffic.violation_minor")
    second = push(client, w, "bike.default")
    serve(client, w, 10)
    assert apply(client, w, first).status_code == 201
    resp = apply(client, w, second)
    assert resp.status_code == 422 and "10 more hours" in resp.get_json()["detail"]


def test_staff_edit_the_hours_an_item_needs(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    patched = client.patch("/v1/admin/catalogue/traffic.violation_minor", headers=w.operator,
                           json={"repair_hours_required": 12})
    assert patched.status_code == 200 and patched.get_json()["repair_hours_required"] == 12
    bad = client.patch("/v1/admin/catalogue/telecom.fraud", headers=w.operator,
                       json={"repair_hours_required": 5})
    assert bad.status_code == 422
    record = push(client, w, "traffic.violation_minor")
    serve(client, w, 10)
    resp = apply(client, w, record)
    assert "2 more hours" in resp.get_json()["detail"]


def test_overdue_applications_are_flagged_to_staff_once(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    record = push(client, w, "traffic.violation_minor")
    serve(client, w, 10)
    repair = apply(client, w, record).get_json()
    deps = app.extensions["xinyi"]
    flag_overdue_cases(deps)
    assert count(app, StaffAlert) == 0
    deps.clock = lambda: datetime.now(UTC) + timedelta(days=12)
    queue = client.get("/v1/admin/repairs?overdue=true", headers=w.reviewer).get_json()
    assert [r["id"] for r in queue["items"]] == [repair["id"]] and queue["items"][0]["overdue"]
    flag_overdue_cases(deps)
    flag_overdue_cases(deps)
    alerts = client.get("/v1/admin/alerts", headers=w.operator).get_json()["items"]
    assert [a["ref"] for a in alerts] == [f"repair:{repair['id']}"]
