"""partners/README.md works when copied: each of its python blocks runs, as written, against
`xinyi serve` on a fresh database, with only the environment variables the README names."""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import text
from standardwebhooks import Webhook

from tests.factories import (
    ROOT,
    SENSITIVE_VALUES,
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    python_blocks,
    random_phone,
    valid_id_number,
)
from xinyi.db import make_engine

pytestmark = pytest.mark.e2e
README = ROOT / "partners" / "README.md"
XINYI = Path(sys.executable).with_name("xinyi")
STAFF_PASSWORD = "operator-pass-1"


@dataclass(frozen=True)
class Deployment:
    url: str
    api_key: str  # a library partner's
    qr_payload: str  # a citizen's fresh credential
    loan_qr: str  # another citizen's, for the library kit's example
    offline_qr: str  # a third citizen's, for the offline registration example


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(command: list[str], env: dict[str, str], directory: Path) -> subprocess.Popen[bytes]:
    """A server process whose stderr goes to a file (a pipe nobody reads could stall it)."""
    with (directory / "stderr.log").open("wb") as log:
        return subprocess.Popen(command, env=env, cwd=directory, stdout=subprocess.DEVNULL,
                                stderr=log)


def _answers(url: str, proc: subprocess.Popen[bytes], directory: Path, seconds: float) -> None:
    """Wait until ``url`` answers at all (any status), or fail with what the process said."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = (directory / "stderr.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"{proc.args!r} exited: {said}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer in {seconds:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    base, _, name = TEST_DATABASE_URL.rpartition("/")
    fresh = f"{name}_e2e_readme"
    admin = make_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    drop = text(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')
    with admin.connect() as conn:
        conn.execute(drop)
        conn.execute(text(f'CREATE DATABASE "{fresh}"'))
    yield f"{base}/{fresh}"
    with admin.connect() as conn:
        conn.execute(drop)
    admin.dispose()


@pytest.fixture(scope="module")
def deployment(database_url: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    instance = tmp_path_factory.mktemp("readme-instance")
    env = {**os.environ, "XINYI_ENV": "development", "XINYI_DATABASE_URL": database_url,
           "XINYI_REDIS_URL": TEST_REDIS_URL, "XINYI_INSTANCE_PATH": str(instance)}
    staff_phone = random_phone()
    for command in (["db", "upgrade"], ["staff", "create", "--phone", staff_phone, "--password",
                                        STAFF_PASSWORD, "--role", "operator"]):
        subprocess.run([str(XINYI), *command], env=env, check=True, capture_output=True)
    port = _port()
    proc = _start([str(XINYI), "serve", "--port", str(port), "--workers", "1"], env, instance)
    url = f"http://127.0.0.1:{port}"
    try:
        _answers(f"{url}/healthz", proc, instance, 90)  # a loaded 2-core machine is slow
        yield Deployment(url, *_partner_and_credential(url, staff_phone))
    finally:
        _stop(proc)


def _partner_and_credential(url: str, staff_phone: str) -> tuple[str, str, str, str]:
    """Over HTTP, as the credit office and a citizen would: a library partner's API key and a
    citizen's credential."""
    http = requests.Session()

    def login(phone: str, password: str) -> dict[str, str]:
        tokens = http.post(f"{url}/v1/auth/login",
                           json={"phone": phone, "password": password}).json()
        SENSITIVE_VALUES.update([tokens["access_token"], tokens["refresh_token"]])
        return {"Authorization": f"Bearer {tokens['access_token']}"}

    office = login(staff_phone, STAFF_PASSWORD)
    created = http.post(f"{url}/v1/admin/partners", headers=office,
                        json={"name": "市图书馆", "kind": "library"})
    assert created.status_code == 201, created.text
    api_key = created.json()["api_key"]["api_key"]
    SENSITIVE_VALUES.add(api_key)

    def credential() -> str:
        phone, password = random_phone(), "citizen-pass-1"
        registered = http.post(f"{url}/v1/auth/register", json={
            "phone": phone, "password": password, "name": "李四",
            "id_number": valid_id_number()})
        assert registered.status_code == 201, registered.text
        issued = http.post(f"{url}/v1/me/credentials", json={}, headers=login(phone, password))
        [item] = issued.json()["items"]
        SENSITIVE_VALUES.update([item["qr_payload"], item["short_code"]])
        return str(item["qr_payload"])

    return api_key, credential(), credential(), credential()


def block(containing: str) -> str:
    blocks = python_blocks(README)
    # A new block needs a run of its own below: none may go untested.
    assert len(blocks) == 6, "every python block of partners/README.md must be run here"
    [found] = [b for b in blocks if containing in b]
    return found


def example_env(**values: str) -> dict[str, str]:
    """The environment a partner would set: only variables the README's table names."""
    table = README.read_text(encoding="utf-8").split("## Running the examples")[1]
    assert all(f"| `{name}` |" in table for name in values), "name it in the README's table"
    return {**os.environ, **values}


def run_example(code: str, directory: Path, env: dict[str, str]) -> list[str]:
    path = directory / "example.py"
    path.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(path)], env=env, cwd=directory,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_offline_example_verifies_a_live_credential_once(
        deployment: Deployment, tmp_path: Path) -> None:
    env = example_env(XINYI_URL=deployment.url, XINYI_QR=deployment.qr_payload)
    assert run_example(block("def check_card"), tmp_path, env) == [
        "True", "card refused: credential_used replay", "False"]
    kept = json.loads((tmp_path / "xinyi-jwks.json").read_text())
    configuration = requests.get(f"{deployment.url}/.well-known/xinyi-configuration", timeout=5)
    assert kept["issuer"] == configuration.json()["issuer"]


