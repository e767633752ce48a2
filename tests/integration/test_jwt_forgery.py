"""Forged, altered or misused access tokens: every one gets the same 401 as no token at all.

The body is compared whole, so a response cannot hint at which check failed. A control case
proves the forging harness itself is right: a token it builds with the server's real key and
correct claims is accepted, so each refusal below is caused by the one thing the case breaks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import SENSITIVE_VALUES, bearer, login, register_citizen, staff_headers
from xinyi.auth.models import AuthSession


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    segments = [b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode())]
    return ".".join([*segments, b64url(signature)])


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """HMAC-signed by hand: PyJWT rightly refuses to use a public key as an HMAC secret."""
    head = {**header, "alg": "HS256"}
    signing_input = unsigned(head, claims).rsplit(".", 1)[0]
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def eddsa(header: dict[str, Any], claims: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """EdDSA-signed by hand, for headers PyJWT would refuse to write."""
    signing_input = unsigned({**header, "alg": "EdDSA"}, claims).rsplit(".", 1)[0]
    return f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"


class Forge:
    """Builds tokens around one real citizen login, signed with whatever key a case needs."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app = app
        self.deps = app.extensions["xinyi"]
        citizen = register_citizen(client)
        self.tokens = login(client, citizen["phone"])
        self.real = jwt.decode(self.tokens["access_token"], options={"verify_signature": False})
        self.private = serialization.load_pem_private_key(
            self.deps.settings.jwt_private_key_pem, password=None)
        self.kid = self.deps.tokens.kid

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = self.deps.clock()
        claims: dict[str, Any] = {
            "iss": self.deps.settings.jwt_issuer,
            "aud": self.deps.settings.jwt_audience,
            "sub": self.real["sub"],
            "sid": self.real["sid"],
            "role": "citizen",
            "jti": uuid.uuid4().hex,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(minutes=10)).timestamp()),
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not DROP}

    def header(self, **changes: Any) -> dict[str, Any]:
        header = {"kid": self.kid, "typ": "at+jwt", **changes}
        return {k: v for k, v in header.items() if v is not DROP}

    def sign(self, claims: dict[str, Any] | None = None, *, key: Any = None,
             **header: Any) -> str:
        token = jwt.encode(claims or self.claims(), key or self.private, algorithm="EdDSA",
                           headers=self.header(**header))
        SENSITIVE_VALUES.add(token)
        return token

    @property
    def public_raw(self) -> bytes:
        return bytes(self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    @property
    def public_pem(self) -> bytes:
        return bytes(self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


DROP = object()


@pytest.fixture
def forge(app: Flask, client: FlaskClient) -> Forge:
    return Forge(app, client)


@pytest.fixture
def no_token_body(client: FlaskClient) -> dict[str, Any]:
    resp = client.get("/v1/me")
    assert resp.status_code == 401
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = resp.get_json()
    assert body["code"] == "unauthorized"
    return body


def assert_refused_like_no_token(client: FlaskClient, authorization: str,
                                 no_token_body: dict[str, Any]) -> None:
    resp = client.get("/v1/me", headers={"Authorization": authorization})
    assert resp.status_code == 401, resp.get_json()
    assert resp.content_type == "application/problem+json"
    assert resp.get_json() == no_token_body
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="xinyi"'


def test_control_token_forged_with_the_real_key_is_accepted(
        client: FlaskClient, forge: Forge) -> None:
    resp = client.get("/v1/me", headers=bearer(forge.sign()))
    assert resp.status_code == 200
    assert resp.get_json()["id"] == forge.real["sub"]


# Each case turns the forging harness into one bad Authorization header value.
CASES: dict[str, Callable[[Forge], str]] = {
    "alg_none_unsigned": lambda f: "Bearer " + unsigned(
        f.header(alg="none"), f.claims()),
    "alg_none_with_real_signature_kept": lambda f: "Bearer " + unsigned(
        f.header(alg="none"), f.claims()).rsplit(".", 1)[0] + "."
        + f.sign().rsplit(".", 1)[1],
    "alg_none_capitalised": lambda f: "Bearer " + unsigned(
        f.header(alg="None"), f.claims()),
    "hs256_with_raw_public_key_as_secret": lambda f: "Bearer " + hs256(
        f.header(), f.claims(), f.public_raw),
    "hs256_with_pem_public_key_as_secret": lambda f: "Bearer " + hs256(
        f.header(), f.claims(), f.public_pem),
    "hs256_with_empty_secret_and_dev_null_kid": lambda f: "Bearer " + hs256(
        f.header(kid="../../../../dev/null"), f.claims(), b""),
    "unknown_kid": lambda f: "Bearer " + f.sign(kid="not-our-key"),
    "missing_kid": lambda f: "Bearer " + f.sign(kid=DROP),
    "path_traversal_kid": lambda f: "Bearer " + f.sign(kid="../../dev/null"),
    "sql_injection_kid": lambda f: "Bearer " + f.sign(kid="x' UNION SELECT 'key' --"),
    "kid_as_object": lambda f: "Bearer " + eddsa(
        f.header(kid={"$ne": None}), f.claims(), f.private),
    "missing_exp": lambda f: "Bearer " + f.sign(f.claims(exp=DROP)),
    "missing_iat": lambda f: "Bearer " + f.sign(f.claims(iat=DROP)),
    "expired": lambda f: "Bearer " + f.sign(f.claims(
        exp=int((f.deps.clock() - timedelta(seconds=5)).timestamp()))),
    "wrong_audience": lambda f: "Bearer " + f.sign(f.claims(aud="someone-else")),
    "missing_audience": lambda f: "Bearer " + f.sign(f.claims(aud=DROP)),
    "wrong_issuer": lambda f: "Bearer " + f.sign(f.claims(iss="https://evil.example")),
    "missing_sid": lambda f: "Bearer " + f.sign(f.claims(sid=DROP)),
    "sid_not_a_uuid": lambda f: "Bearer " + f.sign(f.claims(sid="1 OR 1=1")),
    "unknown_sid": lambda f: "Bearer " + f.sign(f.claims(sid=str(uuid.uuid4()))),
    "sub_not_a_uuid": lambda f: "Bearer " + f.sign(f.claims(sub="admin")),
    "role_not_matching_the_account": lambda f: "Bearer " + f.sign(f.claims(role="operator")),
    "tampered_payload_role_operator": lambda f: "Bearer " + _tamper(f),
    "refresh_token_as_access_token": lambda f: "Bearer " + f.tokens["refresh_token"],
    "signed_by_another_ed25519_key_with_our_kid": lambda f: "Bearer " + f.sign(
        key=Ed25519PrivateKey.generate()),
    "another_key_embedded_as_jwk_header": lambda f: "Bearer " + _embedded_jwk(f),
    "typ_plain_jwt": lambda f: "Bearer " + f.sign(typ="JWT"),
    "typ_missing": lambda f: "Bearer " + f.sign(typ=DROP),
    "typ_refresh": lambda f: "Bearer " + f.sign(typ="rt+jwt"),
    "truncated_signature": lambda f: "Bearer " + f.tokens["access_token"][:-4],
    "two_segments_only": lambda f: "Bearer " + f.tokens["access_token"].rsplit(".", 1)[0],
    "garbage": lambda f: "Bearer not.a.jwt",
    "oversized": lambda f: "Bearer " + f.sign(f.claims(pad="x" * 5000)),
    "bearer_scheme_missing": lambda f: f.tokens["access_token"],
    "basic_scheme": lambda f: "Basic " + f.tokens["access_token"],
    "token_scheme": lambda f: "Token " + f.tokens["access_token"],
    "bearer_with_empty_credential": lambda f: "Bearer ",
    "bearer_alone": lambda f: "Bearer",
    "empty_header": lambda f: "",
    "bearer_with_only_spaces": lambda f: "Bearer     ",
}


def _tamper(f: Forge) -> str:
    head, payload, sig = f.tokens["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "operator"
    return ".".join([head, b64url(json.dumps(claims).encode()), sig])


def _embedded_jwk(f: Forge) -> str:
    attacker = Ed25519PrivateKey.generate()
    x = b64url(attacker.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    return f.sign(key=attacker, jwk={"kty": "OKP", "crv": "Ed25519", "x": x})


def test_forged_or_misused_token_gets_the_same_401_as_no_token(
        client: FlaskClient, forge: Forge, no_token_body: dict[str, Any],
        subtests: pytest.Subtests) -> None:
    # One app per backend for all cases (building the app dominates the cost of a test);
    # each case still reports on its own.
    for case in sorted(CASES):
        with subtests.test(case=case):
            assert_refused_like_no_token(client, CASES[case](forge), no_token_body)
    # The real login still works afterwards: nothing above was refused for a global reason.
    assert client.get("/v1/me", headers=bearer(forge.tokens["access_token"])).status_code == 200


def test_refresh_token_is_refused_as_access_token(
        client: FlaskClient, forge: Forge, no_token_body: dict[str, Any]) -> None:
    assert_refused_like_no_token(client, "Bearer " + forge.tokens["refresh_token"], no_token_body)
    # ...and the refresh token is still good for what it is for.
    resp = client.post("/v1/auth/refresh", json={"refresh_token": forge.tokens["refresh_token"]})
    assert resp.status_code == 200


def test_token_of_a_logged_out_session_is_refused(
        app: Flask, client: FlaskClient, forge: Forge, no_token_body: dict[str, Any]) -> None:
    token = forge.tokens["access_token"]
    assert client.get("/v1/me", headers=bearer(token)).status_code == 200
    assert client.post("/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert_refused_like_no_token(client, f"Bearer {token}", no_token_body)
    # Re-signing the same claims with the real key does not revive a closed session.
    assert_refused_like_no_token(client, "Bearer " + forge.sign(), no_token_body)
    with forge.deps.db.session() as s:
        family = s.get(AuthSession, uuid.UUID(forge.real["sid"]))
        assert family is not None and family.revoked_reason == "logout"


def test_token_of_a_disabled_account_is_refused_at_once(
        app: Flask, client: FlaskClient, forge: Forge, no_token_body: dict[str, Any]) -> None:
    operator = staff_headers(app, client, "operator")
    token = forge.tokens["access_token"]
    assert client.get("/v1/me", headers=bearer(token)).status_code == 200
    resp = client.put(f"/v1/admin/accounts/{forge.real['sub']}/status",
                      json={"disabled": True}, headers=operator)
    assert resp.status_code == 204
    assert_refused_like_no_token(client, f"Bearer {token}", no_token_body)
    assert_refused_like_no_token(client, "Bearer " + forge.sign(), no_token_body)
    with forge.deps.db.session() as s:
        reasons = s.scalars(select(AuthSession.revoked_reason).where(
            AuthSession.account_id == uuid.UUID(forge.real["sub"]))).all()
    assert reasons and set(reasons) == {"disabled"}
    # Re-enabling lets the citizen log in again, but the old login stays closed.
    resp = client.put(f"/v1/admin/accounts/{forge.real['sub']}/status",
                      json={"disabled": False}, headers=operator)
    assert resp.status_code == 204
    assert_refused_like_no_token(client, f"Bearer {token}", no_token_body)


def test_disabled_account_cannot_log_in(app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    citizen = register_citizen(client)
    resp = client.put(f"/v1/admin/accounts/{citizen['id']}/status",
                      json={"disabled": True}, headers=operator)
    assert resp.status_code == 204
    resp = client.post("/v1/auth/login", json={"phone": citizen["phone"],
                                                "password": citizen["password"]})
    assert resp.status_code == 401
    assert resp.get_json()["code"] == "invalid_credentials"
