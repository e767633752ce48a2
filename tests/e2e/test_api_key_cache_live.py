"""The API-key cache across processes: `xinyi serve` with two workers, each with its own
cache. A key revoked, or a partner disabled, through the admin API is refused by every worker
within 1 s: each worker's cached entry expires half a second after its database read began,
and only the worker that served the admin request clears its cache at once.

No test here sleeps: it polls, and judges each answer by when its request was sent (a request
sent a second after the revocation returned must be refused, however loaded the machine)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.factories import SENSITIVE_VALUES, TEST_REDIS_URL, random_phone
from tests.servers import LiveServer, live_server

pytestmark = pytest.mark.e2e
WORKERS = 2
BOUND_SECONDS = 1.0
MAX_REQUESTS = 600  # fresh connections, spread by the kernel over both workers
GIVE_UP_SECONDS = 60.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    redis_url = os.environ.get("XINYI_TEST_E2E_REDIS_URL",
                               TEST_REDIS_URL.rsplit("/", 1)[0] + "/10")
    with live_server(tmp_path_factory.mktemp("instance"), postgres_suffix="e2e_keys",
                     redis_url=redis_url, workers=WORKERS) as live:
        yield live


@pytest.fixture(scope="module")
def operator(server: LiveServer) -> dict[str, str]:
    phone = random_phone()
    server.xinyi("staff", "create", "--phone", phone, "--password", "operator-pass-1",
                 "--role", "operator")
    token = requests.post(f"{server.url}/v1/auth/login", json={
        "phone": phone, "password": "operator-pass-1"}, timeout=30).json()["access_token"]
    SENSITIVE_VALUES.add(token)
    return {"Authorization": f"Bearer {token}"}


def ask(server: LiveServer, api_key: str) -> tuple[float, str, int]:
    """When the request was sent, which worker answered, and the status: 403 means the key
    authenticated (a partner is no citizen), 401 that it was refused. A new connection each
    time, so that both workers accept some."""
    sent = time.monotonic()
    resp = requests.get(f"{server.url}/v1/me", headers={
        "Authorization": f"Bearer {api_key}", "Connection": "close"}, timeout=30)
    assert resp.status_code in (401, 403), resp.text[:300]
    return sent, resp.headers["X-Xinyi-Worker"], resp.status_code


def new_partner(server: LiveServer, operator: dict[str, str]) -> dict[str, Any]:
    resp = requests.post(f"{server.url}/v1/admin/partners", headers=operator, json={
        "name": f"缓存测试 {time.monotonic_ns()}", "kind": "library"}, timeout=30)
    assert resp.status_code == 201, resp.text[:300]
    created: dict[str, Any] = resp.json()
    SENSITIVE_VALUES.add(created["api_key"]["api_key"])
    return created


@pytest.mark.parametrize("cut_off", ["revoke", "disable"])
def test_every_worker_refuses_a_revoked_key_or_disabled_partner_within_a_second(
        server: LiveServer, operator: dict[str, str], cut_off: str) -> None:
    created = new_partner(server, operator)
    api_key = created["api_key"]["api_key"]
    # Both workers have authenticated the key (so both hold it in their caches).
    accepted: set[str] = set()
    for _ in range(MAX_REQUESTS):
        _, worker, status = ask(server, api_key)
        assert status == 403
        accepted.add(worker)
        if len(accepted) == WORKERS:
            break
    assert len(accepted) == WORKERS, f"only worker(s) {accepted} answered"

    if cut_off == "revoke":
        resp = requests.delete(
            f"{server.url}/v1/admin/partners/{created['id']}/keys/{created['api_key']['id']}",
            headers=operator, timeout=30)
        assert resp.status_code == 204
    else:
        resp = requests.put(f"{server.url}/v1/admin/partners/{created['id']}/status",
                            headers=operator, json={"disabled": True}, timeout=30)
        assert resp.status_code == 200
    done = time.monotonic()  # the cut-off is committed

    # Poll until each worker has refused a request sent at least 1 s after the cut-off.
    late_refusals: set[str] = set()
    answers: list[tuple[float, str, int]] = []
    # Until then, or a generous give-up point for a machine too loaded to ever get there.
    while time.monotonic() < done + BOUND_SECONDS + GIVE_UP_SECONDS:
        answer = ask(server, api_key)
        answers.append(answer)
        sent, worker, status = answer
        if sent >= done + BOUND_SECONDS:
            assert status == 401, (
                f"worker {worker} accepted the key {sent - done:.2f} s after the {cut_off}")
            late_refusals.add(worker)
            if len(late_refusals) == WORKERS:
                break
    assert late_refusals == accepted, f"not every worker was asked late enough: {answers[-50:]}"
    # Nothing accepted after the bound either, on any worker, and the refusal, once a
    # worker's entry expired, stuck.
    for worker in accepted:
        statuses = [s for t, w, s in answers if w == worker]
        first_refusal = statuses.index(401)
        assert set(statuses[first_refusal:]) == {401}, (worker, statuses)
