"""The citizen sees every read of their data by others (查询记录, R7), in a verifiable chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from tests.factories import bearer, login, register_citizen
from tests.integration.test_consents import (
    PURPOSE,
    approve,
    ask,
    consent_for,
    read,
    refused,
    world,
    written,
)
from xinyi.audit.models import AccessLogEntry
from xinyi.audit.service import verify_chains


def queries(client: FlaskClient, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    resp = client.get(f"/v1/me/queries{query}", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def test_each_successful_read_adds_exactly_one_entry_the_citizen_can_see(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    summary = consent_for(client, w, scope="report.summary")
    assert queries(client, w.me)["items"] == []

    first = written(app)["AccessLogEntry"]
    assert read(client, w).status_code == 200
    assert written(app)["AccessLogEntry"] == first + 1
    full = approve(client, w, ask(client, w, scope="report.full", purpose="核实逾期记录")["id"])
    assert read(client, w).status_code == 200
    assert written(app)["AccessLogEntry"] == first + 2

    page = queries(client, w.me)
    assert page["meta"] == {"page": 1, "page_size": 20, "total": 2}
    newest, oldest = page["items"]
    assert newest["who"] == {"type": "partner", "name": w.partner_name}
    assert (newest["action"], newest["scope"]) == ("report", "report.full")
    assert (newest["consent_id"], newest["purpose"]) == (full["id"], "核实逾期记录")
    assert (oldest["scope"], oldest["consent_id"]) == ("report.summary", summary["id"])
    assert oldest["purpose"] == PURPOSE and oldest["who"]["name"] == w.partner_name
    assert newest["seq"] == oldest["seq"] + 1
    assert datetime.fromisoformat(newest["at"]) >= datetime.fromisoformat(oldest["at"])

    deps = app.extensions["xinyi"]
    with deps.db.session() as session:
        checked, problem = verify_chains(session)
    assert problem is None and checked >= 2


def test_a_refused_read_adds_no_entry(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    before = written(app)
    refused(read(client, w), 403, "consent_required")
    summary = consent_for(client, w, scope="report.summary")
    after_grant = written(app)
    refused(read(client, w, scope="report.full"), 403, "consent_required")
    client.post(f"/v1/me/consents/{summary['id']}/revoke", headers=w.me)
    after_revoke = written(app)
    refused(read(client, w), 403, "consent_required")
    assert written(app) == after_revoke
    assert before["AccessLogEntry"] == after_grant["AccessLogEntry"]
    assert after_revoke["AccessLogEntry"] == before["AccessLogEntry"]
    assert queries(client, w.me)["items"] == []


def test_queries_are_the_citizens_own_and_paginated(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    consent_for(client, w)
    for _ in range(3):
        assert read(client, w).status_code == 200
    second = queries(client, w.me, "?page=2&page_size=2")
    assert second["meta"] == {"page": 2, "page_size": 2, "total": 3}
    assert [e["seq"] for e in second["items"]] == [1]
    stranger = register_citizen(client)
    them = bearer(login(client, stranger["phone"])["access_token"])
    assert queries(client, them)["meta"] == {"page": 1, "page_size": 20, "total": 0}
    for bad in ("?page=0", "?page_size=101", "?page=x"):
        refused(client.get(f"/v1/me/queries{bad}", headers=w.me), 422, "validation_error")


def test_an_altered_entry_breaks_the_chain(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    consent_for(client, w)
    assert read(client, w).status_code == 200
    assert read(client, w).status_code == 200
    deps = app.extensions["xinyi"]
    with deps.db.session() as session:
        assert verify_chains(session)[1] is None
        session.execute(update(AccessLogEntry).where(AccessLogEntry.seq == 1)
                        .values(purpose="别的目的"))
        _, problem = verify_chains(session)
    assert problem is not None and problem.seq == 1