def test_the_offline_registration_example_queues_and_uploads(
        deployment: Deployment, tmp_path: Path) -> None:
    env = example_env(XINYI_URL=deployment.url, XINYI_QR=deployment.offline_qr,
                      XINYI_API_KEY=deployment.api_key)
    assert run_example(block("upload_pending"), tmp_path, env) == [
        "eligible True", "{'recorded': 1} 0"]
    # Registered: the credential is now used online too.
    answer = requests.post(f"{deployment.url}/v1/partner/verifications", timeout=10,
                           headers={"Authorization": f"Bearer {deployment.api_key}"},
                           json={"credential": deployment.offline_qr,
                                 "benefit": "library.deposit_free"})
    assert answer.json()["code"] == "credential_used"


def test_the_online_example_verifies_a_live_credential_once(
        deployment: Deployment, tmp_path: Path) -> None:
    env = example_env(XINYI_URL=deployment.url, XINYI_QR=deployment.qr_payload,
                      XINYI_API_KEY=deployment.api_key)
    assert run_example(block("verify_online"), tmp_path, env) == [
        "eligible", "card refused: credential_used", "standard_terms"]


def test_the_webhook_example_accepts_only_signed_deliveries(tmp_path: Path) -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    SENSITIVE_VALUES.add(secret)
    port = _port()
    env = example_env(XINYI_WEBHOOK_SECRET=secret, PORT=str(port))
    path = tmp_path / "receiver.py"
    path.write_text(block("verify_webhook"), encoding="utf-8")
    proc = _start([sys.executable, str(path)], env, tmp_path)
    url = f"http://127.0.0.1:{port}/xinyi/webhooks"
    try:
        _answers(url, proc, tmp_path, 30)
        body = json.dumps({"type": "benefit.session.closed", "data": {}})
        sent = datetime.now(UTC)
        signature = Webhook(secret).sign("msg_1", sent, body)
        headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(sent.timestamp())),
                   "webhook-signature": signature, "Content-Type": "application/json"}
        assert requests.post(url, data=body, headers=headers, timeout=5).status_code == 204
        assert requests.post(url, data=body, headers=headers, timeout=5).status_code == 204
        forged = requests.post(url, data=body.replace("closed", "opened"), headers=headers,
                               timeout=5)
        assert forged.status_code == 400 and forged.json() == {"error": "signature_invalid"}
    finally:
        _stop(proc)


def test_the_receiver_example_handles_each_event_once_in_order(tmp_path: Path) -> None:
    """The WebhookReceiver example: a duplicate is handled once, a forged one never, and a
    seq gap is filled from the feed (a stand-in feed here, with the events the gap misses)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread
    from urllib.parse import parse_qs, urlsplit

    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    api_key = "xyk_readme_" + secrets.token_hex(8)
    SENSITIVE_VALUES.update([secret, api_key])

    def message(seq: int) -> dict[str, object]:
        return {"id": f"msg_{seq:032x}", "seq": seq, "type": "consent.granted", "version": 1,
                "timestamp": "2026-12-01T08:00:00+00:00", "data": {}}

    class Feed(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            after = int(parse_qs(urlsplit(self.path).query)["after"][0])
            ok = self.headers.get("Authorization") == f"Bearer {api_key}"
            items = [message(n) for n in (2, 3) if n > after]
            body = json.dumps({"items": items,
                               "next_after": items[-1]["seq"] if items else after}).encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    feed = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    Thread(target=feed.serve_forever, daemon=True).start()
    port = _port()
    env = example_env(XINYI_WEBHOOK_SECRET=secret, PORT=str(port), XINYI_API_KEY=api_key,
                      XINYI_URL=f"http://127.0.0.1:{feed.server_address[1]}")
    path = tmp_path / "receiver.py"
    path.write_text(block("WebhookReceiver"), encoding="utf-8")
    out_path = tmp_path / "stdout.log"
    with out_path.open("wb") as out, (tmp_path / "stderr.log").open("wb") as err:
        proc = subprocess.Popen([sys.executable, str(path)], env=env, cwd=tmp_path, stdout=out,
                                stderr=err)
    url = f"http://127.0.0.1:{port}/xinyi/webhooks"

    def send(seq: int, *, forged: bool = False) -> int:
        body = json.dumps(message(seq))
        sent = datetime.now(UTC)
        headers = {"webhook-id": f"msg_{seq:032x}",
                   "webhook-timestamp": str(int(sent.timestamp())),
                   "webhook-signature": Webhook(secret).sign(f"msg_{seq:032x}", sent, body),
                   "Content-Type": "application/json"}
        data = body.replace("consent", "CONSENT") if forged else body
        return requests.post(url, data=data, headers=headers, timeout=5).status_code

    try:
        _answers(url, proc, tmp_path, 30)
        assert send(1) == 204
        assert send(1) == 204  # a retry: answered, not handled again
        assert send(5, forged=True) == 400
        assert send(4) == 204  # 2 and 3 are missing: read from the feed first
        deadline = time.monotonic() + 10
        while out_path.read_text().count("handled") < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        _stop(proc)
        feed.shutdown()
        feed.server_close()
    handled = [line for line in out_path.read_text().splitlines() if line.startswith("handled")]
    assert handled == [f"handled {n} consent.granted" for n in (1, 2, 3, 4)]


def test_the_library_kit_example_lends_returns_in_parts_and_closes(
        deployment: Deployment, tmp_path: Path) -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    SENSITIVE_VALUES.add(secret)
    env = example_env(XINYI_URL=deployment.url, XINYI_QR=deployment.loan_qr,
                      XINYI_API_KEY=deployment.api_key, XINYI_WEBHOOK_SECRET=secret)
    assert run_example(block("LibraryClient"), tmp_path, env) == [
        "eligible 6000 0", "open 1", "refused: book_not_lent", "closed fulfilled"]
