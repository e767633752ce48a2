"""Object-level authorisation (one citizen never sees another's data) and mass assignment
(fields a client must not set are refused by name, and nothing is written)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import (
    PASSWORD,
    SENSITIVE_VALUES,
    bearer,
    count,
    login,
    random_phone,
    register_citizen,
    staff_headers,
    valid_id_number,
)
from xinyi.auth.models import Account, ApiClient, ApiKey
from xinyi.citizens.models import Citizen


def forge(app: Flask, *, sub: str, sid: str, role: str = "citizen") -> str:
    """A token signed with the server's real key: only the claims decide the outcome."""
    deps = app.extensions["xinyi"]
    now = deps.clock()
    token = jwt.encode(
        {"iss": deps.settings.jwt_issuer, "aud": deps.settings.jwt_audience, "sub": sub,
         "sid": sid, "role": role, "jti": uuid.uuid4().hex, "iat": int(now.timestamp()),
         "exp": int((now + timedelta(minutes=5)).timestamp())},
        deps.settings.jwt_private_key_pem, algorithm="EdDSA",
        headers={"kid": deps.tokens.kid, "typ": "at+jwt"})
    SENSITIVE_VALUES.add(token)
    return token


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.fixture
def two_citizens(client: FlaskClient) -> tuple[dict[str, Any], dict[str, Any]]:
    a, b = register_citizen(client), register_citizen(client)
    a["tokens"], b["tokens"] = login(client, a["phone"]), login(client, b["phone"])
    return a, b


def test_me_always_answers_with_the_callers_own_profile(
        client: FlaskClient, two_citizens: tuple[dict[str, Any], dict[str, Any]]) -> None:
    a, b = two_citizens
    for me, other in ((a, b), (b, a)):
        resp = client.get("/v1/me", headers=bearer(me["tokens"]["access_token"]))
        assert resp.status_code == 200
        text = resp.get_data(as_text=True)
        assert resp.get_json()["id"] == me["id"]
        assert other["id"] not in text
        assert resp.get_json()["phone"] == me["phone"][:3] + "****" + me["phone"][-4:]


def test_me_ignores_attempts_to_name_another_citizen(
        client: FlaskClient, two_citizens: tuple[dict[str, Any], dict[str, Any]]) -> None:
    a, b = two_citizens
    headers = bearer(a["tokens"]["access_token"])
    for attempt in (f"/v1/me?id={b['id']}", f"/v1/me?account_id={b['id']}",
                    f"/v1/me?sub={b['id']}"):
        resp = client.get(attempt, headers=headers)
        assert resp.status_code in (200, 422), attempt
        if resp.status_code == 200:
            assert resp.get_json()["id"] == a["id"], attempt
    resp = client.get("/v1/me", headers={**headers, "X-Account-Id": b["id"],
                                         "X-Forwarded-User": b["id"]})
    assert resp.status_code == 200 and resp.get_json()["id"] == a["id"]


def test_token_with_another_citizens_sub_but_own_session_is_refused(
        app: Flask, client: FlaskClient,
        two_citizens: tuple[dict[str, Any], dict[str, Any]]) -> None:
    a, b = two_citizens
    a_claims = claims_of(a["tokens"]["access_token"])
    b_claims = claims_of(b["tokens"]["access_token"])
    # Control: the same harness with matching claims is accepted.
    assert client.get("/v1/me", headers=bearer(
        forge(app, sub=a["id"], sid=a_claims["sid"]))).status_code == 200
    for sub, sid in ((b["id"], a_claims["sid"]), (a["id"], b_claims["sid"])):
        resp = client.get("/v1/me", headers=bearer(forge(app, sub=sub, sid=sid)))
        assert resp.status_code == 401
        assert resp.get_json()["code"] == "unauthorized"


