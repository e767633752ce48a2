"""API keys of partners, volunteer organisations and data providers: shown once, stored as a
hash, rotated with two live keys at most, and cut off at once by revocation or disabling."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from tests.factories import SENSITIVE_VALUES, api_client_headers, bearer, count, staff_headers
from xinyi.auth.keycache import DEFAULT_TTL_SECONDS, KeyCache
from xinyi.auth.models import ApiClient, ApiKey
from xinyi.auth.principal import Principal

KEY_FORMAT = re.compile(r"xyk_(?P<id>[0-9a-f]{16})_(?P<secret>[\w-]{40,})")
COLLECTIONS = ("partners", "orgs", "providers")


def authenticated_status(client: FlaskClient, api_key: str) -> int:
    """401 when the key is refused; 403 when it authenticates as a non-citizen on /v1/me."""
    resp = client.get("/v1/me", headers=bearer(api_key))
    expected = {401: "unauthorized", 403: "forbidden"}
    assert resp.status_code in expected, resp.get_json()
    assert resp.get_json()["code"] == expected[resp.status_code]
    return resp.status_code


@pytest.fixture
def operator(app: Flask, client: FlaskClient) -> dict[str, str]:
    return staff_headers(app, client, "operator")


def add_key(client: FlaskClient, operator: dict[str, str], collection: str,
            client_id: str) -> Any:
    resp = client.post(f"/v1/admin/{collection}/{client_id}/keys", headers=operator)
    if resp.status_code == 201:
        SENSITIVE_VALUES.add(resp.get_json()["api_key"])
    return resp


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_operator_creates_principal_with_a_one_time_key_that_authenticates(
        app: Flask, client: FlaskClient, operator: dict[str, str], collection: str) -> None:
    _, created = api_client_headers(client, operator, collection)
    issued = created["api_key"]
    match = KEY_FORMAT.fullmatch(issued["api_key"])
    assert match, "key must look like xyk_<id>_<secret>"
    assert match["id"] == issued["id"]
    assert created["type"] == collection.rstrip("s")
    assert [k["id"] for k in created["keys"]] == [issued["id"]]
    # Authenticated, but a partner/org/provider is not a citizen: 403, not 401.
    assert authenticated_status(client, issued["api_key"]) == 403
    # Never shown again: neither the one record nor the list carries the secret.
    one = client.get(f"/v1/admin/{collection}/{created['id']}", headers=operator)
    listing = client.get(f"/v1/admin/{collection}?page_size=100", headers=operator)
    for resp in (one, listing):
        assert resp.status_code == 200
        text = resp.get_data(as_text=True)
        assert match["secret"] not in text and "api_key" not in text


def test_garbage_and_near_miss_keys_are_refused(
        app: Flask, client: FlaskClient, operator: dict[str, str]) -> None:
    _, created = api_client_headers(client, operator, "partners")
    real = created["api_key"]["api_key"]
    key_id = created["api_key"]["id"]
    attempts = [
        "xyk_garbage",
        "xyk_",
        "xyk__",
        f"xyk_{key_id}_",
        f"xyk_{key_id}_{secrets.token_urlsafe(32)}",  # right id, wrong secret
        f"xyk_{secrets.token_hex(8)}_{real.split('_', 2)[2]}",  # right secret, wrong id
        real[:-1],
        real + "A",
        real.upper(),
        f"xyk_{key_id}_{'A' * 300}",
        f"xyk_' OR '1'='1_{real.split('_', 2)[2]}",
    ]
    for attempt in attempts:
        assert authenticated_status(client, attempt) == 401, attempt
    assert authenticated_status(client, real) == 403


def test_key_ids_that_cannot_exist_are_refused_not_a_server_error(
        app: Flask, client: FlaskClient, operator: dict[str, str]) -> None:
    _, created = api_client_headers(client, operator, "partners")
    secret = created["api_key"]["api_key"].split("_", 2)[2]
    for key_id in ("\x00", "a\x00b", created["api_key"]["id"] + "\x00"):
        assert authenticated_status(client, f"xyk_{key_id}_{secret}") == 401, repr(key_id)
        resp = client.delete(f"/v1/admin/partners/{created['id']}/keys/{quote(key_id)}",
                             headers=operator)
        assert resp.status_code == 404, resp.get_data(as_text=True)[:300]
        assert resp.get_json()["code"] == "not_found"
    assert authenticated_status(client, created["api_key"]["api_key"]) == 403


def test_key_is_stored_only_as_a_hash(
        app: Flask, client: FlaskClient, operator: dict[str, str]) -> None:
    _, created = api_client_headers(client, operator, "providers")
    key_id, secret = created["api_key"]["api_key"].removeprefix("xyk_").split("_", 1)
    with app.extensions["xinyi"].db.session() as s:
        row = s.execute(select(ApiKey.__table__).where(ApiKey.id == key_id)).one()
    stored = row._asdict()
    assert bytes(stored["secret_hash"]) != secret.encode()
    assert bytes(stored["secret_hash"]) == hashlib.sha256(secret.encode()).digest()
    for value in stored.values():
        rendered = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
        assert secret.encode() not in rendered


def test_rotation_allows_two_live_keys_and_refuses_a_third(
        app: Flask, client: FlaskClient, operator: dict[str, str]) -> None:
    _, created = api_client_headers(client, operator, "partners")
    cid, first = created["id"], created["api_key"]
    resp = add_key(client, operator, "partners", cid)
    assert resp.status_code == 201
    second = resp.get_json()
    assert KEY_FORMAT.fullmatch(second["api_key"]) and second["id"] != first["id"]
    # Both keys work during the switch-over.
    assert authenticated_status(client, first["api_key"]) == 403
    assert authenticated_status(client, second["api_key"]) == 403
    keys_before = count(app, ApiKey)
    third = add_key(client, operator, "partners", cid)
    assert third.status_code == 409
    assert third.content_type == "application/problem+json"
    assert third.get_json()["code"] == "too_many_live_keys"
    assert count(app, ApiKey) == keys_before
    # Revoking the old key cuts it off on the very next request; the new one keeps working.
    resp = client.delete(f"/v1/admin/partners/{cid}/keys/{first['id']}", headers=operator)
    assert resp.status_code == 204
    assert authenticated_status(client, first["api_key"]) == 401
    assert authenticated_status(client, second["api_key"]) == 403
    listed = client.get(f"/v1/admin/partners/{cid}", headers=operator).get_json()["keys"]
    assert {k["id"]: k["revoked_at"] is not None for k in listed} == {
        first["id"]: True, second["id"]: False}
    # With one live key left, a new one may be added again.
    assert add_key(client, operator, "partners", cid).status_code == 201


def test_revoking_a_key_of_another_principal_is_not_found(
        app: Flask, client: FlaskClient, operator: dict[str, str]) -> None:
    _, mine = api_client_headers(client, operator, "partners")
    _, other = api_client_headers(client, operator, "partners")
    resp = client.delete(f"/v1/admin/partners/{mine['id']}/keys/{other['api_key']['id']}",
                         headers=operator)
    assert resp.status_code == 404 and resp.get_json()["code"] == "not_found"
    assert authenticated_status(client, other["api_key"]["api_key"]) == 403
    # Nor through the wrong collection.
    resp = client.get(f"/v1/admin/orgs/{mine['id']}", headers=operator)
    assert resp.status_code == 404 and resp.get_json()["code"] == "not_found"


def test_disabling_a_principal_cuts_off_every_key_at_once_and_enabling_restores_them(
        app: Flask, client: FlaskClient, operator: dict[str, str]) -> None:
    _, created = api_client_headers(client, operator, "orgs")
    cid = created["id"]
    keys = [created["api_key"]["api_key"], add_key(client, operator, "orgs", cid)
            .get_json()["api_key"]]
    resp = client.put(f"/v1/admin/orgs/{cid}/status", json={"disabled": True},
                      headers=operator)
    assert resp.status_code == 200 and resp.get_json()["disabled_at"] is not None
    assert [authenticated_status(client, k) for k in keys] == [401, 401]
    resp = client.put(f"/v1/admin/orgs/{cid}/status", json={"disabled": False},
                      headers=operator)
    assert resp.status_code == 200 and resp.get_json()["disabled_at"] is None
    assert [authenticated_status(client, k) for k in keys] == [403, 403]


@pytest.mark.parametrize("change", ["revoke", "disable"])
def test_a_key_cut_off_by_another_process_is_refused_within_the_cache_bound(
        app: Flask, client: FlaskClient, operator: dict[str, str], change: str) -> None:
    """A process keeps a key it read for at most DEFAULT_TTL_SECONDS (< 1 s); a key
    revoked, or a principal disabled, by another process (here: straight in the database,
    so this process hears nothing of it) is refused once that much time has passed."""
    assert DEFAULT_TTL_SECONDS < 1.0
    deps = app.extensions["xinyi"]
    tick = [1000.0]
    deps.api_keys = KeyCache(DEFAULT_TTL_SECONDS, clock=lambda: tick[0])
    _, created = api_client_headers(client, operator, "partners")
    key = created["api_key"]["api_key"]
    assert authenticated_status(client, key) == 403  # read and kept
    with deps.db.session() as s:
        if change == "revoke":
            s.execute(update(ApiKey).where(ApiKey.id == created["api_key"]["id"])
                      .values(revoked_at=datetime.now(UTC)))
        else:
            s.execute(update(ApiClient).where(ApiClient.id == uuid.UUID(created["id"]))
                      .values(disabled_at=datetime.now(UTC)))
        s.commit()
    tick[0] += DEFAULT_TTL_SECONDS / 2
    assert authenticated_status(client, key) == 403  # the copy is still young
    tick[0] += DEFAULT_TTL_SECONDS / 2
    assert authenticated_status(client, key) == 401  # the bound: read again, refused


def test_a_key_revoked_in_this_process_is_refused_on_the_next_request(
        app: Flask, client: FlaskClient, operator: dict[str, str]) -> None:
    deps = app.extensions["xinyi"]
    deps.api_keys = KeyCache(DEFAULT_TTL_SECONDS, clock=lambda: 1000.0)  # never expires
    _, created = api_client_headers(client, operator, "partners")
    key = created["api_key"]["api_key"]
    spare = add_key(client, operator, "partners", created["id"]).get_json()["api_key"]
    assert authenticated_status(client, key) == authenticated_status(client, spare) == 403
    resp = client.delete(f"/v1/admin/partners/{created['id']}/keys/{created['api_key']['id']}",
                         headers=operator)
    assert resp.status_code in (200, 204), resp.get_json()
    assert authenticated_status(client, key) == 401
    assert authenticated_status(client, spare) == 403


@pytest.mark.parametrize("role", ["reviewer", "auditor"])
def test_reviewer_and_auditor_cannot_create_principals_or_keys(
        app: Flask, client: FlaskClient, operator: dict[str, str], role: str) -> None:
    staff = staff_headers(app, client, role)
    _, created = api_client_headers(client, operator, "partners")
    clients, keys = count(app, ApiClient), count(app, ApiKey)
    for collection in COLLECTIONS:
        resp = client.post(f"/v1/admin/{collection}", json={"name": "x", "kind": "library"},
                           headers=staff)
        assert resp.status_code == 403 and resp.get_json()["code"] == "forbidden"
    resp = client.post(f"/v1/admin/partners/{created['id']}/keys", headers=staff)
    assert resp.status_code == 403 and resp.get_json()["code"] == "forbidden"
    resp = client.put(f"/v1/admin/partners/{created['id']}/status", json={"disabled": True},
                      headers=staff)
    assert resp.status_code == 403 and resp.get_json()["code"] == "forbidden"
    assert count(app, ApiClient) == clients and count(app, ApiKey) == keys
    assert authenticated_status(client, created["api_key"]["api_key"]) == 403


@pytest.mark.parametrize("body", [{"name": "无类型"}, {"name": "坏类型", "kind": "casino"},
                                  {"name": "空类型", "kind": None}])
def test_partner_without_a_valid_kind_is_refused_naming_kind(
        app: Flask, client: FlaskClient, operator: dict[str, str], body: dict[str, Any]) -> None:
    clients = count(app, ApiClient)
    resp = client.post("/v1/admin/partners", json=body, headers=operator)
    assert resp.status_code == 422
    problem = resp.get_json()
    assert problem["code"] == "validation_error"
    assert [e["field"] for e in problem["errors"]] == ["kind"]
    assert count(app, ApiClient) == clients


def test_list_is_paginated_with_bounded_page_size(
        app: Flask, client: FlaskClient, operator: dict[str, str]) -> None:
    for _ in range(3):
        api_client_headers(client, operator, "providers")
    for bad in ("0", "1000", "-1", "abc"):
        resp = client.get(f"/v1/admin/providers?page_size={bad}", headers=operator)
        assert resp.status_code == 422, bad
        problem = resp.get_json()
        assert problem["code"] == "validation_error"
        assert [e["field"] for e in problem["errors"]] == ["page_size"]
    resp = client.get("/v1/admin/providers?page=0", headers=operator)
    assert resp.status_code == 422
    assert [e["field"] for e in resp.get_json()["errors"]] == ["page"]
    resp = client.get("/v1/admin/providers?page_size=2", headers=operator)
    assert resp.status_code == 200
    body = resp.get_json()
    assert len(body["items"]) == 2
    assert body["meta"] == {"page": 1, "page_size": 2, "total": 3}
    page2 = client.get("/v1/admin/providers?page_size=2&page=2", headers=operator).get_json()
    assert len(page2["items"]) == 1
    assert not {i["id"] for i in page2["items"]} & {i["id"] for i in body["items"]}


# ---- the in-process cache of authenticated keys (auth/keycache.py) ------------------------

class FrozenClock:
    """The cache's monotonic clock, moved by hand: no test here waits for an expiry."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def frozen_cache(app: Flask) -> FrozenClock:
    clock = FrozenClock()
    app.extensions["xinyi"].api_keys = KeyCache(0.5, clock=clock)
    return clock


