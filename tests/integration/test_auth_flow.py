from __future__ import annotations

import dataclasses

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import (
    PASSWORD,
    bearer,
    count,
    login,
    random_phone,
    recording_sender,
    register_citizen,
    staff_headers,
    valid_id_number,
)
from xinyi.auth.models import Account, AuthSession
from xinyi.citizens.models import Citizen


def test_register_returns_masked_identity(client: FlaskClient) -> None:
    phone, idn = random_phone(), valid_id_number(7)
    resp = client.post("/v1/auth/register", json={
        "phone": phone, "password": PASSWORD, "name": "张三丰", "id_number": idn})
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["phone"] == phone[:3] + "****" + phone[-4:]
    assert body["id_number"] == idn[:3] + "*" * 11 + idn[-4:]
    assert body["name"] == "张**"
    assert phone not in resp.get_data(as_text=True) and idn not in resp.get_data(as_text=True)


def test_login_then_me_shows_masked_profile(client: FlaskClient) -> None:
    citizen = register_citizen(client)
    tokens = login(client, citizen["phone"])
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    resp = client.get("/v1/me", headers=bearer(tokens["access_token"]))
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.get_json()["id"] == citizen["id"]


def test_identity_numbers_are_encrypted_at_rest(app, client: FlaskClient) -> None:  # type: ignore[no-untyped-def]
    citizen = register_citizen(client)
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        row = s.execute(select(Account.phone_enc, Account.phone_bidx)).first()
        raw = bytes(row.phone_enc) + bytes(row.phone_bidx)
    assert citizen["phone"].encode() not in raw


def test_second_account_for_same_id_number_is_refused(app, client: FlaskClient) -> None:  # type: ignore[no-untyped-def]
    idn = valid_id_number(11)
    register_citizen(client, id_number=idn)
    before = count(app, Account)
    resp = client.post("/v1/auth/register", json={
        "phone": random_phone(), "password": PASSWORD, "name": "李四", "id_number": idn})
    assert resp.status_code == 409
    assert resp.get_json()["code"] == "id_number_taken"
    assert count(app, Account) == before


