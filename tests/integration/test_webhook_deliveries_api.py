"""The receiver's side of delivery: the delivery log with every attempt, replay (same
webhook-id, due now, whatever the status), recover, and the staff's dead-letter list. A
partner sees and changes only its own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import api_client_headers, staff_headers
from xinyi.uow import UnitOfWork
from xinyi.webhooks.models import PartnerEvent, WebhookAttempt, WebhookDelivery


def _partner(client: FlaskClient, operator: dict[str, str]) -> tuple[dict[str, str], str]:
    headers, _created = api_client_headers(client, operator, "partners")
    resp = client.post("/v1/partner/webhook-endpoints", headers=headers,
                       json={"url": "https://hooks.example.com/in?token=abc"})
    assert resp.status_code == 201, resp.get_json()
    return headers, resp.get_json()["id"]


def _delivery(app: Flask, endpoint_id: str, *, status: str, attempts: int = 0,
              event_type: str = "webhook.test", created: datetime | None = None,
              answers: tuple[int, ...] = ()) -> tuple[str, str]:
    """A feed event with one delivery to ``endpoint_id`` that had these ``answers``."""
    deps = app.extensions["xinyi"]
    now = created or deps.clock()
    with UnitOfWork(deps.db.sessions) as uow:
        s = uow.session
        from xinyi.webhooks.models import WebhookEndpoint

        endpoint = s.get(WebhookEndpoint, uuid.UUID(endpoint_id))
        seq = len(list(s.query(PartnerEvent).filter_by(partner_id=endpoint.partner_id))) + 1
        event = PartnerEvent(partner_id=endpoint.partner_id, seq=seq, type=event_type,
                             version=1, payload={"endpoint_id": endpoint_id}, created_at=now)
        s.add(event)
        s.flush()
        d = WebhookDelivery(event_id=event.id, endpoint_id=endpoint.id, seq=seq, status=status,
                            attempts=len(answers) or attempts,
                            next_attempt_at=now if status == "pending" else None,
                            last_status_code=answers[-1] if answers else None, created_at=now)
        s.add(d)
        s.flush()
        for n, code in enumerate(answers, start=1):
            s.add(WebhookAttempt(delivery_id=d.id, number=n, started_at=now + timedelta(
                seconds=n), duration_ms=12, status_code=code, error=None,
                response_body=f"answer {n}"))
        uow.commit()
        return str(d.id), f"msg_{event.id.hex}"


def test_the_delivery_log_lists_every_attempt_with_filters(app: Flask,
                                                           client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    headers, endpoint = _partner(client, operator)
    dead, dead_msg = _delivery(app, endpoint, status="dead", answers=(500, 500, 503))
    _delivery(app, endpoint, status="delivered", answers=(200,), event_type="consent.granted")
    resp = client.get("/v1/partner/webhook-deliveries", headers=headers)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["meta"]["total"] == 2
    by_id = {d["id"]: d for d in body["items"]}
    item = by_id[dead]
    assert (item["status"], item["message_id"], item["attempt_count"]) == ("dead", dead_msg, 3)
    assert [(a["number"], a["status_code"], a["response_body"]) for a in item["attempts"]] == [
        (1, 500, "answer 1"), (2, 500, "answer 2"), (3, 503, "answer 3")]
    for query, expected in [({"status": "dead"}, 1), ({"event_type": "consent.granted"}, 1),
                            ({"endpoint_id": endpoint}, 2),
                            ({"endpoint_id": str(uuid.uuid4())}, 0),
                            ({"since": (datetime.now(UTC) + timedelta(days=1)).isoformat()}, 0),
                            ({"since": "2020-01-01T00:00:00"}, 2)]:
        got = client.get("/v1/partner/webhook-deliveries", headers=headers, query_string=query)
        assert got.status_code == 200, (query, got.get_json())
        assert got.get_json()["meta"]["total"] == expected, query
    other, _ = _partner(client, operator)
    assert client.get("/v1/partner/webhook-deliveries", headers=other).get_json()["meta"][
        "total"] == 0


@pytest.mark.parametrize("query", [{"status": "lost"}, {"event_type": "nope"},
                                   {"since": "yesterday"}, {"endpoint_id": "x"},
                                   {"page_size": "0"}, {"colour": "red"}])
def test_bad_filters_are_refused(app: Flask, client: FlaskClient, query: dict[str, str]) -> None:
    headers, _ = _partner(client, staff_headers(app, client, "operator"))
    resp = client.get("/v1/partner/webhook-deliveries", headers=headers, query_string=query)
    assert resp.status_code == 422, resp.get_json()


@pytest.mark.parametrize("status", ["dead", "delivered", "pending"])
def test_replay_sends_again_now_with_the_same_webhook_id(app: Flask, client: FlaskClient,
                                                         status: str) -> None:
    headers, endpoint = _partner(client, staff_headers(app, client, "operator"))
    delivery, msg = _delivery(app, endpoint, status=status, answers=(500,))
    resp = client.post(f"/v1/partner/webhook-deliveries/{delivery}/replay", headers=headers)
    assert resp.status_code == 202, resp.get_json()
    body = resp.get_json()
    assert (body["status"], body["message_id"]) == ("pending", msg)
    due = datetime.fromisoformat(body["next_attempt_at"])
    assert abs((due - app.extensions["xinyi"].clock()).total_seconds()) < 5


def test_replay_while_disabled_waits_paused(app: Flask, client: FlaskClient) -> None:
    headers, endpoint = _partner(client, staff_headers(app, client, "operator"))
    delivery, _ = _delivery(app, endpoint, status="dead", answers=(500,))
    assert client.patch(f"/v1/partner/webhook-endpoints/{endpoint}", headers=headers,
                        json={"enabled": False}).status_code == 200
    resp = client.post(f"/v1/partner/webhook-deliveries/{delivery}/replay", headers=headers)
    assert resp.status_code == 202 and resp.get_json()["status"] == "paused"


def test_another_partners_delivery_is_not_found(app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    _headers, endpoint = _partner(client, operator)
    other, other_endpoint = _partner(client, operator)
    delivery, _ = _delivery(app, endpoint, status="dead", answers=(500,))
    resp = client.post(f"/v1/partner/webhook-deliveries/{delivery}/replay", headers=other)
    assert resp.status_code == 404 and resp.get_json()["code"] == "not_found"
    resp = client.post(f"/v1/partner/webhook-endpoints/{endpoint}/recover", headers=other,
                       json={"since": "2020-01-01T00:00:00Z"})
    assert resp.status_code == 404
    listed = client.get("/v1/partner/webhook-deliveries", headers=_headers).get_json()
    assert [d["status"] for d in listed["items"]] == ["dead"]  # nothing changed
    del other_endpoint


def test_recover_requeues_dead_and_failed_deliveries_since(app: Flask,
                                                           client: FlaskClient) -> None:
    headers, endpoint = _partner(client, staff_headers(app, client, "operator"))
    now = app.extensions["xinyi"].clock()
    old, _ = _delivery(app, endpoint, status="dead", answers=(500,),
                       created=now - timedelta(days=3))
    recent, _ = _delivery(app, endpoint, status="dead", answers=(500,) * 8,
                          created=now - timedelta(hours=1))
    failing, _ = _delivery(app, endpoint, status="pending", answers=(500,),
                           created=now - timedelta(minutes=30))
    fine, _ = _delivery(app, endpoint, status="delivered", answers=(200,),
                        created=now - timedelta(minutes=10))
    since = (now - timedelta(days=1)).isoformat()
    resp = client.post(f"/v1/partner/webhook-endpoints/{endpoint}/recover", headers=headers,
                       json={"since": since})
    assert resp.status_code == 202, resp.get_json()
    assert resp.get_json()["requeued"] == 2
    items = {d["id"]: d for d in client.get("/v1/partner/webhook-deliveries",
                                             headers=headers).get_json()["items"]}
    assert items[old]["status"] == "dead"
    assert items[recent]["status"] == items[failing]["status"] == "pending"
    assert items[fine]["status"] == "delivered"
    future = client.post(f"/v1/partner/webhook-endpoints/{endpoint}/recover", headers=headers,
                         json={"since": (now + timedelta(days=1)).isoformat()})
    assert future.status_code == 422 and future.get_json()["errors"][0]["field"] == "since"
    missing = client.post(f"/v1/partner/webhook-endpoints/{endpoint}/recover", headers=headers,
                          json={})
    assert missing.status_code == 422


def test_staff_list_dead_letters_without_payloads(app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    headers, endpoint = _partner(client, operator)
    dead, msg = _delivery(app, endpoint, status="dead", answers=(500,) * 7 + (503,))
    _delivery(app, endpoint, status="delivered", answers=(200,))
    resp = client.get("/v1/admin/webhook-dead-letters", headers=operator)
    assert resp.status_code == 200
    body: dict[str, Any] = resp.get_json()
    assert body["meta"]["total"] == 1
    [item] = body["items"]
    assert (item["delivery_id"], item["message_id"], item["attempts"],
            item["last_status_code"], item["endpoint_id"]) == (dead, msg, 8, 503, endpoint)
    assert item["dead_since"] is not None
    assert not {"payload", "data", "response_body", "url"} & set(item)
    assert client.get("/v1/admin/webhook-dead-letters", headers=headers).status_code == 403
    auditor = staff_headers(app, client, "auditor")
    assert client.get("/v1/admin/webhook-dead-letters", headers=auditor).status_code == 403
