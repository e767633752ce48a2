"""Property-based fuzzing of every documented operation with schemathesis, in-process (WSGI).

Each operation gets a bounded number of generated requests as each principal that may call it
(and anonymously), and every response must be a non-5xx whose status code, content type and
body match what the OpenAPI document promises. PostgreSQL only: the SQLite path shares the
code and the other suites cover it.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import hypothesis
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import (
    PASSWORD,
    SENSITIVE_VALUES,
    api_client_headers,
    random_phone,
    register_citizen,
)
from xinyi.auth import service as auth_service
from xinyi.auth.accounts import create_staff
from xinyi.errors import Unauthorized
from xinyi.uow import UnitOfWork
from xinyi.web import ACCESS_ATTR

pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# Examples per operation: the first principal allowed to call it (public: anonymous) gets
# valid and invalid requests, other allowed principals fewer valid ones, and anonymous callers
# of a secured operation a few (it can only ever answer 401 to them).
EXAMPLES, NEGATIVE_EXAMPLES, OTHER_PRINCIPAL_EXAMPLES, ANONYMOUS_EXAMPLES = 25, 10, 5, 5
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
    suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.generate],
)
# Operations that end the account they are called with get a throwaway one of their own, so
# that no other operation's principal is closed by a generated request.
THROWAWAY = frozenset({("DELETE", "/v1/me")})
# In order of preference for the principal that gets the full treatment.
KINDS = ("citizen", "operator", "partner", "org", "provider", "reviewer", "auditor")
STAFF = ("operator", "reviewer", "auditor")


class Credentials:
    """One live credential per principal kind, checked before each operation's run and remade
    if an earlier run ended it (logout); within a run such an operation just sees 401s."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app, self.client = app, client
        self.deps = app.extensions["xinyi"]
        self._operator_for_setup: dict[str, str] | None = None
        self._headers: dict[str, dict[str, str]] = {}

    def _login(self, phone: str) -> dict[str, str]:
        # Its own client address, so fuzzed logins from 127.0.0.1 cannot rate-limit ours.
        address = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(250)}"
        resp = self.client.post("/v1/auth/login", json={"phone": phone, "password": PASSWORD},
                                environ_base={"REMOTE_ADDR": address})
        assert resp.status_code == 200, resp.get_json()
        token = resp.get_json()["access_token"]
        SENSITIVE_VALUES.update([token, resp.get_json()["refresh_token"]])
        return {"Authorization": f"Bearer {token}"}

    def _staff(self, role: str) -> dict[str, str]:
        phone = random_phone()
        with UnitOfWork(self.deps.db.sessions) as uow:
            create_staff(uow.session, self.deps, phone=phone, password=PASSWORD, role=role)
            uow.commit()
        return self._login(phone)

    def _make(self, kind: str) -> dict[str, str]:
        if kind == "citizen":
            return self._login(register_citizen(self.client)["phone"])
        if kind in STAFF:
            return self._staff(kind)
        if self._operator_for_setup is None or not self._valid(self._operator_for_setup):
            self._operator_for_setup = self._staff("operator")
        headers, _ = api_client_headers(self.client, self._operator_for_setup, kind + "s")
        return headers

    def _valid(self, headers: dict[str, str]) -> bool:
        with self.deps.db.session() as session:
            try:
                auth_service.authenticate(session, self.deps, headers["Authorization"])
            except Unauthorized:
                return False
        return True

    def throwaway(self, kind: str) -> dict[str, str]:
        """A principal of this kind that no other operation uses."""
        return {} if kind == "anonymous" else self._make(kind)

    def headers(self, kind: str) -> dict[str, str]:
        if kind == "anonymous":
            return {}
        current = self._headers.get(kind)
        if current is None or not self._valid(current):
            current = self._headers[kind] = self._make(kind)
        return current


def access_by_operation(app: Flask) -> dict[tuple[str, str], frozenset[str]]:
    """(METHOD, OpenAPI path) → the principal kinds the view declares."""
    out: dict[tuple[str, str], frozenset[str]] = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        access = getattr(app.view_functions[rule.endpoint], ACCESS_ATTR, frozenset({"anyone"}))
        for method in rule.methods or ():
            out[(method, path)] = access
    return out


def fuzz(operation: Any, headers: dict[str, str], examples: int,
         mode: GenerationMode = GenerationMode.POSITIVE) -> str | None:
    """Run one operation's generated cases; the failure report, or None when all passed."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(SETTINGS, max_examples=examples)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        return None  # nothing in the operation can be made invalid (no parameters, no body)
    except Exception as exc:
        return f"{operation.label} ({mode.value}): {exc}"
    return None


def plan(allowed: frozenset[str]) -> list[tuple[str, GenerationMode, int]]:
    """(principal, generation mode, examples) runs for an operation with this access."""
    positive, negative = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
    if "anyone" in allowed:
        return [("anonymous", positive, EXAMPLES), ("anonymous", negative, NEGATIVE_EXAMPLES)]
    kinds = [k for k in KINDS if k in allowed]
    runs = [("anonymous", positive, ANONYMOUS_EXAMPLES)]
    if kinds:
        runs += [(kinds[0], positive, EXAMPLES), (kinds[0], negative, NEGATIVE_EXAMPLES)]
        runs += [(k, positive, OTHER_PRINCIPAL_EXAMPLES) for k in kinds[1:]]
    return runs


def test_every_operation_honours_its_documented_contract(
        app: Flask, client: FlaskClient) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    access = access_by_operation(app)
    credentials = Credentials(app, client)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        key = (operation.method.upper(), operation.path)
        for kind, mode, examples in plan(access[key]):
            headers = (credentials.throwaway(kind) if key in THROWAWAY
                       else credentials.headers(kind))
            failure = fuzz(operation, headers, examples, mode)
            if failure:
                failures.append(f"as {kind}: {failure}")
    assert operations > 25, "the OpenAPI document lost its operations"
    assert not failures, "\n\n".join(failures)
