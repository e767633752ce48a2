"""A real business change reaches a partner's receiver: a citizen approves the partner's
consent request over HTTP against `xinyi serve` (PostgreSQL, Redis), a real `xinyi worker`
process dispatches and delivers, and a real HTTP receiver on 127.0.0.1 gets `consent.granted`,
signed (checked with the official `standardwebhooks` library), naming the citizen by the
partner's pseudonym only; the same event is in the partner's feed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import redis
import requests
from standardwebhooks import Webhook, WebhookVerificationError

from tests.factories import (
    CAPTURED_LOGS,
    SENSITIVE_VALUES,
    TEST_REDIS_URL,
    random_phone,
    valid_id_number,
)
from tests.servers import LiveServer, live_server
from tests.webhook_support import Receiver, wait_for

pytestmark = pytest.mark.e2e

XINYI = str(Path(sys.executable).with_name("xinyi"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    redis_url = os.environ.get("XINYI_TEST_E2E_REDIS_URL",
                               TEST_REDIS_URL.rsplit("/", 1)[0] + "/10")
    # Its Redis starts empty: another module's registrations and logins from 127.0.0.1 (the
    # walkthrough shares this database) must not count against this one's rate limits.
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    try:
        # The receiver listens on 127.0.0.1, which the SSRF guard refuses otherwise.
        with live_server(tmp_path_factory.mktemp("instance"), postgres_suffix="e2ehooks",
                         redis_url=redis_url, private_webhooks=True) as live:
            yield live
    finally:
        store.flushdb()
        store.close()


def _login(http: requests.Session, url: str, phone: str, password: str) -> dict[str, str]:
    tokens = http.post(f"{url}/v1/auth/login", json={"phone": phone, "password": password})
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    SENSITIVE_VALUES.update([body["access_token"], body["refresh_token"]])
    return {"Authorization": f"Bearer {body['access_token']}"}


def test_an_approved_consent_reaches_the_partners_receiver_signed(
        server: LiveServer, tmp_path: Path) -> None:
    url, http = server.url, requests.Session()
    operator_phone = random_phone()
    server.xinyi("staff", "create", "--phone", operator_phone, "--password", "operator-pass-1",
                 "--role", "operator")
    operator = _login(http, url, operator_phone, "operator-pass-1")
    provider = http.post(f"{url}/v1/admin/providers", headers=operator, json={
        "name": "市交通局", "catalogue_codes": ["*"]}).json()["api_key"]["api_key"]
    created = http.post(f"{url}/v1/admin/partners", headers=operator,
                        json={"name": "市图书馆", "kind": "library"}).json()
    library_key = created["api_key"]["api_key"]
    SENSITIVE_VALUES.update([provider, library_key])
    library = {"Authorization": f"Bearer {library_key}"}

    # A citizen with a record, known to the library by its pseudonym from a credential scan.
    idn, phone = valid_id_number(9101), random_phone()
    pushed = http.post(f"{url}/v1/provider/records:batch", headers={
        "Authorization": f"Bearer {provider}"}, json={"records": [{
            "ref": "e2e-hook-1", "id_number": idn, "catalogue_code": "blood.donation",
            "occurred_at": (date.today() - timedelta(days=3)).isoformat(),
            "summary": "无偿献血"}]})
    assert pushed.json()["results"][0]["status"] == "created"
    assert http.post(f"{url}/v1/auth/register", json={
        "phone": phone, "password": "citizen-pass-1", "name": "赵六",
        "id_number": idn}).status_code == 201
    me = _login(http, url, phone, "citizen-pass-1")
    [cred] = http.post(f"{url}/v1/me/credentials", json={}, headers=me).json()["items"]
    SENSITIVE_VALUES.update([cred["qr_payload"], cred["short_code"]])
    scanned = http.post(f"{url}/v1/partner/verifications", headers={
        **library, "Idempotency-Key": "e2e-hook-scan"},
        json={"credential": cred["qr_payload"], "benefit": "library.deposit_free"})
    assert scanned.status_code == 200, scanned.text
    subject = scanned.json()["subject"]

    with Receiver() as receiver:
        endpoint = http.post(f"{url}/v1/partner/webhook-endpoints", headers=library, json={
            "url": receiver.url, "event_types": ["consent.granted"]})
        assert endpoint.status_code == 201, endpoint.text
        secret = endpoint.json()["secret"]
        SENSITIVE_VALUES.add(secret)

        asked = http.post(f"{url}/v1/partner/consent-requests", headers=library, json={
            "subject": subject, "scope": "report.summary", "purpose": "免押金借阅资格核验",
            "expires_in": 30 * 86400})
        assert asked.status_code == 201, asked.text
        approved = http.post(f"{url}/v1/me/consent-requests/{asked.json()['id']}/approve",
                             headers=me)
        assert approved.status_code == 201, approved.text
        consent = approved.json()
        assert receiver.received == []  # nothing is sent from the request itself

        log_path = tmp_path / "worker.log"
        with log_path.open("wb") as err:
            worker = subprocess.Popen([XINYI, "worker", "--interval", "3600"], env=server.env,
                                      stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_for(lambda: len(receiver.received) >= 1, timeout=60)
        finally:
            if worker.poll() is None:
                worker.terminate()
            assert worker.wait(timeout=40) == 0
            CAPTURED_LOGS.extend(line for line in log_path.read_text(
                errors="replace").splitlines() if line.strip())

    [got] = receiver.received
    headers = {k.lower(): v for k, v in got.headers.items()}
    verified = Webhook(secret).verify(got.body, headers)  # raises unless signed with it
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUFB" * 8).verify(got.body, headers)
    message = json.loads(got.body)
    assert verified == message
    assert message["type"] == "consent.granted" and message["id"] == headers["webhook-id"]
    data = message["data"]
    assert data["subject"] == subject
    assert (data["consent_id"], data["request_id"], data["scope"]) == (
        consent["id"], asked.json()["id"], "report.summary")
    for personal in (idn, phone, "赵六"):
        assert personal not in got.body.decode()

    feed = http.get(f"{url}/v1/partner/events", headers=library, params={"after": 0})
    assert feed.status_code == 200, feed.text
    [event] = [e for e in feed.json()["items"] if e["type"] == "consent.granted"]
    assert (event["id"], event["seq"], event["data"]) == (message["id"], message["seq"], data)

    deliveries = http.get(f"{url}/v1/partner/webhook-deliveries", headers=library).json()
    [delivery] = deliveries["items"]
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [204]
