"""Webhooks, part one: endpoints, the dispatcher (outbox → per-partner feed → deliveries), the
event feed, the catalogue and retention. Sending over HTTP is tested with the delivery side."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, delete, func, select, update
from sqlalchemy.orm import sessionmaker

from tests.factories import (
    api_client_headers,
    bearer,
    count,
    login,
    register_citizen,
    staff_headers,
)
from tests.integration.test_records import item, push
from xinyi.audit.models import AccessLogEntry
from xinyi.outbox.models import OutboxEvent
from xinyi.outbox.service import emit
from xinyi.subjects.service import pseudonym
from xinyi.uow import UnitOfWork
from xinyi.webhooks import catalogue
from xinyi.webhooks.endpoints import MAX_ENDPOINTS, SECRET_CONTEXT, signing_secrets
from xinyi.webhooks.feed import message_body
from xinyi.webhooks.models import (
    PartnerEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookWatch,
)
from xinyi.webhooks.service import dispatch_batch, dispatch_pending, purge_delivered

HOUR = 3600
BLACK = "court.dishonest_debtor"
URL = "http://127.0.0.1:9/hooks"


@dataclass
class Partner:
    headers: dict[str, str]
    id: str
    name: str


@dataclass
class World:
    operator: dict[str, str]
    provider: dict[str, str]
    a: Partner
    b: Partner
    citizen: dict[str, Any]
    me: dict[str, str]


def new_partner(client: FlaskClient, operator: dict[str, str]) -> Partner:
    headers, created = api_client_headers(client, operator, "partners", kind="library")
    return Partner(headers, created["id"], created["name"])


def world(app: Flask, client: FlaskClient) -> World:
    operator = staff_headers(app, client, "operator")
    provider, _ = api_client_headers(client, operator, "providers")
    citizen = register_citizen(client)
    me = bearer(login(client, citizen["phone"])["access_token"])
    return World(operator, provider, new_partner(client, operator),
                 new_partner(client, operator), citizen, me)


def grant(client: FlaskClient, w: World, partner: Partner) -> dict[str, Any]:
    resp = client.post("/v1/me/consents", headers=w.me, json={
        "partner_id": partner.id, "scope": "report.summary", "purpose": "免押借书",
        "expires_in": 30 * 24 * HOUR})
    assert resp.status_code == 201, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def endpoint(client: FlaskClient, partner: Partner, **body: Any) -> dict[str, Any]:
    resp = client.post("/v1/partner/webhook-endpoints", headers=partner.headers,
                       json={"url": URL, **body})
    assert resp.status_code == 201, resp.get_json()
    created: dict[str, Any] = resp.get_json()
    return created


def dispatch(app: Flask, batch: int = 1000) -> int:
    return dispatch_pending(app.extensions["xinyi"], batch=batch)


def feed(client: FlaskClient, partner: Partner, query: str = "") -> dict[str, Any]:
    resp = client.get(f"/v1/partner/events{query}", headers=partner.headers)
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def types(client: FlaskClient, partner: Partner) -> list[str]:
    return [e["type"] for e in feed(client, partner)["items"]]


def bidx_of(app: Flask, id_number: str) -> bytes:
    deps = app.extensions["xinyi"]
    return bytes(deps.bidx(id_number, kind="id_number"))


def written(app: Flask) -> tuple[int, ...]:
    return tuple(count(app, m) for m in (WebhookEndpoint, PartnerEvent, WebhookDelivery,
                                         OutboxEvent))


# ---- endpoints --------------------------------------------------------------------------------

def test_an_endpoint_is_created_read_changed_and_deleted(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    created = endpoint(client, w.a, event_types=["list.black_added", "consent.granted"],
                       description="借阅系统")
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert created["event_types"] == ["consent.granted", "list.black_added"]
    assert created["enabled"] is True and created["rate_limit_per_s"] == 20
    url = f"/v1/partner/webhook-endpoints/{created['id']}"

    shown = client.get(url, headers=w.a.headers).get_json()
    assert "secret" not in shown and shown["description"] == "借阅系统"
    listing = client.get("/v1/partner/webhook-endpoints", headers=w.a.headers).get_json()
    assert [e["id"] for e in listing["items"]] == [created["id"]]
    assert listing["meta"]["total"] == 1 and "secret" not in listing["items"][0]

    changed = client.patch(url, headers=w.a.headers, json={
        "url": "http://127.0.0.1:9/other", "event_types": [], "rate_limit_per_s": 1000})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["url"] == "http://127.0.0.1:9/other"
    assert changed.get_json()["event_types"] == []
    assert changed.get_json()["rate_limit_per_s"] == 1000

    assert client.delete(url, headers=w.a.headers).status_code == 204
    assert client.get(url, headers=w.a.headers).status_code == 404
    listing = client.get("/v1/partner/webhook-endpoints", headers=w.a.headers).get_json()
    assert listing["meta"]["total"] == 0
    assert count(app, WebhookEndpoint, WebhookEndpoint.deleted_at.is_not(None)) == 1


def test_the_secret_is_stored_encrypted_and_never_shown_again(app: Flask,
                                                              client: FlaskClient) -> None:
    w = world(app, client)
    created = endpoint(client, w.a)
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        row = s.get(WebhookEndpoint, uuid.UUID(created["id"]))
        assert row is not None
        raw = base64.b64decode(created["secret"][6:])
        assert created["secret"].encode() not in row.secret_enc and raw not in row.secret_enc
        assert deps.cipher.decrypt(row.secret_enc, context=SECRET_CONTEXT) == created["secret"]
    for resp in (client.get(f"/v1/partner/webhook-endpoints/{created['id']}",
                            headers=w.a.headers),
                 client.get("/v1/partner/webhook-endpoints", headers=w.a.headers)):
        assert created["secret"] not in resp.get_data(as_text=True)


def test_rotation_answers_a_new_secret_and_keeps_the_old_one_signing_for_a_day(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    created = endpoint(client, w.a)
    resp = client.post(f"/v1/partner/webhook-endpoints/{created['id']}/rotate-secret",
                       headers=w.a.headers)
    assert resp.status_code == 200, resp.get_json()
    rotated = resp.get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    until = datetime.fromisoformat(rotated["previous_secret_until"])
    assert timedelta(hours=23, minutes=59) < until - datetime.now(UTC) <= timedelta(hours=24)
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        row = s.get(WebhookEndpoint, uuid.UUID(created["id"]))
        assert row is not None
        now = datetime.now(UTC)
        assert signing_secrets(deps, row, now) == [rotated["secret"], created["secret"]]
        assert signing_secrets(deps, row, now + timedelta(hours=25)) == [rotated["secret"]]


def test_a_partner_sees_and_changes_only_its_own_endpoints(app: Flask,
                                                          client: FlaskClient) -> None:
    w = world(app, client)
    created = endpoint(client, w.a)
    url = f"/v1/partner/webhook-endpoints/{created['id']}"
    before = written(app)
    for method, path, body in (("GET", url, None), ("PATCH", url, {"enabled": False}),
                               ("DELETE", url, None), ("POST", url + "/rotate-secret", None),
                               ("POST", url + "/test", None)):
        resp = client.open(path, method=method, json=body, headers=w.b.headers)
        assert resp.status_code == 404, (method, path, resp.get_json())
        assert resp.get_json()["code"] == "not_found"
    listing = client.get("/v1/partner/webhook-endpoints", headers=w.b.headers).get_json()
    assert listing["meta"]["total"] == 0
    assert written(app) == before
    shown = client.get(url, headers=w.a.headers).get_json()
    assert shown["enabled"] is True and shown["previous_secret_until"] is None


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"url": URL, "event_types": ["list.black_added", "list.purple_added"]}, "event_types.1",
     "validation_error"),
    ({"url": URL, "rate_limit_per_s": 0}, "rate_limit_per_s", "validation_error"),
    ({"url": URL, "rate_limit_per_s": 1001}, "rate_limit_per_s", "validation_error"),
    ({"url": URL, "enabled": 1}, "enabled", "validation_error"),
    ({"url": URL, "secret": "whsec_mine"}, "secret", "validation_error"),
    ({"url": "ftp://example.org/hooks"}, "url", "webhook_url_refused"),
    ({"url": "http://user:pw@example.org/hooks"}, "url", "webhook_url_refused"),
    ({"url": "not a url"}, "url", "webhook_url_refused"),
    ({}, "url", "validation_error"),
])
def test_bad_endpoint_input_is_refused_naming_the_field_and_changes_nothing(
        app: Flask, client: FlaskClient, body: dict[str, Any], field: str, code: str) -> None:
    w = world(app, client)
    before = written(app)
    resp = client.post("/v1/partner/webhook-endpoints", headers=w.a.headers, json=body)
    assert resp.status_code == 422, resp.get_json()
    problem = resp.get_json()
    assert problem["code"] == code and field in {e["field"] for e in problem["errors"]}
    assert written(app) == before


def test_a_bad_change_is_refused_and_changes_nothing(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    created = endpoint(client, w.a)
    url = f"/v1/partner/webhook-endpoints/{created['id']}"
    for body in ({}, {"event_types": ["nope"]}, {"url": "gopher://x"},
                 {"rate_limit_per_s": 5000}, {"id": str(uuid.uuid4())}):
        resp = client.patch(url, headers=w.a.headers, json=body)
        assert resp.status_code == 422, (body, resp.get_json())
    assert client.get(url, headers=w.a.headers).get_json() == {
        k: v for k, v in created.items() if k != "secret"}


def test_private_and_plain_http_urls_are_refused_when_the_settings_say_so(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    deps = app.extensions["xinyi"]
    deps.settings = deps.settings.with_overrides(webhook_allow_private=False)
    for url in ("http://127.0.0.1/hooks", "http://10.0.0.8/hooks", "http://[::1]/hooks",
                "http://localhost/hooks"):
        resp = client.post("/v1/partner/webhook-endpoints", headers=w.a.headers,
                           json={"url": url})
        assert resp.status_code == 422 and resp.get_json()["code"] == "webhook_url_refused"
    deps.settings = deps.settings.with_overrides(webhook_require_https=True)
    resp = client.post("/v1/partner/webhook-endpoints", headers=w.a.headers,
                       json={"url": "http://hooks.example.org/x"})
    assert resp.status_code == 422 and resp.get_json()["code"] == "webhook_url_refused"
    assert count(app, WebhookEndpoint) == 0
    endpoint(client, w.a, url="https://hooks.example.org/x")


def test_a_partner_may_have_a_bounded_number_of_endpoints(app: Flask,
                                                          client: FlaskClient) -> None:
    w = world(app, client)
    for _ in range(MAX_ENDPOINTS):
        endpoint(client, w.a)
    resp = client.post("/v1/partner/webhook-endpoints", headers=w.a.headers, json={"url": URL})
    assert resp.status_code == 409 and resp.get_json()["code"] == "too_many_webhook_endpoints"
    assert count(app, WebhookEndpoint) == MAX_ENDPOINTS
    endpoint(client, w.b)  # the limit is per partner


# ---- dispatcher -------------------------------------------------------------------------------

def test_consent_events_reach_only_their_partner(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    ep_a, ep_b = endpoint(client, w.a), endpoint(client, w.b)
    consent = grant(client, w, w.a)
    assert client.post(f"/v1/me/consents/{consent['id']}/revoke",
                       headers=w.me).status_code == 200
    assert dispatch(app) == 2
    events = feed(client, w.a)["items"]
    assert [e["type"] for e in events] == ["consent.granted", "consent.revoked"]
    assert [e["seq"] for e in events] == [1, 2]
    subject = pseudonym(app.extensions["xinyi"], uuid.UUID(w.a.id),
                        bidx_of(app, w.citizen["id_number"]))
    assert events[0]["data"] == {
        "subject": subject, "consent_id": consent["id"], "scope": "report.summary",
        "granted_at": events[0]["data"]["granted_at"], "request_id": None,
        "expires_at": events[0]["data"]["expires_at"]}
    assert events[1]["data"]["consent_id"] == consent["id"]
    assert feed(client, w.b)["items"] == []
    assert count(app, WebhookDelivery, WebhookDelivery.endpoint_id == uuid.UUID(ep_a["id"]),
                 WebhookDelivery.status == "pending") == 2
    assert count(app, WebhookDelivery, WebhookDelivery.endpoint_id == uuid.UUID(ep_b["id"])) == 0
    # Not data about the citizen: no access-log entry for a consent event.
    assert count(app, AccessLogEntry, AccessLogEntry.action == "webhook") == 0


def test_list_tier_and_record_events_reach_only_partners_with_a_live_consent(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    grant(client, w, w.a)
    idn = w.citizen["id_number"]
    record_id = push(client, w.provider, item(idn, "r-1", code=BLACK))[0]["id"]
    corrected = client.patch(f"/v1/provider/records/{record_id}", headers=w.provider,
                             json={"summary": "更正后的摘要"})
    assert corrected.status_code == 200
    dispatch(app)
    events = feed(client, w.a)["items"]
    got = [e["type"] for e in events]
    assert got[0] == "consent.granted"
    assert sorted(got[1:]) == ["citizen.tier_changed", "list.black_added", "record.corrected"]
    by_type = {e["type"]: e["data"] for e in events}
    subject = by_type["consent.granted"]["subject"]
    assert by_type["list.black_added"] == {"subject": subject, "record_id": record_id,
                                           "catalogue_code": BLACK}
    assert by_type["record.corrected"] == {"subject": subject, "record_id": record_id,
                                           "catalogue_code": BLACK}
    tier = by_type["citizen.tier_changed"]
    assert set(tier) == {"subject", "from", "to"} and tier["from"] == "A" and tier["to"] != "A"
    assert feed(client, w.b)["items"] == []
    body = json.dumps(events, ensure_ascii=False)
    assert idn not in body and w.citizen["phone"] not in body and w.citizen["name"] not in body


def test_data_events_are_reads_the_citizen_sees_in_their_query_log(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    consent = grant(client, w, w.a)
    push(client, w.provider, item(w.citizen["id_number"], "r-1", code=BLACK))
    dispatch(app)
    queries = client.get("/v1/me/queries", headers=w.me).get_json()["items"]
    webhooks = sorted((q["scope"], q["who"]["name"], q["consent_id"]) for q in queries
                      if q["action"] == "webhook")
    assert webhooks == [("citizen.tier_changed", w.a.name, consent["id"]),
                        ("list.black_added", w.a.name, consent["id"])]
    # Both appended in one batch, then sealed into one chain: it verifies.
    from tests.factories import seal_and_verify

    report = seal_and_verify(app)
    assert report.problem is None and report.entries_checked >= 2


def test_a_partner_told_of_an_entry_learns_when_it_ends_even_after_its_consent(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    consent = grant(client, w, w.a)
    record_id = push(client, w.provider, item(w.citizen["id_number"], "r-1", code=BLACK))[0]["id"]
    dispatch(app)
    assert count(app, WebhookWatch) == 1
    assert client.post(f"/v1/me/consents/{consent['id']}/revoke",
                       headers=w.me).status_code == 200
    grant(client, w, w.b)  # B's consent starts after the entry: it hears of the end too
    assert client.delete(f"/v1/provider/records/{record_id}",
                         headers=w.provider).status_code == 204
    dispatch(app)
    a_types = types(client, w.a)
    assert a_types[-2:] == ["consent.revoked", "list.black_removed"]
    assert "citizen.tier_changed" not in a_types[a_types.index("consent.revoked"):]
    removed = feed(client, w.a)["items"][-1]["data"]
    assert removed["record_id"] == record_id and removed["reason"] == "withdrawn"
    b_types = types(client, w.b)
    assert "list.black_removed" in b_types and "list.black_added" not in b_types
    assert count(app, WebhookWatch) == 0
    log = client.get("/v1/me/queries", headers=w.me).get_json()["items"]
    removal = [q for q in log
               if q["scope"] == "list.black_removed" and q["who"]["name"] == w.a.name]
    assert len(removal) == 1 and removal[0]["consent_id"] is None


def test_seq_increases_by_one_across_batches_and_the_feed_pages_with_after(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    ep = endpoint(client, w.a)
    for _ in range(7):
        resp = client.post(f"/v1/partner/webhook-endpoints/{ep['id']}/test",
                           headers=w.a.headers)
        assert resp.status_code == 202 and resp.get_json()["type"] == "webhook.test"
    grant(client, w, w.b)
    assert dispatch(app, batch=3) == 8
    seqs = [e["seq"] for e in feed(client, w.a, "?limit=500")["items"]]
    assert seqs == list(range(1, 8))
    page = feed(client, w.a, "?after=2&limit=3")
    assert [e["seq"] for e in page["items"]] == [3, 4, 5] and page["next_after"] == 5
    page = feed(client, w.a, f"?after={page['next_after']}&limit=3")
    assert [e["seq"] for e in page["items"]] == [6, 7] and page["next_after"] == 7
    page = feed(client, w.a, "?after=7")
    assert page == {"items": [], "next_after": 7}
    assert [e["seq"] for e in feed(client, w.b)["items"]] == [1]
    for query in ("?limit=0", "?limit=501", "?after=-1", "?after=x", "?cursor=1"):
        resp = client.get(f"/v1/partner/events{query}", headers=w.a.headers)
        assert resp.status_code == 422, query


def test_the_feed_and_the_webhook_carry_the_same_message(app: Flask,
                                                         client: FlaskClient) -> None:
    w = world(app, client)
    grant(client, w, w.a)
    dispatch(app)
    [item_] = feed(client, w.a)["items"]
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        event = s.scalars(select(PartnerEvent)).one()
        body = json.loads(message_body(event))
    assert body == {k: v for k, v in item_.items() if k != "created_at"}
    assert body["id"] == "msg_" + event.id.hex and body["type"] == "consent.granted"
    assert list(body)[:3] == ["type", "timestamp", "data"]
    assert datetime.fromisoformat(body["timestamp"]) == datetime.fromisoformat(
        item_["created_at"])


def test_dispatching_again_creates_nothing_twice(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    endpoint(client, w.a)
    grant(client, w, w.a)
    push(client, w.provider, item(w.citizen["id_number"], "r-1", code=BLACK))
    dispatch(app)
    first = (count(app, PartnerEvent), count(app, WebhookDelivery), count(app, AccessLogEntry))
    assert dispatch(app) == 0
    # Even an event handed back to the outbox reaches no one a second time.
    deps = app.extensions["xinyi"]
    with UnitOfWork(deps.db.sessions) as uow:
        uow.session.execute(update(OutboxEvent).values(published_at=None))
        uow.commit()
    assert dispatch(app) == count(app, OutboxEvent)
    assert (count(app, PartnerEvent), count(app, WebhookDelivery),
            count(app, AccessLogEntry)) == first
    assert [e["seq"] for e in feed(client, w.a)["items"]] == list(range(1, first[0] + 1))


def test_internal_events_are_published_without_reaching_anyone(app: Flask,
                                                               client: FlaskClient) -> None:
    w = world(app, client)
    grant(client, w, w.a)
    deps = app.extensions["xinyi"]
    with UnitOfWork(deps.db.sessions) as uow:
        now = deps.clock()
        emit(uow.session, "something.internal", {"x": 1}, now=now)
        emit(uow.session, "something.internal", {"x": 1}, now=now,
             subject_bidx=bidx_of(app, w.citizen["id_number"]))
        uow.commit()
    dispatch(app)
    assert types(client, w.a) == ["consent.granted"]
    assert count(app, OutboxEvent, OutboxEvent.published_at.is_(None)) == 0


def test_a_test_event_goes_to_its_endpoint_only(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    one = endpoint(client, w.a, event_types=["list.black_added"])
    endpoint(client, w.a)
    assert client.post(f"/v1/partner/webhook-endpoints/{one['id']}/test",
                       headers=w.a.headers).status_code == 202
    dispatch(app)
    [event] = feed(client, w.a)["items"]
    assert event["type"] == "webhook.test" and event["data"] == {"endpoint_id": one["id"]}
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        targets = list(s.scalars(select(WebhookDelivery.endpoint_id)))
    assert targets == [uuid.UUID(one["id"])]


def test_event_types_filter_deliveries_but_not_the_feed(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    only_lists = endpoint(client, w.a, event_types=["list.black_added"])
    everything = endpoint(client, w.a)
    grant(client, w, w.a)
    push(client, w.provider, item(w.citizen["id_number"], "r-1", code=BLACK))
    dispatch(app)
    assert len(types(client, w.a)) == 3
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        rows = s.execute(select(WebhookDelivery.endpoint_id, PartnerEvent.type)
                         .join(PartnerEvent, PartnerEvent.id == WebhookDelivery.event_id)).all()
    assert sorted(t for e, t in rows if e == uuid.UUID(only_lists["id"])) == ["list.black_added"]
    assert len([t for e, t in rows if e == uuid.UUID(everything["id"])]) == 3


def test_a_disabled_endpoint_keeps_its_events_and_gets_them_when_enabled(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    ep = endpoint(client, w.a)
    url = f"/v1/partner/webhook-endpoints/{ep['id']}"
    grant(client, w, w.a)
    dispatch(app)  # one pending delivery
    off = client.patch(url, headers=w.a.headers, json={"enabled": False}).get_json()
    assert off["enabled"] is False and off["disabled_reason"] == "partner"
    resp = client.post(url + "/test", headers=w.a.headers)
    assert resp.status_code == 409 and resp.get_json()["code"] == "webhook_endpoint_disabled"
    push(client, w.provider, item(w.citizen["id_number"], "r-1", code=BLACK))
    dispatch(app)
    statuses = [s for (s,) in _deliveries(app)]
    assert statuses == ["paused"] * 3
    on = client.patch(url, headers=w.a.headers, json={"enabled": True}).get_json()
    assert on["enabled"] is True and on["disabled_reason"] is None
    rows = _deliveries(app, WebhookDelivery.next_attempt_at)
    assert [s for s, _ in rows] == ["pending"] * 3
    assert all(due is not None and due <= datetime.now(UTC) for _, due in rows)


def _deliveries(app: Flask, *extra: Any) -> list[Any]:
    with app.extensions["xinyi"].db.session() as s:
        return list(s.execute(select(WebhookDelivery.status, *extra)
                              .join(PartnerEvent, PartnerEvent.id == WebhookDelivery.event_id)
                              .order_by(PartnerEvent.seq)))


def test_a_deleted_endpoint_gets_nothing_more(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    ep = endpoint(client, w.a)
    grant(client, w, w.a)
    dispatch(app)
    assert client.delete(f"/v1/partner/webhook-endpoints/{ep['id']}",
                         headers=w.a.headers).status_code == 204
    assert [s for (s,) in _deliveries(app)] == ["cancelled"]
    push(client, w.provider, item(w.citizen["id_number"], "r-1", code=BLACK))
    dispatch(app)
    assert count(app, WebhookDelivery) == 1 and len(types(client, w.a)) == 3


def test_a_business_change_that_rolls_back_leaves_no_event(app: Flask,
                                                           client: FlaskClient) -> None:
    from xinyi.auth.principal import Principal
    from xinyi.records.models import CreditRecord
    from xinyi.records.service import correct_record

    w = world(app, client)
    [created] = push(client, w.provider, item(w.citizen["id_number"], "r-1", code=BLACK))
    before = count(app, OutboxEvent)
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        record = s.get(CreditRecord, uuid.UUID(created["id"]))
        assert record is not None
        owner = Principal(kind="provider", id=record.provider_id)
    with UnitOfWork(deps.db.sessions) as uow:
        correct_record(uow.session, deps, owner, uuid.UUID(created["id"]),
                       {"catalogue_code": "blood.donation"})
        uow.session.flush()
        assert uow.session.scalar(select(func.count()).select_from(OutboxEvent)) > before
        # leaving without commit: rolled back
    assert count(app, OutboxEvent) == before
    dispatch(app)
    assert count(app, PartnerEvent) == 0


def test_two_dispatchers_at_once_never_write_twice(app: Flask) -> None:
    """On PostgreSQL: while one dispatcher's batch is open, another finds the lock taken and
    does nothing; after the first commits, nothing is left to do."""
    deps = app.extensions["xinyi"]
    if not deps.db.url.startswith("postgresql"):
        pytest.skip("SQLite has a single process")
    engine = create_engine(deps.db.url, pool_size=3)
    sessions = sessionmaker(engine)
    ids: list[uuid.UUID] = []
    try:
        with UnitOfWork(sessions) as uow:
            now = datetime.now(UTC)
            events = [emit(uow.session, "something.internal", {"n": n}, now=now)
                      for n in range(5)]
            uow.session.flush()
            ids = [e.id for e in events]
            uow.commit()
        first_open, release = threading.Event(), threading.Event()
        results: dict[str, Any] = {}

        def first() -> None:
            with UnitOfWork(sessions) as uow:
                results["first"] = dispatch_batch(uow.session, deps)
                first_open.set()
                release.wait(timeout=10)
                uow.commit()

        thread = threading.Thread(target=first)
        thread.start()
        assert first_open.wait(timeout=10)
        with UnitOfWork(sessions) as uow:
            results["second"] = dispatch_batch(uow.session, deps)
            uow.commit()
        release.set()
        thread.join(timeout=10)
        with UnitOfWork(sessions) as uow:
            results["third"] = dispatch_batch(uow.session, deps)
            published = uow.session.scalar(select(func.count()).select_from(OutboxEvent).where(
                OutboxEvent.id.in_(ids), OutboxEvent.published_at.is_not(None)))
            uow.commit()
        assert results["first"] == 5 and results["second"] is None and results["third"] == 0
        assert published == 5
    finally:
        with UnitOfWork(sessions) as uow:
            uow.session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(ids)))
            uow.commit()
        engine.dispose()


def test_a_bulk_import_is_dispatched_in_a_few_batches(app: Flask, client: FlaskClient,
                                                      tmp_path: Any) -> None:
    """Thousands of list.entered rows from the importer: dispatched set-based; only the
    partner holding a consent hears of its citizen."""
    from tests.factories import valid_id_number
    from tests.integration.test_import import new_provider, row, run_import, write_csv

    w = world(app, client)
    grant(client, w, w.a)
    _, provider_id = new_provider(app, client)
    rows = [row(f"b-{n}", valid_id_number(6000 + n), BLACK) for n in range(300)]
    rows.append(row("mine", w.citizen["id_number"], BLACK))
    summary = run_import(app, provider_id, write_csv(tmp_path / "bulk.csv", rows),
                         batch_size=100)
    assert summary.created == 301
    assert dispatch(app, batch=250) == count(app, OutboxEvent)
    assert count(app, OutboxEvent, OutboxEvent.published_at.is_(None)) == 0
    assert sorted(types(client, w.a)) == ["citizen.tier_changed", "consent.granted",
                                          "list.black_added"]
    assert types(client, w.b) == []


# ---- catalogue --------------------------------------------------------------------------------

def test_the_catalogue_lists_every_type_with_its_schema(client: FlaskClient) -> None:
    resp = client.get("/v1/webhook-event-types")
    assert resp.status_code == 200
    items = resp.get_json()["items"]
    assert [t["name"] for t in items] == [t.name for t in catalogue.EVENT_TYPES]
    assert {"webhook.test", "endpoint.disabled", "consent.granted", "consent.revoked",
            "citizen.tier_changed", "list.red_added", "list.red_removed", "list.black_added",
            "list.black_removed", "record.corrected", "record.repaired"} <= {
        t["name"] for t in items}
    black = next(t for t in items if t["name"] == "list.black_added")
    assert black["carries_data"] is True and black["version"] == 1
    assert set(black["schema"]["properties"]) == {"subject", "record_id", "catalogue_code"}
    assert black["schema"]["additionalProperties"] is False
    tier = next(t for t in items if t["name"] == "citizen.tier_changed")
    assert set(tier["schema"]["properties"]) == {"subject", "from", "to"}


def test_the_openapi_document_has_a_webhooks_section_with_every_type(
        client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    hooks = spec["webhooks"]
    assert set(hooks) == {t.name for t in catalogue.EVENT_TYPES}
    post = hooks["list.black_added"]["post"]
    assert {p["name"] for p in post["parameters"] if p["in"] == "header"} == {
        "webhook-id", "webhook-timestamp", "webhook-signature"}
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["type"]["const"] == "list.black_added"
    assert set(body["required"]) == {"type", "timestamp", "data", "seq", "id", "version"}


def test_payloads_carry_only_the_declared_fields() -> None:
    entry = catalogue.for_topic("list.entered", {"list": "black"})
    assert entry is not None and entry.name == "list.black_added"
    data = catalogue.public_data(entry, {"list": "black", "record_id": str(uuid.UUID(int=1)),
                                         "catalogue_code": BLACK, "id_number": "leak"},
                                 "ps_abc")
    assert data == {"subject": "ps_abc", "record_id": str(uuid.UUID(int=1)),
                    "catalogue_code": BLACK}
    assert catalogue.for_topic("list.entered", {"list": "purple"}) is None
    assert catalogue.for_topic("nothing.public", {}) is None


# ---- retention --------------------------------------------------------------------------------

def test_retention_purges_only_old_delivered_events(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    ep = endpoint(client, w.a)
    for _ in range(5):
        client.post(f"/v1/partner/webhook-endpoints/{ep['id']}/test", headers=w.a.headers)
    deps = app.extensions["xinyi"]
    dispatch(app)
    now = datetime.now(UTC)
    with UnitOfWork(deps.db.sessions) as uow:
        s = uow.session
        rows = list(s.execute(select(WebhookDelivery.id, PartnerEvent.id, PartnerEvent.seq)
                              .join(PartnerEvent, PartnerEvent.id == WebhookDelivery.event_id)
                              .order_by(PartnerEvent.seq)))
        statuses = ["delivered", "delivered", "pending", "paused", "dead"]
        for (delivery_id, _, _), status in zip(rows, statuses, strict=True):
            s.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                      .values(status=status))
            s.add(WebhookAttempt(delivery_id=delivery_id, number=1, started_at=now,
                                 duration_ms=3, status_code=200, response_body=""))
        # all but the second delivered one are old
        old = now - timedelta(days=31)
        s.execute(update(PartnerEvent).where(PartnerEvent.seq != 2).values(created_at=old))
        s.execute(update(OutboxEvent).values(published_at=old))
        emit(s, "something.internal", {}, now=old)  # old but never dispatched: kept
        uow.commit()
    outbox_before = count(app, OutboxEvent)
    assert purge_delivered(deps) > 0
    assert [e["seq"] for e in feed(client, w.a)["items"]] == [2, 3, 4, 5]
    assert count(app, WebhookAttempt) == 4 and count(app, WebhookDelivery) == 4
    # Outbox rows: the one feeding seq 1 went; those still referred to, and the undispatched
    # one, stay.
    assert count(app, OutboxEvent) == outbox_before - 1
    assert count(app, OutboxEvent, OutboxEvent.published_at.is_(None)) == 1
    assert purge_delivered(deps) == 0


def test_endpoint_disabled_goes_to_the_partners_other_endpoints(app: Flask,
                                                                client: FlaskClient) -> None:
    w = world(app, client)
    gone, other = endpoint(client, w.a), endpoint(client, w.a)
    endpoint(client, w.a, event_types=["consent.granted"])  # not subscribed to it
    deps = app.extensions["xinyi"]
    with UnitOfWork(deps.db.sessions) as uow:
        now = deps.clock()
        emit(uow.session, "endpoint.disabled", {"endpoint_id": gone["id"], "reason": "gone",
                                                "disabled_at": now.isoformat()},
             now=now, partner_id=uuid.UUID(w.a.id))
        uow.commit()
    dispatch(app)
    [event] = feed(client, w.a)["items"]
    assert event["type"] == "endpoint.disabled" and event["data"]["reason"] == "gone"
    with deps.db.session() as s:
        targets = list(s.scalars(select(WebhookDelivery.endpoint_id)))
    assert targets == [uuid.UUID(other["id"])]


def test_set_based_recomputes_emit_tier_changes_only_where_a_tier_changes(
        app: Flask, client: FlaskClient) -> None:
    """The importer's recompute (a SELECT of subjects) and the full one (`xinyi scores
    recompute`) write citizen.tier_changed in one INSERT … SELECT, from the stored tier."""
    from xinyi.scoring.models import CreditScore
    from xinyi.scoring.service import recompute_all, recompute_subjects
    from xinyi.subjects.service import subjects_table
    from xinyi.timeutil import china_today

    w = world(app, client)
    other = register_citizen(client)
    mine, theirs = (bidx_of(app, c["id_number"]) for c in (w.citizen, other))
    deps = app.extensions["xinyi"]
    tier_events = OutboxEvent.topic == "citizen.tier_changed"
    for recompute in (
            lambda s, now: recompute_subjects(s, select(subjects_table().c.bidx), now=now,
                                              today=china_today(now)),
            lambda s, now: recompute_all(s, now=now, today=china_today(now))):
        before = count(app, OutboxEvent, tier_events)
        with UnitOfWork(deps.db.sessions) as uow:
            uow.session.execute(update(CreditScore).where(CreditScore.subject_bidx == mine)
                                .values(tier="AAA"))
            recompute(uow.session, deps.clock())
            uow.commit()
        assert count(app, OutboxEvent, tier_events) == before + 1
        with deps.db.session() as s:
            event = s.scalars(select(OutboxEvent).where(tier_events)
                              .order_by(OutboxEvent.created_at.desc())).first()
            assert event is not None and event.subject_bidx == mine
            assert event.payload == {"from": "AAA", "to": "A"}
            assert s.scalar(select(CreditScore.tier)
                            .where(CreditScore.subject_bidx == theirs)) == "A"


def test_the_hourly_tree_head_goes_to_the_partners_who_subscribe_to_it(
        app: Flask, client: FlaskClient) -> None:
    from datetime import UTC, datetime, timedelta

    from xinyi.audit.sealer import latest_head, seal_all
    from xinyi.audit.service import Access, append
    from xinyi.subjects.models import Subject

    w = world(app, client)
    endpoint(client, w.a, event_types=["transparency.tree_head"])
    endpoint(client, w.b, event_types=["consent.granted"])
    deps = app.extensions["xinyi"]
    start = datetime(2026, 12, 1, 9, 0, 5, tzinfo=UTC)

    def read_and_seal(at: datetime) -> None:
        deps.clock = lambda: at
        with deps.db.session() as s:
            bidx = uuid.uuid4().bytes * 2
            s.add(Subject(bidx=bidx, id_number_enc=b"x" * 40, first_seen_at=at))
            s.flush()
            append(s, Access(bidx, "staff", "s-1", "复核员", "review", "report.full", "复核"),
                   now=at)
            s.commit()
        seal_all(deps)
        dispatch(app)

    read_and_seal(start)
    [sent] = feed(client, w.a)["items"]
    with deps.db.session() as s:
        head = latest_head(s)
        assert head is not None
        assert sent["type"] == "transparency.tree_head" and sent["data"] == {
            "tree_size": head.tree_size, "root_hash": head.root_hash.hex(),
            "timestamp": head.timestamp, "kid": head.kid, "signature": head.signature.hex()}
    assert "transparency.tree_head" not in types(client, w.b)
    read_and_seal(start + timedelta(minutes=30))  # a new head, in the same hour: not sent
    assert len(feed(client, w.a)["items"]) == 1
    read_and_seal(start + timedelta(hours=1))
    assert [e["data"]["tree_size"] for e in feed(client, w.a)["items"]] == [
        head.tree_size, head.tree_size + 2]
    assert "transparency.tree_head" not in types(client, w.b)