def test_citizen_token_cannot_claim_a_staff_role(
        app: Flask, client: FlaskClient,
        two_citizens: tuple[dict[str, Any], dict[str, Any]]) -> None:
    a, _ = two_citizens
    sid = claims_of(a["tokens"]["access_token"])["sid"]
    before = count(app, ApiClient)
    token = forge(app, sub=a["id"], sid=sid, role="operator")
    resp = client.post("/v1/admin/partners", json={"name": "x", "kind": "library"},
                       headers=bearer(token))
    assert resp.status_code == 401 and resp.get_json()["code"] == "unauthorized"
    assert count(app, ApiClient) == before


def registration(**extra: Any) -> dict[str, Any]:
    return {"phone": random_phone(), "password": PASSWORD, "name": "王五",
            "id_number": valid_id_number(), **extra}


REGISTRATION_EXTRAS: dict[str, Any] = {
    "role": "operator",
    "id": "00000000-0000-0000-0000-000000000001",
    "is_admin": True,
    "disabled_at": None,
    "realname_verified_at": "2020-01-01T00:00:00Z",
    "password_hash": "$argon2id$v=19$m=1024,t=1,p=1$AAAA$AAAA",
}


def test_registration_with_a_field_clients_may_not_set_is_refused_by_name(
        app: Flask, client: FlaskClient, subtests: pytest.Subtests) -> None:
    for field, value in REGISTRATION_EXTRAS.items():
        with subtests.test(field=field):
            accounts, citizens = count(app, Account), count(app, Citizen)
            body = registration(**{field: value})
            resp = client.post("/v1/auth/register", json=body)
            assert resp.status_code == 422
            problem = resp.get_json()
            assert problem["code"] == "validation_error"
            assert [e["field"] for e in problem["errors"]] == [field]
            assert field in problem["detail"]
            assert count(app, Account) == accounts and count(app, Citizen) == citizens
            # The same body without the extra field is accepted: the field was the reason.
            del body[field]
            assert client.post("/v1/auth/register", json=body).status_code == 201


def test_registration_with_several_extra_fields_names_each_and_writes_nothing(
        app: Flask, client: FlaskClient) -> None:
    accounts = count(app, Account)
    resp = client.post("/v1/auth/register", json=registration(
        role="operator", is_admin=True, disabled_at=None, id=str(uuid.uuid4())))
    assert resp.status_code == 422
    assert {e["field"] for e in resp.get_json()["errors"]} == {
        "role", "is_admin", "disabled_at", "id"}
    assert count(app, Account) == accounts


PARTNER_EXTRAS: dict[str, Any] = {
    "api_key": "xyk_aaaaaaaaaaaaaaaa_mine",
    "id": "00000000-0000-0000-0000-000000000001",
    "type": "provider",
    "disabled_at": None,
    "keys": [{"id": "k1"}],
}


def test_admin_create_partner_with_a_server_owned_field_is_refused_by_name(
        app: Flask, client: FlaskClient, subtests: pytest.Subtests) -> None:
    operator = staff_headers(app, client, "operator")
    for field, value in PARTNER_EXTRAS.items():
        with subtests.test(field=field):
            clients, keys = count(app, ApiClient), count(app, ApiKey)
            body = {"name": "市图书馆", "kind": "library", field: value}
            resp = client.post("/v1/admin/partners", json=body, headers=operator)
            assert resp.status_code == 422
            problem = resp.get_json()
            assert problem["code"] == "validation_error"
            assert [e["field"] for e in problem["errors"]] == [field]
            assert count(app, ApiClient) == clients and count(app, ApiKey) == keys


def test_partner_status_body_cannot_carry_other_fields(app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    created = client.post("/v1/admin/partners", json={"name": "单车", "kind": "bike"},
                          headers=operator).get_json()
    SENSITIVE_VALUES.add(created["api_key"]["api_key"])
    resp = client.put(f"/v1/admin/partners/{created['id']}/status",
                      json={"disabled": False, "kind": "hospital", "name": "x"},
                      headers=operator)
    assert resp.status_code == 422
    assert {e["field"] for e in resp.get_json()["errors"]} == {"kind", "name"}
    after = client.get(f"/v1/admin/partners/{created['id']}", headers=operator).get_json()
    assert (after["kind"], after["name"]) == ("bike", "单车")