def revoke_behind_the_apps_back(app: Flask, key_id: str) -> None:
    """As another process would: the row changes, this process's cache is not told."""
    with app.extensions["xinyi"].db.session() as s:
        s.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=datetime.now(UTC)))
        s.commit()


def test_a_cached_key_is_trusted_only_until_its_ttl_and_never_for_a_wrong_secret(
        app: Flask, client: FlaskClient, operator: dict[str, str],
        frozen_cache: FrozenClock) -> None:
    _, created = api_client_headers(client, operator, "partners")
    real, key_id = created["api_key"]["api_key"], created["api_key"]["id"]
    assert authenticated_status(client, real) == 403  # read from the database, now cached
    revoke_behind_the_apps_back(app, key_id)
    # The cache answers for the right secret (so it is in use) ...
    frozen_cache.now += 0.49
    assert authenticated_status(client, real) == 403
    # ... but a wrong secret for the same key id never meets that entry: refused.
    wrong = f"xyk_{key_id}_{secrets.token_urlsafe(32)}"
    assert authenticated_status(client, wrong) == 401
    assert authenticated_status(client, real[:-1] + ("A" if real[-1] != "A" else "B")) == 401
    # Half a second after the read began, the database is asked again: revoked.
    frozen_cache.now += 0.01
    assert authenticated_status(client, real) == 401
    frozen_cache.now += 10
    assert authenticated_status(client, real) == 401  # a refusal is never cached as a pass