def test_a_phone_in_use_gets_a_new_accounts_answer_and_its_owner_an_sms(  # type: ignore[no-untyped-def]
        app, client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    """Registration must not tell an anonymous caller whether a phone has an account: the
    answer looks like a new account's, nothing is stored, and the phone's owner is told."""
    sent = recording_sender(app)
    citizen = register_citizen(client)
    before = (count(app, Account), count(app, Citizen))
    fresh = client.post("/v1/auth/register", json={
        "phone": random_phone(), "password": PASSWORD, "name": "李四",
        "id_number": valid_id_number(13)})
    probe = client.post("/v1/auth/register", json={
        "phone": citizen["phone"], "password": PASSWORD, "name": "李四",
        "id_number": valid_id_number(12)})
    assert probe.status_code == fresh.status_code == 201
    assert set(probe.get_json()) == set(fresh.get_json())
    assert probe.get_json()["id"] != citizen["id"]
    assert (count(app, Account), count(app, Citizen)) == (before[0] + 1, before[1] + 1)
    assert [(to.value, m.template) for to, m in sent] == [(citizen["phone"],
                                                           "registration_attempt")]
    # The probe cannot log in with the password it chose, and the owner still can.
    assert client.post("/v1/auth/login", json={
        "phone": citizen["phone"], "password": PASSWORD + "x"}).status_code == 401
    assert login(client, citizen["phone"])["access_token"]
    assert citizen["phone"] not in caplog.text


def test_an_id_number_in_use_is_refused_and_logged_without_it(  # type: ignore[no-untyped-def]
        app, client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    id_number = valid_id_number(15)
    register_citizen(client, id_number=id_number)
    before = count(app, Account)
    resp = client.post("/v1/auth/register", json={
        "phone": random_phone(), "password": PASSWORD, "name": "李四", "id_number": id_number})
    assert resp.status_code == 409 and resp.get_json()["code"] == "id_number_taken"
    assert count(app, Account) == before
    assert any(getattr(r, "event", None) == "registration_id_number_taken"
               for r in caplog.records)
    assert id_number not in caplog.text


def test_registration_is_rate_limited_per_address_and_per_phone(  # type: ignore[no-untyped-def]
        app, client: FlaskClient) -> None:
    deps = app.extensions["xinyi"]
    deps.settings = dataclasses.replace(deps.settings, register_limit_per_address="4/hour",
                                        register_limit_per_phone="2/hour")
    phone = random_phone()
    answers = [client.post("/v1/auth/register", json={
        "phone": phone, "password": PASSWORD, "name": "李四",
        "id_number": valid_id_number()}).status_code for _ in range(3)]
    assert answers == [201, 201, 429]  # the third try of one phone, from any address
    others = [client.post("/v1/auth/register", json={
        "phone": random_phone(), "password": PASSWORD, "name": "李四",
        "id_number": valid_id_number()}) for _ in range(2)]
    assert [r.status_code for r in others] == [201, 429]  # the fifth from this address
    assert others[1].get_json()["code"] == "rate_limited"
    assert int(others[1].headers["Retry-After"]) > 0
    # Another address may still register.
    assert client.post("/v1/auth/register", environ_base={"REMOTE_ADDR": "10.0.0.9"}, json={
        "phone": random_phone(), "password": PASSWORD, "name": "李四",
        "id_number": valid_id_number()}).status_code == 201


def test_a_registration_with_several_bad_fields_names_each(client: FlaskClient) -> None:
    resp = client.post("/v1/auth/register", json={
        "phone": "12", "password": "short", "name": "李四", "id_number": "110101199003071234"})
    assert resp.status_code == 422
    assert sorted(e["field"] for e in resp.get_json()["errors"]) == [
        "id_number", "password", "phone"]


def test_same_phone_in_fullwidth_digits_is_not_a_second_account(app, client: FlaskClient) -> None:  # type: ignore[no-untyped-def]
    citizen = register_citizen(client)
    before = count(app, Account)
    fullwidth = citizen["phone"][:2] + "".join(chr(0xFF10 + int(d)) for d in citizen["phone"][2:])
    resp = client.post("/v1/auth/register", json={
        "phone": fullwidth, "password": PASSWORD, "name": "李四",
        "id_number": valid_id_number(14)})
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["errors"][0]["field"] == "phone"
    assert count(app, Account) == before


def test_invalid_id_number_is_refused_naming_the_field(app, client: FlaskClient) -> None:  # type: ignore[no-untyped-def]
    good = valid_id_number(13)
    bad_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    for bad in (bad_check, "999999199001011234", good[:6] + "20991301" + good[14:], "12345"):
        resp = client.post("/v1/auth/register", json={
            "phone": random_phone(), "password": PASSWORD, "name": "李四", "id_number": bad})
        assert resp.status_code == 422, bad
        problem = resp.get_json()
        assert resp.content_type == "application/problem+json"
        assert problem["errors"][0]["field"] == "id_number"
        assert bad not in resp.get_data(as_text=True)
    assert count(app, Account) == 0


def test_wrong_password_is_refused(client: FlaskClient) -> None:
    citizen = register_citizen(client)
    resp = client.post("/v1/auth/login", json={"phone": citizen["phone"], "password": "nope12345"})
    assert resp.status_code == 401 and resp.get_json()["code"] == "invalid_credentials"


def test_login_is_rate_limited_per_phone_with_retry_after(client: FlaskClient) -> None:
    citizen = register_citizen(client)
    codes = [client.post("/v1/auth/login", json={"phone": citizen["phone"],
                                                  "password": "wrong-pass-1"}).status_code
             for _ in range(5)]
    assert codes == [401] * 5
    resp = client.post("/v1/auth/login", json={"phone": citizen["phone"], "password": PASSWORD})
    assert resp.status_code == 429
    assert resp.get_json()["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) > 0


def test_login_is_rate_limited_per_client_address(client: FlaskClient) -> None:
    codes = [client.post("/v1/auth/login", json={"phone": random_phone(),
                                                  "password": "wrong-pass-1"}).status_code
             for _ in range(31)]
    assert codes[:30] == [401] * 30 and codes[30] == 429


def test_refresh_rotates_and_reuse_revokes_the_family(app, client: FlaskClient) -> None:  # type: ignore[no-untyped-def]
    citizen = register_citizen(client)
    first = login(client, citizen["phone"])
    second = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    rotated = second.get_json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert client.get("/v1/me", headers=bearer(rotated["access_token"])).status_code == 200
    # The old refresh token comes back: someone has a copy. Everything in the family dies.
    reuse = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert client.post("/v1/auth/refresh",
                       json={"refresh_token": rotated["refresh_token"]}).status_code == 401
    assert client.get("/v1/me", headers=bearer(rotated["access_token"])).status_code == 401
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        assert s.scalar(select(AuthSession.revoked_reason)) == "refresh_reuse"


def test_logout_revokes_access_and_refresh_at_once(client: FlaskClient) -> None:
    citizen = register_citizen(client)
    tokens = login(client, citizen["phone"])
    assert client.post("/v1/auth/logout", headers=bearer(tokens["access_token"])).status_code == 204
    assert client.get("/v1/me", headers=bearer(tokens["access_token"])).status_code == 401
    assert client.post("/v1/auth/refresh",
                       json={"refresh_token": tokens["refresh_token"]}).status_code == 401


def test_staff_login_carries_role_and_cannot_read_citizen_me(app, client: FlaskClient) -> None:  # type: ignore[no-untyped-def]
    import jwt

    headers = staff_headers(app, client, "reviewer")
    token = headers["Authorization"].split()[1]
    assert jwt.decode(token, options={"verify_signature": False})["role"] == "reviewer"
    assert client.get("/v1/me", headers=headers).status_code == 403
