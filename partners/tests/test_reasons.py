"""A refusal names the check that failed (its ``reason``), never what the credential says."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from _support import ISSUER, NOW, Signer, forge
from xinyi_partner import CredentialError, SeenJtiCache, verify_offline


def refusal(payload: str, jwks: dict[str, Any], **kwargs: Any) -> CredentialError:
    with pytest.raises(CredentialError) as info:
        verify_offline(payload, jwks, now=kwargs.pop("now", NOW), **kwargs)
    return info.value


def test_each_check_has_its_own_reason(signer: Signer, jwks: dict[str, Any]) -> None:
    good = signer.token()
    head, body, signature = good.split(".")
    tampered_signature = f"{head}.{body}.{('A' if signature[0] != 'A' else 'B')}{signature[1:]}"
    seen = SeenJtiCache()
    verify_offline(good, jwks, now=NOW, seen=seen)
    cases = {
        "format": refusal("XY2:" + good[4:], jwks),
        "signature": refusal(tampered_signature, jwks),
        "issuer": refusal(good, jwks, issuer="xy"),
        "unknown_key": refusal(Signer().token(), jwks),
        "expired": refusal(good, jwks, now=NOW + timedelta(seconds=400)),
        "not_yet_valid": refusal(good, jwks, now=NOW - timedelta(seconds=400)),
        "replay": refusal(good, jwks, seen=seen),
    }
    assert {reason: error.reason for reason, error in cases.items()} == {
        reason: reason for reason in cases}
    assert cases["signature"].code == cases["issuer"].code == "credential_invalid"
    assert cases["replay"].code == "credential_used"
    assert all(error.reason in str(error) for error in cases.values())


def test_a_wrong_issuer_names_the_one_expected_and_nothing_from_the_token(
        signer: Signer, jwks: dict[str, Any]) -> None:
    error = refusal(signer.token(iss="https://api.xinyi.example.cn"), jwks, issuer="xy")
    assert error.reason == "issuer" and "'xy'" in error.detail
    assert "api.xinyi.example.cn" not in str(error)
    assert "xinyi-configuration" in error.detail


def test_no_refusal_repeats_anything_read_from_the_credential(
        signer: Signer, jwks: dict[str, Any]) -> None:
    claims = signer.claims(iss="iss-marker-7f3a", sub="sub-marker-19c2", tier="TIER-MARKER",
                           ben=["ben-marker"])
    payload = signer.token(**claims)
    forged = forge({"alg": "EdDSA", "kid": "kid-marker-0b1d", "typ": "xy-cred+jwt"}, claims,
                   b"\x00" * 64)
    errors = [refusal(payload, jwks, issuer=ISSUER), refusal(forged, jwks),
              refusal(payload, jwks, now=NOW + timedelta(hours=1)),
              refusal(payload[:-3] + "AAA", jwks), refusal(payload[:40], jwks)]
    markers = ["marker", claims["jti"], payload[4:40], payload[-20:]]
    for error in errors:
        text = json.dumps([str(error), error.detail, error.reason, error.code, repr(error)])
        assert not [m for m in markers if m in text], text


def test_the_old_constructor_still_works() -> None:
    error = CredentialError("credential_invalid", "bad signature")
    assert (error.code, error.reason, error.detail) == ("credential_invalid", "format",
                                                        "bad signature")
    assert CredentialError("credential_used").reason == "replay"
    assert CredentialError("stale_keys").reason == "stale_keys"