@pytest.mark.parametrize("cut_off", ["revoke", "disable"])
def test_revoking_or_disabling_through_the_admin_api_clears_this_processs_cache(
        app: Flask, client: FlaskClient, operator: dict[str, str],
        frozen_cache: FrozenClock, cut_off: str) -> None:
    _, created = api_client_headers(client, operator, "partners")
    cid, real = created["id"], created["api_key"]["api_key"]
    other_headers, _ = api_client_headers(client, operator, "partners")
    other = other_headers["Authorization"].removeprefix("Bearer ")
    assert authenticated_status(client, real) == 403
    assert authenticated_status(client, other) == 403
    if cut_off == "revoke":
        resp = client.delete(f"/v1/admin/partners/{cid}/keys/{created['api_key']['id']}",
                             headers=operator)
        assert resp.status_code == 204
    else:
        resp = client.put(f"/v1/admin/partners/{cid}/status", json={"disabled": True},
                          headers=operator)
        assert resp.status_code == 200
    # The clock has not moved: only the cleared cache can explain the refusal.
    assert authenticated_status(client, real) == 401
    assert authenticated_status(client, other) == 403  # everyone else is simply read again


def test_a_failed_revocation_leaves_the_cache_alone(
        app: Flask, client: FlaskClient, operator: dict[str, str],
        frozen_cache: FrozenClock) -> None:
    """The cache is cleared after the commit, not before: an unknown key id changes nothing."""
    _, created = api_client_headers(client, operator, "partners")
    real = created["api_key"]["api_key"]
    assert authenticated_status(client, real) == 403
    revoke_behind_the_apps_back(app, created["api_key"]["id"])
    resp = client.delete(f"/v1/admin/partners/{created['id']}/keys/{secrets.token_hex(8)}",
                         headers=operator)
    assert resp.status_code == 404
    assert authenticated_status(client, real) == 403  # still the cached (stale) entry


def test_the_cache_counts_its_ttl_from_the_start_of_the_read_and_is_at_most_a_second() -> None:
    clock = FrozenClock()
    cache = KeyCache(0.5, clock=clock)
    who = Principal(kind="partner", id=uuid.uuid4(), key_id="ab")
    started = cache.started()
    clock.now += 0.4  # a slow database read
    cache.put("ab", b"h", who, started)
    assert cache.get("ab", b"h") is who
    assert cache.get("ab", b"other") is None and cache.get("ac", b"h") is None
    clock.now += 0.1
    assert cache.get("ab", b"h") is None
    with pytest.raises(ValueError):
        KeyCache(1.5)
    off = KeyCache(0)
    off.put("ab", b"h", who, off.started())
    assert off.get("ab", b"h") is None
