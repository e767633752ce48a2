"""verify_webhook: Standard Webhooks 1.0 signatures (DESIGN.md §6)."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook
from xinyi_partner import WebhookError, verify_webhook

BODY = json.dumps(
    {"type": "benefit_session.closed", "data": {"id": "bs_1", "outcome": "returned_on_time"}},
    ensure_ascii=False,
).encode("utf-8")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def signed_headers(
    secret: str,
    body: bytes = BODY,
    *,
    msg_id: str = "msg_2pE1yYbC9",
    sent_at: datetime | None = None,
) -> dict[str, str]:
    sent_at = sent_at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, sent_at, body.decode("utf-8"))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
    }


def rejected(headers: dict[str, str], body: bytes | str, secret: str, **kw: Any) -> str:
    with pytest.raises(WebhookError) as info:
        verify_webhook(headers, body, secret, **kw)
    return info.value.code


def test_valid_delivery_returns_the_body() -> None:
    secret = new_secret()
    headers = signed_headers(secret)
    assert verify_webhook(headers, BODY, secret) == json.loads(BODY)
    assert verify_webhook(headers, BODY.decode(), secret)["data"]["id"] == "bs_1"
    # The official library agrees with us on the same delivery.
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_non_ascii_body() -> None:
    secret = new_secret()
    body = json.dumps({"type": "x", "data": {"note": "信易+ 借书免押金"}}, ensure_ascii=False)
    headers = signed_headers(secret, body.encode())
    assert verify_webhook(headers, body.encode(), secret)["data"]["note"] == "信易+ 借书免押金"


def test_header_names_are_case_insensitive() -> None:
    secret = new_secret()
    headers = {k.title(): v for k, v in signed_headers(secret).items()}
    assert "Webhook-Signature" in headers
    assert verify_webhook(headers, BODY, secret)["type"] == "benefit_session.closed"
    upper = {k.upper(): v for k, v in signed_headers(secret).items()}
    assert verify_webhook(upper, BODY, secret)["type"] == "benefit_session.closed"


def test_tampered_body_is_refused() -> None:
    secret = new_secret()
    headers = signed_headers(secret)
    tampered = BODY.replace(b"returned_on_time", b"returned_late___")
    assert rejected(headers, tampered, secret) == "signature_invalid"
    assert rejected(headers, BODY + b" ", secret) == "signature_invalid"


def test_tampered_id_or_timestamp_is_refused() -> None:
    secret = new_secret()
    headers = signed_headers(secret)
    assert rejected({**headers, "webhook-id": "msg_other"}, BODY, secret) == "signature_invalid"
    moved = str(int(headers["webhook-timestamp"]) - 1)
    assert rejected({**headers, "webhook-timestamp": moved}, BODY, secret) == "signature_invalid"


def test_wrong_secret_is_refused() -> None:
    headers = signed_headers(new_secret())
    assert rejected(headers, BODY, new_secret()) == "signature_invalid"


def test_old_and_future_timestamps_are_refused() -> None:
    secret = new_secret()
    now = datetime.now(UTC)
    old = signed_headers(secret, sent_at=now - timedelta(seconds=301))
    assert rejected(old, BODY, secret) == "timestamp_too_old"
    future = signed_headers(secret, sent_at=now + timedelta(seconds=301))
    assert rejected(future, BODY, secret) == "timestamp_too_new"
    recent = signed_headers(secret, sent_at=now - timedelta(seconds=290))
    assert verify_webhook(recent, BODY, secret)


def test_tolerance_and_clock_are_configurable() -> None:
    secret = new_secret()
    sent = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
    headers = signed_headers(secret, sent_at=sent)
    assert verify_webhook(headers, BODY, secret, now=sent + timedelta(seconds=299))
    late = sent + timedelta(seconds=400)
    assert rejected(headers, BODY, secret, now=late) == "timestamp_too_old"
    assert verify_webhook(headers, BODY, secret, now=late, tolerance_seconds=600)
    assert rejected(headers, BODY, secret, now=sent + timedelta(seconds=10), tolerance_seconds=5)


def test_secret_rotation_two_signatures_one_valid() -> None:
    old_secret, new_secret_ = new_secret(), new_secret()
    a = signed_headers(old_secret)
    b = signed_headers(new_secret_, msg_id=a["webhook-id"])
    b["webhook-timestamp"] = a["webhook-timestamp"]
    b["webhook-signature"] = Webhook(new_secret_).sign(
        a["webhook-id"],
        datetime.fromtimestamp(int(a["webhook-timestamp"]), UTC),
        BODY.decode(),
    )
    both = {**a, "webhook-signature": f"{a['webhook-signature']} {b['webhook-signature']}"}
    assert verify_webhook(both, BODY, old_secret)["type"] == "benefit_session.closed"
    assert verify_webhook(both, BODY, new_secret_)["type"] == "benefit_session.closed"
    assert rejected(both, BODY, new_secret()) == "signature_invalid"


def test_one_valid_among_junk_signatures() -> None:
    secret = new_secret()
    headers = signed_headers(secret)
    good = headers["webhook-signature"]
    bogus = "v1," + base64.b64encode(secrets.token_bytes(32)).decode()
    for extra in ("v1", "garbage", "v1,!!!notbase64", "v2," + good[3:], bogus, "v1,"):
        mixed = {**headers, "webhook-signature": f"{extra}  {good}"}
        assert verify_webhook(mixed, BODY, secret)
        only_junk = {**headers, "webhook-signature": extra}
        assert rejected(only_junk, BODY, secret) == "signature_invalid"


def test_other_versions_are_ignored() -> None:
    secret = new_secret()
    headers = signed_headers(secret)
    as_v2 = {**headers, "webhook-signature": "v2," + headers["webhook-signature"][3:]}
    assert rejected(as_v2, BODY, secret) == "signature_invalid"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers(missing: str) -> None:
    secret = new_secret()
    headers = signed_headers(secret)
    del headers[missing]
    assert rejected(headers, BODY, secret) == "headers_missing"
    assert rejected({**headers, missing: ""}, BODY, secret) == "headers_missing"


@pytest.mark.parametrize("value", ["abc", "1.7e9", "-1", "01700000000", "", " ", "١٧٠٠٠٠٠٠٠٠"])
def test_bad_timestamps(value: str) -> None:
    secret = new_secret()
    headers = {**signed_headers(secret), "webhook-timestamp": value}
    assert rejected(headers, BODY, secret) in {"timestamp_invalid", "headers_missing"}


def test_signed_but_not_a_json_object() -> None:
    secret = new_secret()
    for body in (b"not json", b"[1, 2]", b'{"a": NaN}', b'"text"'):
        assert rejected(signed_headers(secret, body), body, secret) == "body_invalid"


def test_body_that_is_not_utf8() -> None:
    secret = new_secret()
    assert rejected(signed_headers(secret), b"\xff\xfe{}", secret) == "body_invalid"


@pytest.mark.parametrize("secret", ["", "whsec_", "c2VjcmV0c2VjcmV0c2VjcmV0", "whsec_***"])
def test_bad_secrets(secret: str) -> None:
    headers = signed_headers(new_secret())
    assert rejected(headers, BODY, secret) == "secret_invalid"


def test_unpadded_secret_is_accepted() -> None:
    raw = secrets.token_bytes(25)
    padded = "whsec_" + base64.b64encode(raw).decode()
    assert padded.endswith("=")
    headers = signed_headers(padded)
    assert verify_webhook(headers, BODY, padded.rstrip("="))


def test_secret_shorter_than_24_bytes_is_refused() -> None:
    # DESIGN.md §6: whsec_<base64 of at least 24 bytes>. A truncated or placeholder secret is a
    # configuration error, not a forged delivery.
    full = new_secret()
    for secret in (full[:30], "whsec_" + base64.b64encode(b"x" * 23).decode(), "whsec_dGVzdA=="):
        assert rejected(signed_headers(secret), BODY, secret) == "secret_invalid"
    twenty_four = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    assert verify_webhook(signed_headers(twenty_four), BODY, twenty_four)


def test_str_body_that_is_not_unicode_text_is_body_invalid() -> None:
    secret = new_secret()
    body = '{"type": "x", "note": "\ud800"}'  # a lone surrogate: no UTF-8 spelling exists
    assert rejected(signed_headers(secret), body, secret) == "body_invalid"
