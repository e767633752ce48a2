"""Bad input is a 4xx problem document naming what is wrong, never a 500, and writes nothing.

Three representative writers are attacked: registration and login (public) and an admin
create (operator). Also: security headers, readiness and metrics on normal responses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CONTENT_TYPE_LATEST

from tests.factories import (
    CAPTURED_LOGS,
    PASSWORD,
    SENSITIVE_VALUES,
    citizen_headers,
    count,
    random_phone,
    staff_headers,
    valid_id_number,
)
from xinyi.auth.models import Account, ApiClient, AuthSession
from xinyi.citizens.models import Citizen

PROBLEM_KEYS = {"type", "title", "status", "code", "detail"}


@dataclass
class Target:
    url: str
    headers: dict[str, str]
    valid: Callable[[], dict[str, Any]]
    fields: tuple[str, ...]
    required: tuple[str, ...]
    wrong_types: dict[str, Any]
    models: tuple[Any, ...]


def registration() -> dict[str, Any]:
    return {"phone": random_phone(), "password": PASSWORD, "name": "赵六",
            "id_number": valid_id_number()}


def login_body() -> dict[str, Any]:
    return {"phone": random_phone(), "password": PASSWORD}


def partner() -> dict[str, Any]:
    return {"name": "市立医院", "kind": "hospital"}


def make_target(name: str, app: Flask, client: FlaskClient) -> Target:
    if name == "register":
        return Target("/v1/auth/register", {}, registration,
                      ("phone", "password", "name", "id_number"),
                      ("phone", "password", "name", "id_number"),
                      {"phone": 13800138000, "password": 12345678, "name": ["张三"],
                       "id_number": {"number": 1}},
                      (Account, Citizen))
    if name == "login":
        return Target("/v1/auth/login", {}, login_body, ("phone", "password"),
                      ("phone", "password"),
                      {"phone": 13800138000, "password": True}, (Account, AuthSession))
    return Target("/v1/admin/partners", staff_headers(app, client, "operator"), partner,
                  ("name", "kind"), ("name", "kind"), {"name": 42, "kind": ["hospital"]},
                  (ApiClient,))


def counts(app: Flask, models: tuple[Any, ...]) -> dict[str, int]:
    return {m.__tablename__: count(app, m) for m in models}


def assert_problem(resp: Any, status: int | None = None, code: str | None = None) -> dict[str, Any]:
    """A well-formed RFC 9457 document with our stable code; optionally an exact status/code."""
    assert resp.status_code < 500, resp.get_data(as_text=True)[:500]
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = json.loads(resp.get_data(as_text=True))
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == resp.status_code
    assert body["type"].endswith("/" + body["code"])
    assert all(isinstance(body[k], str) and body[k] for k in PROBLEM_KEYS - {"status"})
    if status is not None:
        assert resp.status_code == status, body
    if code is not None:
        assert body["code"] == code, body
    return body


def named_fields(problem: dict[str, Any]) -> set[str]:
    return {e["field"] for e in problem.get("errors", [])}


TARGETS = ("register", "login", "admin_create_partner")


@pytest.mark.parametrize("name", TARGETS)
def test_bad_input_is_a_named_4xx_problem_and_writes_nothing(
        app: Flask, client: FlaskClient, name: str, subtests: pytest.Subtests) -> None:
    target = make_target(name, app, client)
    before = counts(app, target.models)

    def post(**kwargs: Any) -> Any:
        return client.post(target.url, headers=target.headers, **kwargs)

    raw = {"content_type": "application/json"}
    with subtests.test("malformed JSON"):
        for data in (b"{bad", b'{"phone": }', b"{'phone': '1'}", b'{"a": 1,}', b"[1, 2",
                     b'{"name": "\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000,
                     b'{"a": ' * 5_000 + b"1" + b"}" * 5_000):
            assert_problem(post(data=data, **raw), 400, "malformed_request")

    with subtests.test("wrong types name every field"):
        problem = assert_problem(post(json=target.wrong_types), 422, "validation_error")
        assert named_fields(problem) == set(target.wrong_types)
        for field in target.wrong_types:
            assert field in problem["detail"]

    with subtests.test("body over 1 MiB"):
        big = json.dumps({**target.valid(), "pad": "x" * (1024 * 1024)})
        assert_problem(post(data=big, **raw), 413, "payload_too_large")

    with subtests.test("not JSON content types"):
        body = json.dumps(target.valid())
        for content_type in ("text/plain", "application/x-www-form-urlencoded",
                             "application/xml", "multipart/form-data; boundary=x"):
            resp = post(data=body, content_type=content_type)
            assert 400 <= resp.status_code < 500, content_type
            assert_problem(resp)
        # A real form post too: this API takes JSON only.
        assert_problem(post(data=target.valid()), 415, "unsupported_media_type")

    with subtests.test("unknown field"):
        problem = assert_problem(post(json={**target.valid(), "surprise": 1}), 422,
                                 "validation_error")
        assert named_fields(problem) == {"surprise"}

    with subtests.test("missing every field"):
        problem = assert_problem(post(json={}), 422, "validation_error")
        assert named_fields(problem) == set(target.required)

    with subtests.test("nulls name every field"):
        problem = assert_problem(post(json=dict.fromkeys(target.fields)), 422,
                                 "validation_error")
        assert named_fields(problem) == set(target.fields)

    with subtests.test("huge strings"):
        for field in target.fields:
            for huge in ("x" * 900_000, "张" * 150_000):  # just under 1 MiB once encoded
                problem = assert_problem(post(json={**target.valid(), field: huge}), 422,
                                         "validation_error")
                assert named_fields(problem) == {field}

    with subtests.test("not an object"):
        for value in ([], [target.valid()], "text", 42, True, None):
            resp = post(data=json.dumps(value), **raw)
            assert_problem(resp, 422, "validation_error")

    with subtests.test("NUL and lone surrogates are refused by name"):
        for field in target.fields:
            for poison in ("a\x00b", "a\ud800b"):
                problem = assert_problem(post(data=_json_body({**target.valid(), field: poison}),
                                              **raw), 422, "validation_error")
                assert named_fields(problem) == {field}

    assert counts(app, target.models) == before


def test_json_integer_too_long_to_convert_is_malformed_not_a_server_error(
        app: Flask, client: FlaskClient) -> None:
    # Python refuses to convert an integer literal of more than 4300 digits (a ValueError
    # that is not a JSONDecodeError).
    before = counts(app, (Account, AuthSession))
    for url in ("/v1/auth/login", "/v1/auth/register"):
        resp = client.post(url, data=b'{"phone": ' + b"1" * 5_000 + b"}",
                           content_type="application/json")
        assert_problem(resp, 400, "malformed_request")
    assert counts(app, (Account, AuthSession)) == before


@pytest.mark.parametrize(("body", "where"), [
    (b'{"phone": }', "Expecting value at line 1, column 11"),
    (b'{\n  "phone": "13800138000",\n  "password" "hunter2-secret"\n}',
     "Expecting ':' delimiter at line 3, column 14"),
    (b'{"password": "hunter2-secret",}', "line 1, column 31"),
    (b'{"password": "hunter2-\xff"}', "byte 23"),
])
def test_malformed_json_names_the_position_of_the_error_and_never_echoes_the_body(
        app: Flask, client: FlaskClient, body: bytes, where: str) -> None:
    before = counts(app, (Account, AuthSession))
    resp = client.post("/v1/auth/login", data=body, content_type="application/json")
    problem = assert_problem(resp, 400, "malformed_request")
    assert where in problem["detail"], problem
    text = resp.get_data(as_text=True)
    assert "hunter2" not in text and "13800138000" not in text
    assert "The browser (or proxy)" not in text
    assert counts(app, (Account, AuthSession)) == before


@pytest.mark.parametrize("content_type", [None, "text/plain"])
def test_json_without_a_json_content_type_is_told_to_send_one(
        app: Flask, client: FlaskClient, content_type: str | None) -> None:
    before = counts(app, (Account, Citizen))
    resp = client.post("/v1/auth/register", data=json.dumps(registration()),
                       content_type=content_type)
    problem = assert_problem(resp, 415, "unsupported_media_type")
    assert "send Content-Type: application/json" in problem["detail"]
    assert "errors" not in problem  # not "missing data" for every field
    assert counts(app, (Account, Citizen)) == before


def test_no_body_at_all_still_names_the_missing_fields(client: FlaskClient) -> None:
    problem = assert_problem(client.post("/v1/auth/login"), 422, "validation_error")
    assert named_fields(problem) == {"phone", "password"}


UNICODE_NAMES = {
    "emoji": "张三😀",
    "rtl": "\u202e三张",
    "arabic": "محمد",
    "zero_width": "张\u200b三",
    "combining": "Zoe\u0301",
    "nul": "张\x00三",
    "lone_surrogate": "\ud800",
    "only_spaces": "   ",
    "newline": "张\n三",
    "bom": "\ufeff张三",
    "long_cjk": "张" * 64,
    "too_long_cjk": "张" * 65,
    "dot_name": "阿卜杜·热合曼",
}


def _json_body(body: dict[str, Any]) -> bytes:
    # ensure_ascii keeps lone surrogates as \\ud800 escapes, exactly as a client would send them.
    return json.dumps(body).encode()


@pytest.mark.parametrize("name", ["register", "admin_create_partner"])
def test_unicode_edge_cases_in_names_never_cause_a_server_error(
        app: Flask, client: FlaskClient, name: str, subtests: pytest.Subtests) -> None:
    target = make_target(name, app, client)
    for label, value in UNICODE_NAMES.items():
        with subtests.test(label):
            before = counts(app, target.models)
            resp = client.post(target.url, data=_json_body({**target.valid(), "name": value}),
                               content_type="application/json", headers=target.headers)
            assert resp.status_code in (201, 422), resp.get_data(as_text=True)[:300]
            if resp.status_code == 201:
                if name == "admin_create_partner":
                    SENSITIVE_VALUES.add(resp.get_json()["api_key"]["api_key"])
                    assert resp.get_json()["name"] == value.strip()
                continue
            assert named_fields(assert_problem(resp, 422, "validation_error")) == {"name"}
            assert counts(app, target.models) == before


def test_unicode_edge_cases_in_login_fields_are_refused_without_a_server_error(
        app: Flask, client: FlaskClient) -> None:
    before = counts(app, (AuthSession,))
    for value in UNICODE_NAMES.values():
        for body in ({"phone": value, "password": PASSWORD},
                     {"phone": random_phone(), "password": value + "abc123"}):
            resp = client.post("/v1/auth/login", data=_json_body(body),
                               content_type="application/json")
            assert resp.status_code in (401, 422), resp.get_data(as_text=True)[:300]
            assert_problem(resp)
    assert counts(app, (AuthSession,)) == before


def test_unknown_route_and_method_are_problem_documents(client: FlaskClient) -> None:
    assert_problem(client.get("/v1/does-not-exist"), 404, "not_found")
    assert_problem(client.delete("/v1/auth/login"), 405, "method_not_allowed")
    assert_problem(client.get("/v1/me"), 401, "unauthorized")


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("put", "/v1/me", {"GET", "HEAD", "OPTIONS", "DELETE"}),
    ("delete", "/healthz", {"GET", "HEAD", "OPTIONS"}),
    ("get", "/v1/auth/login", {"POST", "OPTIONS"}),
])
def test_method_not_allowed_says_which_methods_are(client: FlaskClient, method: str, path: str,
                                                   allowed: set[str]) -> None:
    """RFC 9110 §15.5.6: a 405 carries Allow."""
    resp = getattr(client, method)(path)
    assert_problem(resp, 405, "method_not_allowed")
    assert {m.strip() for m in resp.headers["Allow"].split(",")} == allowed


def test_security_headers_on_a_normal_response(client: FlaskClient) -> None:
    resp = client.get("/v1/me", headers=citizen_headers(client))
    assert resp.status_code == 200
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Request-Id"]
    # Errors carry the same headers: a 401 must not be cached or framed either.
    refused = client.get("/v1/me")
    assert refused.headers["Cache-Control"] == "no-store"
    assert refused.headers["X-Content-Type-Options"] == "nosniff"


def test_request_id_is_echoed_only_when_it_is_safe(client: FlaskClient) -> None:
    assert client.get("/healthz", headers={"X-Request-Id": "abc123"}).headers[
        "X-Request-Id"] == "abc123"
    injected = client.get("/healthz", headers={"X-Request-Id": "a\"b, <script>"})
    assert injected.headers["X-Request-Id"] != "a\"b, <script>"
    assert injected.headers["X-Request-Id"].isalnum()


def test_readyz_reports_each_dependency(client: FlaskClient) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "checks": {"database": "ok", "kv": "ok"}}


def test_metrics_are_prometheus_text_with_request_counts(client: FlaskClient) -> None:
    client.get("/healthz")
    resp = client.get("/metrics")
    assert resp.status_code == 200
    # Exactly the exposition type: a duplicated charset parameter makes scrapers refuse it.
    assert resp.headers["Content-Type"] == CONTENT_TYPE_LATEST
    text = resp.get_data(as_text=True)
    assert "# TYPE xinyi_http_requests_total counter" in text
    assert 'xinyi_http_requests_total{endpoint="/healthz",method="GET",status="200"}' in text


def test_metrics_labels_stay_bounded_whatever_the_method(client: FlaskClient) -> None:
    """Every distinct label value is a new time series kept for the process's life: a client
    inventing request methods must not be able to grow the metrics without bound."""
    for n in range(5):
        client.open(f"/v1/me/records/8f0e6f0e-0000-4000-8000-00000000000{n}",
                    method=f"PROBE{n}")
        client.open("/healthz", method=f"SPAM{n}")
    text = client.get("/metrics").get_data(as_text=True)
    assert "PROBE" not in text and "SPAM" not in text
    assert "8f0e6f0e" not in text


def test_a_failed_readiness_probe_logs_the_error_type_never_its_message(
        app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "postgresql://xinyi:s3cret-in-a-url@db/xinyi"

    def down() -> None:
        raise ConnectionError(f"could not connect to {secret}")

    monkeypatch.setattr(app.extensions["xinyi"].db, "ping", down)
    before = len(CAPTURED_LOGS)
    resp = client.get("/readyz")
    assert resp.status_code == 503
    logged = "\n".join(CAPTURED_LOGS[before:])
    assert "ConnectionError" in logged and "not_ready" in logged
    assert "s3cret" not in logged
