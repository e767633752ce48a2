"""The whole journey over real HTTP against `xinyi serve` (gunicorn) on PostgreSQL and Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from tests.factories import (
    SENSITIVE_VALUES,
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    random_phone,
    valid_id_number,
)
from xinyi.db import make_engine

pytestmark = pytest.mark.e2e
XINYI = str(Path(sys.executable).with_name("xinyi"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base, _, name = TEST_DATABASE_URL.rpartition("/")
    db_name = f"{name}_e2e"
    admin = make_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    redis_url = TEST_REDIS_URL.rsplit("/", 1)[0] + "/10"
    env = {**os.environ, "XINYI_ENV": "development",
           "XINYI_INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
           "XINYI_DATABASE_URL": f"{base}/{db_name}", "XINYI_REDIS_URL": redis_url}
    subprocess.run([XINYI, "db", "upgrade"], env=env, check=True, capture_output=True)
    operator_phone = random_phone()
    subprocess.run([XINYI, "staff", "create", "--phone", operator_phone, "--password",
                    "operator-pass-1", "--role", "operator"], env=env, check=True,
                   capture_output=True)
    port = _free_port()
    proc = subprocess.Popen([XINYI, "serve", "--port", str(port), "--workers", "2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a loaded 2-core machine boots gunicorn slowly
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {proc.stderr.read()[-2000:]!r}"
                            if proc.stderr else "server exited")
            try:
                if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not become ready in 90 s")
            time.sleep(0.2)
        os.environ["XINYI_E2E_OPERATOR_PHONE"] = operator_phone
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()


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
