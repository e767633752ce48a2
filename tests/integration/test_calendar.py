"""Staff enter a year the calendar package does not know; provisional deadlines are counted
again and staff alerted."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import api_client_headers, bearer, login, register_citizen, staff_headers
from xinyi.disputes.models import Dispute
from xinyi.worker import recompute_deadlines


def test_a_known_year_cannot_be_overridden(app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    resp = client.put("/v1/admin/calendar/2026", headers=operator,
                      json={"holidays": ["2026-10-01"], "workdays": []})
    assert resp.status_code == 409 and resp.get_json()["code"] == "calendar_year_published"
    bad = client.put("/v1/admin/calendar/2027", headers=operator,
                     json={"holidays": ["2026-10-01"], "workdays": ["2027-01-05"]})
    assert bad.status_code == 422
    years = {y["year"]: y["source"] for y in client.get(
        "/v1/admin/calendar", headers=operator).get_json()["items"]}
    assert years[2026] == "package" and years.get(2027, "provisional") == "provisional"


def test_a_provisional_deadline_is_recomputed_when_the_year_is_entered(
        app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    provider, _ = api_client_headers(client, operator, "providers")
    person = register_citizen(client)
    me = bearer(login(client, person["phone"])["access_token"])
    deps = app.extensions["xinyi"]
    # An objection filed on Mon 21 Dec 2026 (China time): 15 working days run into 2027.
    filed_at = datetime(2026, 12, 21, 2, 0, tzinfo=UTC)
    deps.clock = lambda: filed_at
    resp = client.post("/v1/provider/records:batch", headers=provider, json={"records": [{
        "ref": f"r-{uuid.uuid4().hex[:8]}", "id_number": person["id_number"],
        "catalogue_code": "utility.unpaid_bill", "summary": "欠费",
        "occurred_at": (filed_at.date() - timedelta(days=3)).isoformat()}]})
    record = resp.get_json()["results"][0]["id"]
    dispute = client.post("/v1/me/disputes", headers=me, json={
        "record_id": record, "reason": "已缴清"}).get_json()
    assert dispute["due_provisional"] is True
    # Counted Monday to Friday: 22–31 Dec are 8 working days, then 7 more in January 2027.
    assert dispute["due_on"] == "2027-01-11"
    assert recompute_deadlines(deps).endswith("0 objections moved")  # 2027 still unknown
    holidays = ["2027-01-01", "2027-01-04"]
    assert client.put("/v1/admin/calendar/2027", headers=operator,
                      json={"holidays": holidays, "workdays": []}).status_code == 200
    recompute_deadlines(deps)
    with deps.db.session() as s:
        row = s.scalar(select(Dispute).where(Dispute.id == uuid.UUID(dispute["id"])))
        assert row is not None
        assert (row.due_on, row.due_provisional) == (date(2027, 1, 13), False)
    alerts = client.get("/v1/admin/alerts", headers=operator).get_json()["items"]
    assert [a["kind"] for a in alerts] == ["deadline_recomputed"]
