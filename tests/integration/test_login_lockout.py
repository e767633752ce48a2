"""Login limits that stop password guessing without letting anyone lock a known phone out.

Wrong passwords are limited per (phone, address) tightly, per phone across every address
loosely, and per address: guesses from one address cost the owner, who logs in from
another, nothing; only a broad attack from many addresses closes the phone for a while.
The app here sits behind one reverse proxy, as in production: the address that counts is
the client's, from ``X-Forwarded-For``, never the proxy's.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from tests.factories import PASSWORD, TEST_REDIS_URL, make_settings, register_citizen
from xinyi.config import Settings
from xinyi.db import Database

PROXY = "10.0.0.1"


@pytest.fixture
def settings(database: Database) -> Settings:
    """Overrides conftest's: one trusted proxy in front of the app."""
    return make_settings(database.url, TEST_REDIS_URL, trust_proxy_hops=1)


def _login(client: FlaskClient, phone: str, password: str, address: str) -> Any:
    return client.post("/v1/auth/login", json={"phone": phone, "password": password},
                       headers={"X-Forwarded-For": address},
                       environ_base={"REMOTE_ADDR": PROXY})


def test_wrong_passwords_from_one_address_do_not_lock_the_owner_out(
        client: FlaskClient) -> None:
    phone = register_citizen(client)["phone"]
    codes = [_login(client, phone, "wrong-pass-1", "198.51.100.66").status_code
             for _ in range(5)]
    assert codes == [401] * 5
    # The guessing address is stopped, even with the right password ...
    resp = _login(client, phone, PASSWORD, "198.51.100.66")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    # ... the owner, elsewhere, is not.
    assert _login(client, phone, PASSWORD, "203.0.113.7").status_code == 200


def test_a_broad_attack_from_many_addresses_closes_the_phone_only(
        client: FlaskClient, redis_client: redis.Redis) -> None:
    phone = register_citizen(client)["phone"]
    other = register_citizen(client)["phone"]
    codes = [_login(client, phone, f"wrong-pass-{n}", f"198.51.100.{n // 5 + 1}").status_code
             for n in range(50)]
    assert codes == [401] * 50
    resp = _login(client, phone, PASSWORD, "203.0.113.7")
    assert resp.status_code == 429 and resp.get_json()["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) > 0
    assert _login(client, other, PASSWORD, "203.0.113.7").status_code == 200
    # Keyed by the blind index: no limiter key names the phone number.
    keys = [k.decode() for k in redis_client.scan_iter("LIMITS*")]
    assert any("login-phone" in k for k in keys)
    assert not any(phone in k or phone[-8:] in k for k in keys)
