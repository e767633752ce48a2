"""Small factories and shared values for the tests: each test says what it depends on.

Plain functions, not fixtures, so a test calls exactly the ones it needs with the arguments it
cares about (as cosmicpython's random_refs.py). The pytest fixtures stay in conftest.py, which
imports from here; no test imports conftest. Every sensitive value a factory hands the app is
remembered in SENSITIVE_VALUES so the final log scan can look for it.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import secrets
import tempfile
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import ColumnElement, func, select

from xinyi.config import Settings
from xinyi.uow import UnitOfWork

ROOT = Path(__file__).resolve().parents[1]
TEST_DATABASE_URL = os.environ.get(
    "XINYI_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("XINYI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# Every sensitive value a test hands the app; the final log scan looks for each one.
SENSITIVE_VALUES: set[str] = set()
# Every log record of the run, as rendered before redaction (conftest's handler fills it).
CAPTURED_LOGS: list[str] = []


def make_settings(database_url: str, redis_url: str | None, **overrides: Any) -> Settings:
    """Valid settings with fresh keys each call (nothing a test signs or encrypts outlives it)
    and the cheapest Argon2, so that registering thousands of citizens stays fast."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    base = Settings(
        env="test",
        database_url=database_url,
        redis_url=redis_url,
        data_keys={1: secrets.token_bytes(32)},
        data_key_current=1,
        blind_index_key=secrets.token_bytes(32),
        jwt_private_key_pem=pem,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        webhook_allow_private=True,
        log_level="INFO",
        # Tests register many citizens from one address; the limits have tests of their own.
        register_limit_per_address="1000/hour",
        register_limit_per_phone="1000/hour",
        # Each test's closed accounts go to a shred list of its own, never the checkout's.
        shred_list_path=str(Path(tempfile.gettempdir())
                            / f"xinyi-test-shred-{uuid.uuid4().hex}.jsonl"),
    )
    settings = dataclasses.replace(base, **overrides)
    settings.validate()
    return settings


def valid_id_number(seed: int | None = None, *, region: str | None = None) -> str:
    """A valid ID number: fixed for a seed (under 10,000; region 110101, or ``region`` when
    it names one of ``_RANDOM_REGIONS``), otherwise random and never equal to a seeded one
    (another region). Two random ones collide once in 132,000 (one in 1,000 before: a test
    registering two citizens failed once in a while)."""
    from stdnum.cn import ric

    if seed is None:
        region = region or _RANDOM_REGIONS[secrets.randbelow(len(_RANDOM_REGIONS))]
        n = secrets.randbelow(21_000)  # the fields below repeat every 21,000 values of n
    else:
        assert region is None or region in ("110101", *_RANDOM_REGIONS)
        region, n = region or "110101", seed
    body = f"{region}{1960 + n % 50:04d}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    number = body + ric.calc_check_digit(body + "0")
    SENSITIVE_VALUES.add(number)
    return number


# Districts that existed for every birth year above (checked with xinyi.pii.IdNumber.parse).
_RANDOM_REGIONS = ("110102", "110105", "110108", "310104", "310105", "120101")


def random_phone() -> str:
    phone = f"13{secrets.randbelow(10)}{secrets.randbelow(10**8):08d}"
    SENSITIVE_VALUES.add(phone)
    return phone


PASSWORD = "correct-horse-42"


def register_citizen(client: FlaskClient, **overrides: str) -> dict[str, Any]:
    body = {"phone": random_phone(), "password": PASSWORD, "name": "测试公民",
            "id_number": valid_id_number()}
    body.update(overrides)
    resp = client.post("/v1/auth/register", json=body)
    assert resp.status_code == 201, resp.get_json()
    return {**body, "id": resp.get_json()["id"]}


def login(client: FlaskClient, phone: str, password: str = PASSWORD) -> dict[str, Any]:
    resp = client.post("/v1/auth/login", json={"phone": phone, "password": password})
    assert resp.status_code == 200, resp.get_json()
    tokens: dict[str, Any] = resp.get_json()
    SENSITIVE_VALUES.update([tokens["access_token"], tokens["refresh_token"]])
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def citizen_headers(client: FlaskClient) -> dict[str, str]:
    citizen = register_citizen(client)
    return bearer(login(client, citizen["phone"])["access_token"])


def staff_headers(app: Flask, client: FlaskClient, role: str) -> dict[str, str]:
    from xinyi.auth.accounts import create_staff

    deps = app.extensions["xinyi"]
    phone = random_phone()
    with UnitOfWork(deps.db.sessions) as uow:
        create_staff(uow.session, deps, phone=phone, password=PASSWORD, role=role)
        uow.commit()
    return bearer(login(client, phone)["access_token"])


def api_client_headers(client: FlaskClient, operator: dict[str, str], collection: str,
                       kind: str | None = "library", catalogue_codes: tuple[str, ...] = ("*",)
                       ) -> tuple[dict[str, str], dict[str, Any]]:
    """A new partner, org or provider (granted ``catalogue_codes``) and its key's headers."""
    body: dict[str, Any] = {"name": f"测试 {uuid.uuid4().hex[:6]}"}
    if collection == "partners":
        body["kind"] = kind
    if collection == "providers":
        body["catalogue_codes"] = list(catalogue_codes)
    resp = client.post(f"/v1/admin/{collection}", json=body, headers=operator)
    assert resp.status_code == 201, resp.get_json()
    created: dict[str, Any] = resp.get_json()
    SENSITIVE_VALUES.add(created["api_key"]["api_key"])
    return bearer(created["api_key"]["api_key"]), created


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def count(app: Flask, model: Any, *where: ColumnElement[bool]) -> int:
    """Rows of `model` (those matching every `where`) that the app's database holds now, so a
    test can prove a request wrote nothing, or exactly what it should."""
    with app.extensions["xinyi"].db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


class RecordingSender:
    """The SMS/push port's test double (messages are truly external): keeps what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, Any]] = []

    def send_sms(self, to: Any, message: Any) -> None:
        message.text()  # renders, as the real senders do
        self.sent.append((to, message))


def recording_sender(app: Flask) -> list[tuple[Any, Any]]:
    """Swap the app's message sender for a recorder; returns the list it fills."""
    sender = RecordingSender()
    app.extensions["xinyi"].sender = sender
    return sender.sent


_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def python_blocks(document: Path) -> list[str]:
    """The ```python code blocks of a Markdown file, in order: documentation whose code is
    run by a test cannot drift from what the code does."""
    return _PYTHON_BLOCK.findall(document.read_text(encoding="utf-8"))


def seal_and_verify(app: Flask) -> Any:
    """Seal every waiting access-log entry and sign a tree head, as the worker's sealer does,
    then run ``xinyi audit verify``'s checks; the report."""
    from xinyi.audit.checkpoints import verify_all
    from xinyi.audit.sealer import seal_all

    deps = app.extensions["xinyi"]
    seal_all(deps)
    with deps.db.session() as session:
        return verify_all(session, deps)
