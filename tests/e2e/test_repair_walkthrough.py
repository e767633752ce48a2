"""Done-when for repairs, over real HTTP against `xinyi serve` on PostgreSQL and Redis: a
citizen with a minor default sees why it hurts and which rule applies; an organisation
registers them and posts 10 hours; they apply; a reviewer approves within the working-day
deadline; the decision PDF opens and carries the decision; the record leaves the score and the
partner's report."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pypdf
import pytest
import requests

from tests.factories import SENSITIVE_VALUES, TEST_REDIS_URL, random_phone, valid_id_number
from tests.servers import LiveServer, live_server
from xinyi.timeutil import CHINA

pytestmark = pytest.mark.e2e
PASSWORD = "walk-pass-42x"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    redis_url = os.environ.get("XINYI_TEST_E2E_REDIS_URL",
                               TEST_REDIS_URL.rsplit("/", 1)[0] + "/10")
    with live_server(tmp_path_factory.mktemp("instance"), postgres_suffix="e2e_repair",
                     redis_url=redis_url, workers=2) as live:
        yield live


def _staff(live: LiveServer, http: requests.Session, role: str) -> dict[str, str]:
    phone = random_phone()
    live.xinyi("staff", "create", "--phone", phone, "--password", PASSWORD, "--role", role)
    token = http.post(f"{live.url}/v1/auth/login",
                      json={"phone": phone, "password": PASSWORD}).json()["access_token"]
    SENSITIVE_VALUES.add(token)
    return {"Authorization": f"Bearer {token}"}


def _client(http: requests.Session, url: str, operator: dict[str, str], collection: str,
            body: dict[str, Any]) -> dict[str, str]:
    resp = http.post(f"{url}/v1/admin/{collection}", headers=operator, json=body)
    assert resp.status_code == 201, resp.text
    key = resp.json()["api_key"]["api_key"]
    SENSITIVE_VALUES.add(key)
    return {"Authorization": f"Bearer {key}"}


def test_minor_default_repaired_by_ten_hours_of_volunteering(server: LiveServer) -> None:
    url, http = server.url, requests.Session()
    operator = _staff(server, http, "operator")
    reviewer = _staff(server, http, "reviewer")
    provider = _client(http, url, operator, "providers",
                       {"name": "市交通管理局", "catalogue_codes": ["*"]})
    org = _client(http, url, operator, "orgs", {"name": "阳光志愿者协会"})
    library = _client(http, url, operator, "partners", {"name": "市图书馆", "kind": "library"})

    # A minor default, and the citizen sees why it hurts and which rule applies.
    idn, phone = valid_id_number(9101), random_phone()
    pushed = http.post(f"{url}/v1/provider/records:batch", headers=provider, json={"records": [{
        "ref": "walk-minor-1", "id_number": idn, "catalogue_code": "traffic.violation_minor",
        "occurred_at": (date.today() - timedelta(days=10)).isoformat(),
        "summary": "机动车违反禁令标志"}]}).json()
    assert pushed["results"][0]["status"] == "created"
    record_id = pushed["results"][0]["id"]
    assert http.post(f"{url}/v1/auth/register", json={
        "phone": phone, "password": PASSWORD, "name": "李四", "id_number": idn}).status_code == 201
    tokens = http.post(f"{url}/v1/auth/login",
                       json={"phone": phone, "password": PASSWORD}).json()
    SENSITIVE_VALUES.update([tokens["access_token"], tokens["refresh_token"]])
    me = {"Authorization": f"Bearer {tokens['access_token']}"}
    credit = http.get(f"{url}/v1/me/credit", headers=me).json()
    [hurt] = [c for c in credit["contributions"] if c["record_id"] == record_id]
    assert hurt["points"] < 0 and credit["score"] == 600 + hurt["points"]
    [shown] = http.get(f"{url}/v1/me/records", headers=me).json()["items"]
    assert (shown["severity"], shown["repair_hours_required"]) == ("minor", 10)
    hours = http.get(f"{url}/v1/me/service-hours", headers=me).json()
    [need] = hours["repair_requirements"]
    assert (need["record_id"], need["hours_missing"], need["can_apply_now"]) == (
        record_id, 10, False)

    # Applying before serving is refused with what is missing, and writes nothing.
    early = http.post(f"{url}/v1/me/repairs", headers=me, json={
        "record_id": record_id, "basis": "volunteer_hours", "commitment_accepted": True})
    assert early.status_code == 422 and early.json()["code"] == "repair_not_eligible"
    assert "10 more hours" in early.json()["detail"]
    assert http.get(f"{url}/v1/me/repairs", headers=me).json()["meta"]["total"] == 0

    # The organisation registers them and posts 10 hours (yesterday, China time).
    assert http.post(f"{url}/v1/org/volunteers", headers=org,
                     json={"id_number": idn, "name": "李四"}).status_code == 201
    day = datetime.now(CHINA).date() - timedelta(days=1)
    service = {"id_number": idn, "activity_ref": "walk-2026-park", "activity_name": "公园环境清洁",
               "started_at": datetime.combine(day, time(8), CHINA).isoformat(),
               "ended_at": datetime.combine(day, time(18), CHINA).isoformat()}
    posted = http.post(f"{url}/v1/org/service-records", headers=org, json=service)
    assert posted.status_code == 201 and posted.json()["hours"] == 10
    assert http.post(f"{url}/v1/org/service-records", headers=org,
                     json=service).status_code == 200  # the same post: one record
    hours = http.get(f"{url}/v1/me/service-hours", headers=me).json()
    assert hours["total_hours"] == 10 and hours["repair_requirements"][0]["can_apply_now"]

    # The partner knows them (a verification) and holds a live consent for the full report.
    [cred] = http.post(f"{url}/v1/me/credentials", json={}, headers=me).json()["items"]
    SENSITIVE_VALUES.update([cred["qr_payload"], cred["short_code"]])
    verified = http.post(f"{url}/v1/partner/verifications", headers={
        **library, "Idempotency-Key": "walk-scan-1"},
        json={"credential": cred["qr_payload"], "benefit": "library.deposit_free"}).json()
    asked = http.post(f"{url}/v1/partner/consent-requests", headers=library, json={
        "subject": verified["subject"], "scope": "report.full", "purpose": "免押借书：核实信用",
        "expires_in": 7 * 86400}).json()
    assert http.post(f"{url}/v1/me/consent-requests/{asked['id']}/approve",
                     headers=me).status_code == 201
    before = http.get(f"{url}/v1/partner/reports/{verified['subject']}", headers=library).json()
    assert before["negative_records"] == 1

    # They apply; the application is accepted today with its working-day deadline.
    applied = http.post(f"{url}/v1/me/repairs", headers=me, json={
        "record_id": record_id, "basis": "volunteer_hours", "evidence": "已参加志愿服务10小时",
        "commitment_accepted": True})
    assert applied.status_code == 201, applied.text
    repair = applied.json()
    assert repair["received_on"] == datetime.now(CHINA).date().isoformat()
    assert repair["due_on"] > repair["received_on"] and repair["commitment_id"]

    # A reviewer finds it in the queue and approves it within the deadline.
    queue = http.get(f"{url}/v1/admin/repairs?status=pending", headers=reviewer).json()
    assert repair["id"] in [r["id"] for r in queue["items"]]
    decided = http.post(f"{url}/v1/admin/repairs/{repair['id']}/decide", headers=reviewer,
                        json={"outcome": "approved", "reason": "志愿服务时长满足修复要求"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved" and not decided.json()["overdue"]
    assert datetime.now(CHINA).date().isoformat() <= repair["due_on"]
    again = http.post(f"{url}/v1/admin/repairs/{repair['id']}/decide", headers=reviewer,
                      json={"outcome": "rejected", "reason": "再次决定"})
    assert again.status_code == 409 and again.json()["code"] == "repair_decided"

    # The decision PDF opens and carries the decision.
    document = http.get(f"{url}{decided.json()['decision_document']}", headers=me)
    assert document.headers["Content-Type"] == "application/pdf"
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(document.content)).pages)
    assert "信用修复决定书" in text and "准予信用修复" in text
    assert "志愿服务时长满足修复要求" in text and idn not in text

    # The record leaves the score and the partner's report.
    credit = http.get(f"{url}/v1/me/credit", headers=me).json()
    assert record_id not in [c["record_id"] for c in credit["contributions"]]
    bonus = 10 if day.year == datetime.now(CHINA).year else 0  # hours count in their year
    assert credit["score"] == 600 + credit["hours_bonus"] and credit["hours_bonus"] == bonus
    after = http.get(f"{url}/v1/partner/reports/{verified['subject']}", headers=library).json()
    assert after["negative_records"] == 0 and after["records"] == []
    assert after["score"] == credit["score"]
    inbox = http.get(f"{url}/v1/me/notifications", headers=me).json()["items"]
    assert "repair_approved" in [n["template"] for n in inbox]
