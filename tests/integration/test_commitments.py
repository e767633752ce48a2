"""Credit commitments (信用承诺): published versioned texts, giving and revoking one, a
provider's look-up (only people it holds records for, each answer in the access log) and a
breach that becomes a record after notice and grace, objectionable like any record."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import (
    CAPTURED_LOGS,
    api_client_headers,
    bearer,
    count,
    login,
    register_citizen,
    staff_headers,
    valid_id_number,
)
from xinyi.audit.models import AccessLogEntry, StaffAction
from xinyi.commitments.models import CommitmentText, CreditCommitment
from xinyi.commitments.service import export_commitments, verify_commitment
from xinyi.logs import redact_http
from xinyi.notifications.models import Notification
from xinyi.records.models import CreditRecord
from xinyi.timeutil import CHINA
from xinyi.worker import record_commitment_breaches


@dataclass
class World:
    operator: dict[str, str]
    provider: dict[str, str]
    provider_id: str
    person: dict[str, Any]
    me: dict[str, str]


def world(app: Flask, client: FlaskClient) -> World:
    operator = staff_headers(app, client, "operator")
    provider, created = api_client_headers(client, operator, "providers")
    person = register_citizen(client)
    me = bearer(login(client, person["phone"])["access_token"])
    return World(operator, provider, created["id"], person, me)


def today() -> date:
    return datetime.now(CHINA).date()


def push(client: FlaskClient, provider: dict[str, str], id_number: str) -> str:
    resp = client.post("/v1/provider/records:batch", headers=provider, json={"records": [{
        "ref": f"r-{uuid.uuid4().hex[:10]}", "id_number": id_number,
        "catalogue_code": "utility.on_time", "summary": "按时缴费",
        "occurred_at": (today() - timedelta(days=5)).isoformat()}]})
    [result] = resp.get_json()["results"]
    assert result["status"] == "created", result
    return str(result["id"])


def give(client: FlaskClient, me: dict[str, str], purpose: str, version: int = 1) -> Any:
    return client.post("/v1/me/commitments", headers=me,
                       json={"purpose": purpose, "text_version": version})


def notices(app: Flask, template: str) -> int:
    return count(app, Notification, Notification.template == template)


def test_the_published_texts_are_listed_and_a_new_version_leaves_the_old_valid(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    texts = {t["purpose"]: t for t in client.get("/v1/commitment-texts").get_json()["items"]}
    assert set(texts) == {"repair", "rongque", "benefit"}
    assert {t["version"] for t in texts.values()} == {1}
    assert {t["breach_catalogue_code"] for t in texts.values()} == {"commitment.broken"}
    assert texts["benefit"]["revocable"] and not texts["rongque"]["revocable"]
    new = {"purpose": "rongque", "title_zh": "容缺受理承诺", "text": "十个工作日内补齐材料。",
           "revocable": False, "breach_catalogue_code": "commitment.broken"}
    resp = client.post("/v1/admin/commitment-texts", headers=w.operator, json=new)
    assert resp.status_code == 201 and resp.get_json()["version"] == 2
    assert count(app, StaffAction, StaffAction.target == "commitment_text:rongque") == 1
    texts = {t["purpose"]: t for t in client.get("/v1/commitment-texts").get_json()["items"]}
    assert texts["rongque"]["version"] == 2 and texts["rongque"]["text"] == new["text"]
    old = give(client, w.me, "rongque", 1)
    assert old.status_code == 201 and old.get_json()["text_version"] == 1
    assert old.get_json()["text"] != new["text"]
    assert give(client, w.me, "rongque", 2).get_json()["text"] == new["text"]
    # A new purpose starts at version 1; the breach item must exist and be negative.
    resp = client.post("/v1/admin/commitment-texts", headers=w.operator,
                       json={**new, "purpose": "tax_filing"})
    assert resp.status_code == 201 and resp.get_json()["version"] == 1
    for code, problem in (("no.such_item", "unknown_catalogue_code"),
                          ("commitment.fulfilled", "breach_item_not_negative")):
        resp = client.post("/v1/admin/commitment-texts", headers=w.operator,
                           json={**new, "breach_catalogue_code": code})
        assert resp.status_code == 422 and resp.get_json()["code"] == problem
        assert resp.get_json()["errors"][0]["field"] == "breach_catalogue_code"
    reviewer = staff_headers(app, client, "reviewer")
    assert client.post("/v1/admin/commitment-texts", headers=reviewer,
                       json=new).status_code == 403
    assert count(app, CommitmentText) == 5


def test_a_commitment_is_signed_listed_and_unknown_texts_are_refused(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    resp = give(client, w.me, "benefit")
    assert resp.status_code == 201, resp.get_json()
    made = resp.get_json()
    assert made["status"] == "active" and made["revocable"] and made["signature"].count(".") == 2
    with app.extensions["xinyi"].db.session() as s:
        assert verify_commitment(s, uuid.UUID(made["id"]))
    for body, field in (({"purpose": "lottery", "text_version": 1}, "purpose"),
                        ({"purpose": "benefit", "text_version": 9}, "text_version")):
        resp = client.post("/v1/me/commitments", headers=w.me, json=body)
        assert resp.status_code == 422 and resp.get_json()["code"] == "unknown_commitment_text"
        assert [e["field"] for e in resp.get_json()["errors"]] == [field]
    assert client.post("/v1/me/commitments", headers=w.me,
                       json={"purpose": "benefit"}).status_code == 422
    assert count(app, CreditCommitment) == 1
    listed = client.get("/v1/me/commitments", headers=w.me).get_json()
    assert [c["id"] for c in listed["items"]] == [made["id"]]
    assert listed["items"][0]["signature"] == made["signature"]
    other = bearer(login(client, register_citizen(client)["phone"])["access_token"])
    assert client.get("/v1/me/commitments", headers=other).get_json()["items"] == []
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        [exported] = export_commitments(s, deps, uuid.uuid4(),
                                        deps.bidx(w.person["id_number"], kind="id_number"))
    assert exported["id"] == made["id"] and exported["signature"] == made["signature"]
    assert exported["signed_at"] == datetime.fromisoformat(made["signed_at"]).isoformat()


def test_revocation_only_where_the_text_allows_and_only_once(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    benefit = give(client, w.me, "benefit").get_json()["id"]
    rongque = give(client, w.me, "rongque").get_json()["id"]
    resp = client.post(f"/v1/me/commitments/{benefit}/revoke", headers=w.me)
    assert resp.status_code == 200 and resp.get_json()["status"] == "revoked"
    assert resp.get_json()["revoked_at"]
    again = client.post(f"/v1/me/commitments/{benefit}/revoke", headers=w.me)
    assert again.status_code == 409 and again.get_json()["code"] == "commitment_not_active"
    fixed = client.post(f"/v1/me/commitments/{rongque}/revoke", headers=w.me)
    assert fixed.status_code == 409 and fixed.get_json()["code"] == "commitment_not_revocable"
    other = bearer(login(client, register_citizen(client)["phone"])["access_token"])
    assert client.post(f"/v1/me/commitments/{rongque}/revoke",
                       headers=other).status_code == 404
    statuses = {c["id"]: c["status"] for c in
                client.get("/v1/me/commitments", headers=w.me).get_json()["items"]}
    assert statuses == {benefit: "revoked", rongque: "active"}


def test_a_provider_sees_commitments_only_of_people_it_holds_records_for(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    made = give(client, w.me, "rongque").get_json()
    logs_from = len(CAPTURED_LOGS)
    before = count(app, AccessLogEntry, AccessLogEntry.actor_type == "provider")
    stranger, _ = api_client_headers(client, w.operator, "providers")
    not_held = client.get("/v1/provider/commitments", headers=w.provider,
                          query_string={"id_number": w.person["id_number"]})
    unknown = client.get("/v1/provider/commitments", headers=w.provider,
                         query_string={"id_number": valid_id_number()})
    assert not_held.status_code == unknown.status_code == 404
    assert not_held.get_json() == unknown.get_json()
    assert count(app, AccessLogEntry, AccessLogEntry.actor_type == "provider") == before
    push(client, w.provider, w.person["id_number"])
    resp = client.get("/v1/provider/commitments", headers=w.provider,
                      query_string={"id_number": w.person["id_number"]})
    assert resp.status_code == 200
    assert [c["id"] for c in resp.get_json()["items"]] == [made["id"]]
    entries = count(app, AccessLogEntry, AccessLogEntry.actor_type == "provider",
                    AccessLogEntry.action == "commitments",
                    AccessLogEntry.actor_id == w.provider_id)
    assert entries == 1
    assert client.get("/v1/provider/commitments", headers=stranger,
                      query_string={"id_number": w.person["id_number"]}).status_code == 404
    bad = client.get("/v1/provider/commitments", headers=w.provider,
                     query_string={"id_number": "110101199001011230"})
    assert bad.status_code == 422
    assert bad.get_json()["errors"][0] == {"field": "id_number", "location": "query",
                                           "messages": ["check digit does not match"]}
    queries = client.get("/v1/me/queries", headers=w.me).get_json()["items"]
    assert any(q["scope"] == "commitments" for q in queries), queries
    assert not any(w.person["id_number"] in line for line in CAPTURED_LOGS[logs_from:])
    # The server's access log (gunicorn, through xinyi.serving) drops the query string.
    line = f'"GET /v1/provider/commitments?id_number={w.person["id_number"]} HTTP/1.1" 200'
    assert w.person["id_number"] not in redact_http(line)


def breach(client: FlaskClient, w: World, commitment_id: str, **overrides: Any) -> Any:
    body = {"facts": "受理后二十个工作日内未补齐材料", "occurred_on": today().isoformat()}
    body.update(overrides)
    return client.post(f"/v1/provider/commitments/{commitment_id}/breach",
                       headers=w.provider, json=body)


def test_a_breach_is_noticed_recorded_after_grace_and_can_be_objected_to(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    commitment = give(client, w.me, "rongque").get_json()["id"]
    stranger, _ = api_client_headers(client, w.operator, "providers")
    assert breach(client, w, commitment).status_code == 404  # holds no record of them yet
    push(client, w.provider, w.person["id_number"])
    assert breach(client, w, commitment, stranger=True).status_code == 422
    future = breach(client, w, commitment, occurred_on=(today() + timedelta(days=1)).isoformat())
    assert future.status_code == 422 and future.get_json()["errors"][0]["field"] == "occurred_on"
    assert client.post(f"/v1/provider/commitments/{commitment}/breach", headers=stranger,
                       json={"facts": "x", "occurred_on": today().isoformat()}).status_code == 404
    resp = breach(client, w, commitment)
    assert resp.status_code == 200, resp.get_json()
    done = resp.get_json()
    assert done["status"] == "breached" and done["record_id"] is None
    assert notices(app, "commitment_breached") == 1
    again = breach(client, w, commitment)
    assert again.status_code == 409 and again.get_json()["code"] == "commitment_already_breached"
    revoke = client.post(f"/v1/me/commitments/{commitment}/revoke", headers=w.me)
    assert revoke.status_code == 409
    deps = app.extensions["xinyi"]
    broken = CreditRecord.catalogue_code == "commitment.broken"
    assert record_commitment_breaches(deps) == "record_commitment_breaches: 0 recorded"
    assert count(app, CreditRecord, broken) == 0  # still in grace
    due = datetime.fromisoformat(done["record_due_at"])
    assert due - datetime.now(UTC) > timedelta(days=6)
    deps.clock = lambda: due + timedelta(minutes=1)
    try:
        assert record_commitment_breaches(deps) == "record_commitment_breaches: 1 recorded"
        assert record_commitment_breaches(deps) == "record_commitment_breaches: 0 recorded"
    finally:
        deps.clock = lambda: datetime.now(UTC)
    assert count(app, CreditRecord, broken) == 1
    assert notices(app, "commitment_breach_recorded") == 1
    mine = client.get("/v1/me/commitments", headers=w.me).get_json()["items"][0]
    records = client.get("/v1/me/records", headers=w.me).get_json()["items"]
    [record] = [r for r in records if r["catalogue_code"] == "commitment.broken"]
    assert mine["record_id"] == record["id"] and "未补齐材料" in record["summary"]
    objection = client.post("/v1/me/disputes", headers=w.me, json={
        "record_id": record["id"], "reason": "材料已于期限内补齐"})
    assert objection.status_code == 201, objection.get_json()
    queue = client.get("/v1/provider/disputes", headers=w.provider).get_json()["items"]
    assert [d["record_id"] for d in queue] == [record["id"]]


def test_a_revoked_commitment_cannot_be_breached(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    push(client, w.provider, w.person["id_number"])
    commitment = give(client, w.me, "benefit").get_json()["id"]
    assert client.post(f"/v1/me/commitments/{commitment}/revoke",
                       headers=w.me).status_code == 200
    resp = breach(client, w, commitment)
    assert resp.status_code == 409 and resp.get_json()["code"] == "commitment_revoked"
    assert count(app, CreditCommitment, CreditCommitment.status == "breached") == 0
    assert notices(app, "commitment_breached") == 0
