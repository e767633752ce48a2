"""The whole journey over real HTTP against `xinyi serve` (gunicorn) on PostgreSQL and Redis."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import requests

from tests.factories import SENSITIVE_VALUES, TEST_REDIS_URL, random_phone, valid_id_number
from tests.servers import live_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Its own Redis database (parallel runs set XINYI_TEST_E2E_REDIS_URL apart too).
    redis_url = os.environ.get("XINYI_TEST_E2E_REDIS_URL",
                               TEST_REDIS_URL.rsplit("/", 1)[0] + "/10")
    with live_server(tmp_path_factory.mktemp("instance"), postgres_suffix="e2e",
                     redis_url=redis_url, workers=2) as live:
        operator_phone = random_phone()
        live.xinyi("staff", "create", "--phone", operator_phone, "--password",
                   "operator-pass-1", "--role", "operator")
        os.environ["XINYI_E2E_OPERATOR_PHONE"] = operator_phone
        yield live.url


def test_citizen_journey_from_record_to_verified_benefit(server: str) -> None:
    http = requests.Session()
    op = http.post(f"{server}/v1/auth/login", json={
        "phone": os.environ["XINYI_E2E_OPERATOR_PHONE"], "password": "operator-pass-1"}).json()
    operator = {"Authorization": f"Bearer {op['access_token']}"}
    provider = http.post(f"{server}/v1/admin/providers", headers=operator, json={
        "name": "市交通局", "catalogue_codes": ["*"]}).json()["api_key"]["api_key"]
    library = http.post(f"{server}/v1/admin/partners", json={"name": "市图书馆", "kind": "library"},
                        headers=operator).json()["api_key"]["api_key"]
    SENSITIVE_VALUES.update([provider, library, op["access_token"]])

    idn, phone = valid_id_number(9001), random_phone()
    pushed = http.post(f"{server}/v1/provider/records:batch", headers={
        "Authorization": f"Bearer {provider}"}, json={"records": [{
            "ref": "e2e-1", "id_number": idn, "catalogue_code": "blood.donation",
            "occurred_at": (date.today() - timedelta(days=3)).isoformat(),
            "summary": "无偿献血"}]})
    assert pushed.json()["results"][0]["status"] == "created"

    reg = http.post(f"{server}/v1/auth/register", json={
        "phone": phone, "password": "citizen-pass-1", "name": "王五", "id_number": idn})
    assert reg.status_code == 201 and reg.headers["Cache-Control"] == "no-store"
    tokens = http.post(f"{server}/v1/auth/login",
                       json={"phone": phone, "password": "citizen-pass-1"}).json()
    SENSITIVE_VALUES.update([tokens["access_token"], tokens["refresh_token"]])
    me = {"Authorization": f"Bearer {tokens['access_token']}"}
    credit = http.get(f"{server}/v1/me/credit", headers=me).json()
    assert credit["score"] == 600 + credit["contributions"][0]["points"]

    [cred] = http.post(f"{server}/v1/me/credentials", json={}, headers=me).json()["items"]
    SENSITIVE_VALUES.update([cred["qr_payload"], cred["short_code"]])
    png = http.get(f"{server}/v1/me/credentials/{cred['id']}/qr.png", headers=me)
    assert png.headers["Content-Type"] == "image/png"
    verified = http.post(f"{server}/v1/partner/verifications", headers={
        "Authorization": f"Bearer {library}", "Idempotency-Key": "e2e-scan-1"},
        json={"credential": cred["qr_payload"], "benefit": "library.deposit_free"})
    assert verified.status_code == 200 and verified.json()["decision"] == "eligible"
    replay = http.post(f"{server}/v1/partner/verifications", headers={
        "Authorization": f"Bearer {library}", "Idempotency-Key": "e2e-scan-1"},
        json={"credential": cred["qr_payload"], "benefit": "library.deposit_free"})
    assert replay.json() == verified.json()
    metrics = http.get(f"{server}/metrics").text
    assert "xinyi_http_requests" in metrics
    jwks = http.get(f"{server}/.well-known/jwks.json")
    assert jwks.json()["keys"] and "max-age" in jwks.headers["Cache-Control"]
