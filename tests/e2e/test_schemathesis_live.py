"""`st run --checks all` against `xinyi serve` on PostgreSQL and Redis: every schemathesis
check, each operation with the credentials of a principal allowed to call it.

tests/integration/test_schemathesis.py fuzzes in-process, each operation as every principal,
for server errors and response conformance. This run adds what only the whole set of checks
and a real server show: schema-valid bodies refused (positive_data_acceptance), invalid ones
accepted (negative_data_rejection), missing headers and bodies, undocumented methods and their
Allow header, ignored authentication, and the stateful phase. It is bounded (a few examples
per operation, deterministic) to stay near a minute on two cores.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from tests.factories import SENSITIVE_VALUES, TEST_REDIS_URL, random_phone, valid_id_number
from tests.servers import LiveServer, live_server

pytestmark = pytest.mark.e2e
ST = str(Path(sys.executable).with_name("st"))
PASSWORD = "fuzz-pass-1234"
EXAMPLES = 5  # per operation and phase; the coverage phase adds its own deterministic cases

# Whose credentials an operation gets, by its path (the first match; anonymous otherwise).
PRINCIPALS = [("citizen", r"^/v1/me(/|$)"), ("partner", r"^/v1/partner/"),
              ("provider", r"^/v1/provider/"), ("org", r"^/v1/org/"),
              ("reviewer", r"^/v1/admin/(repairs|disputes|attachments|reports|reviews)(/|$)"),
              ("operator", r"^/v1/admin/")]

# Where a check cannot know what the server rightly does, with the reason. Each entry is an
# [[operations]] table of schemathesis.toml. (`--checks all` overrides a check's `enabled`
# there, so an allowance widens its expected statuses instead.)
REFUSALS_ALLOWED = ["2xx", "401", "403", "404", "409", "422", "429"]
ALLOWANCES: list[tuple[str, dict[str, object]]] = [
    ("An ID number's check digit, region and birth date cannot be said in JSON Schema, so "
     "schema-valid registrations are refused (the phone's pattern could be: RegisterIn is "
     "left to the change that moves it to citizens/).",
     {"include-name": ["POST /v1/auth/register", "POST /v1/org/volunteers",
                       "POST /v1/org/service-records"],
      "checks": {"positive_data_acceptance": {"expected-statuses": REFUSALS_ALLOWED}}}),
    ("A well-formed partner id, benefit code or catalogue code that names nothing is refused "
     "with 422 naming it (unknown_partner, unknown_benefit, a provider's catalogue_codes): "
     "which ids exist is data, not schema.",
     {"include-name": ["POST /v1/me/consents", "POST /v1/partner/verifications",
                       "POST /v1/admin/providers",
                       "PUT /v1/admin/providers/{client_id}/catalogue"],
      "checks": {"positive_data_acceptance": {"expected-statuses": REFUSALS_ALLOWED}}}),
    ("Rules between fields, or about time and state, that JSON Schema cannot say: a catalogue "
     "item's volunteer hours only where volunteering repairs it, a session's `due_at` in the "
     "future and its verification eligible and fresh, an amount owed only when defaulted, an "
     "attachment's content (PNG, JPEG or PDF, not empty), where a webhook URL points "
     "(the SSRF guard resolves it), and a consistency proof's `from` at most its `to`. Each "
     "is a 422 naming the field.",
     {"include-name": ["POST /v1/admin/catalogue", "PATCH /v1/admin/catalogue/{code}",
                       # a limit's name is 1–64 characters: apispec does not emit the
                       # propertyNames that would say so
                       "PATCH /v1/admin/benefit-rules/{code}",
                       "POST /v1/partner/benefit-sessions",
                       "POST /v1/partner/benefit-sessions/{session_id}/close",
                       "POST /v1/partner/benefit-sessions/{session_id}/extend",
                       "POST /v1/partner/webhook-endpoints",
                       "PATCH /v1/partner/webhook-endpoints/{endpoint_id}",
                       "GET /v1/transparency/consistency"],
      "checks": {"positive_data_acceptance": {"expected-statuses": REFUSALS_ALLOWED}}}),
    ("Which commitment texts (purpose and version) and catalogue items exist is data, not "
     "schema; an ID number's check digit cannot be said in JSON Schema; a report's facts must "
     "not be blank, an organisation's credit code has a check character, and filing is "
     "rate-limited per citizen. Each is a 422 naming the field (429 for the limit).",
     {"include-name": ["POST /v1/me/commitments", "POST /v1/admin/commitment-texts",
                       "GET /v1/provider/commitments",
                       "POST /v1/provider/commitments/{commitment_id}/breach",
                       "POST /v1/me/reports", "POST /v1/admin/reports/{report_id}/decide"],
      "checks": {"positive_data_acceptance": {"expected-statuses": REFUSALS_ALLOWED}}}),
    ("A name must not be blank (`pattern: \\s*\\S`), but Python's `\\s` also matches "
     "U+001C–U+001F, which JSON Schema's does not: a name of only those is refused with 422 "
     "naming it.",
     {"include-name": ["POST /v1/admin/partners", "POST /v1/admin/orgs"],
      "checks": {"positive_data_acceptance": {"expected-statuses": REFUSALS_ALLOWED}}}),
    ("An attachment is judged by its content: bytes that are not a PNG, JPEG or PDF are 415, "
     "an empty file 422; JSON Schema cannot say what a file holds.",
     {"include-name": "POST /v1/me/attachments",
      "checks": {"positive_data_acceptance": {"expected-statuses": [*REFUSALS_ALLOWED, "415"]}}}),
    ("Closing the account re-checks the password: a schema-valid body with another password "
     "is 403 password_incorrect, and attempts are rate-limited (429).",
     {"include-name": "DELETE /v1/me",
      "checks": {"positive_data_acceptance": {"expected-statuses": REFUSALS_ALLOWED}}}),
    ("A batch checks each record on its own: invalid records come back rejected, one by one, "
     "in a 200 that still takes the valid ones (see the batch route's description).",
     {"include-name": "POST /v1/provider/records:batch",
      "checks": {"negative_data_rejection": {"expected-statuses": [
          "200", "400", "401", "403", "404", "409", "413", "415", "422", "429"]}}}),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    store = redis.Redis.from_url(TEST_REDIS_URL)
    store.flushdb()
    try:
        with live_server(tmp_path_factory.mktemp("instance"), postgres_suffix="fuzz",
                         redis_url=TEST_REDIS_URL, workers=2) as live:
            yield live
    finally:
        store.flushdb()
        store.close()


def _login(server: LiveServer, phone: str) -> str:
    resp = requests.post(f"{server.url}/v1/auth/login", timeout=30,
                         json={"phone": phone, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    token: str = resp.json()["access_token"]
    SENSITIVE_VALUES.update([token, resp.json()["refresh_token"]])
    return token


def _citizen(server: LiveServer) -> str:
    phone = random_phone()
    resp = requests.post(f"{server.url}/v1/auth/register", timeout=30, json={
        "phone": phone, "password": PASSWORD, "name": "模糊测试", "id_number": valid_id_number()})
    assert resp.status_code == 201, resp.text
    return _login(server, phone)


def _credentials(server: LiveServer) -> dict[str, str]:
    phone = random_phone()
    server.xinyi("staff", "create", "--phone", phone, "--password", PASSWORD,
                 "--role", "operator")
    reviewer = random_phone()
    server.xinyi("staff", "create", "--phone", reviewer, "--password", PASSWORD,
                 "--role", "reviewer")
    tokens = {"operator": _login(server, phone), "reviewer": _login(server, reviewer),
              "citizen": _citizen(server), "logout": _citizen(server),
              "close": _citizen(server)}
    for kind, body in (("partner", {"name": "模糊测试图书馆", "kind": "library"}),
                       ("provider", {"name": "模糊测试数据源", "catalogue_codes": ["*"]}),
                       ("org", {"name": "模糊测试志愿者协会"})):
        resp = requests.post(f"{server.url}/v1/admin/{kind}s", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {tokens['operator']}"})
        assert resp.status_code == 201, resp.text
        tokens[kind] = resp.json()["api_key"]["api_key"]
    SENSITIVE_VALUES.update(tokens.values())
    return tokens


def _toml(value: object) -> str:
    """A TOML value: JSON's strings, numbers, booleans and arrays are TOML's too."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def _config(tokens: dict[str, str]) -> str:
    # Closing the account ends it for good: a throwaway citizen of its own (before the
    # citizen's table, whose path pattern it also matches).
    tables: list[dict[str, object]] = [
        {"include-name": "DELETE /v1/me",
         "headers": {"Authorization": f"Bearer {tokens['close']}"}}]
    tables += [
        {"include-path-regex": pattern, "headers": {"Authorization": f"Bearer {tokens[kind]}"}}
        for kind, pattern in PRINCIPALS]
    # Its first passing case ends the login it is given: not one another operation uses.
    tables.append({"include-name": "POST /v1/auth/logout",
                   "headers": {"Authorization": f"Bearer {tokens['logout']}"}})
    tables += [table for _why, table in ALLOWANCES]
    return "\n".join("[[operations]]\n" + "".join(f"{key} = {_toml(value)}\n"
                                                  for key, value in table.items())
                     for table in tables)


def test_every_schemathesis_check_passes_against_a_live_server(
        server: LiveServer, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(_credentials(server)), encoding="utf-8")
    run = subprocess.run(
        [ST, "--config-file", str(config), "run", f"{server.url}/openapi.json",
         "--checks", "all", "--max-examples", str(EXAMPLES), "--generation-deterministic",
         "--phases", "examples,coverage,fuzzing,stateful", "--workers", "2", "--no-color",
         # A network-level failure on a loaded machine is retried; a server that failed is
         # still caught, by its own log below.
         "--request-retries", "2", "--request-timeout", "60"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    report = run.stdout
    tested = re.search(r"Tested: (\d+)", report)
    assert tested and int(tested.group(1)) > 25, report[-3000:]  # the document lost operations
    (tmp_path / "report.txt").write_text(report, encoding="utf-8")
    # Runtime errors (schemathesis's own, or the network's) come before the failures.
    starts = [i for i in (report.find("= ERRORS ="), report.find("= FAILURES =")) if i >= 0]
    assert run.returncode == 0, (report[min(starts):] if starts else report)[:20000]
    server_log = server.log()
    for sign in ("WORKER TIMEOUT", "Traceback", '"event": "unhandled"'):
        assert sign not in server_log, server_log[-5000:]
