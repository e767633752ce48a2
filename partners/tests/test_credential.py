"""verify_offline: the offline check of the XY1: QR credential (DESIGN.md §5)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from _support import (
    ISSUER,
    NOW,
    Signer,
    b64url,
    forge,
    jwks_of,
    rfc7638_thumbprint,
    sign_raw,
)
from xinyi_partner import CredentialError, SeenJtiCache, VerifiedCredential, verify_offline
from xinyi_partner import credential as credential_module

T = int(NOW.timestamp())


def refused(payload: str, jwks: dict[str, Any], **kwargs: Any) -> CredentialError:
    with pytest.raises(CredentialError) as info:
        verify_offline(payload, jwks, now=kwargs.pop("now", NOW), **kwargs)
    return info.value


# --------------------------------------------------------------------------- the happy path


def test_rfc8037_thumbprint_vector() -> None:
    # RFC 8037 Appendix A.3: the test key's RFC 7638 thumbprint.
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert rfc7638_thumbprint(x) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    assert credential_module._thumbprint(x) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_valid_credential_verifies(signer: Signer, jwks: dict[str, Any]) -> None:
    claims = signer.claims()
    payload = signer.token(**claims)
    result = verify_offline(payload, jwks, now=NOW)
    assert isinstance(result, VerifiedCredential)
    assert result.subject == claims["sub"]
    assert result.jti == claims["jti"]
    assert result.tier == "AA"
    assert result.benefits == ("library.deposit_free", "bike.deposit_free")
    assert result.kid == signer.kid
    assert result.issuer == ISSUER
    assert result.issued_at == datetime.fromtimestamp(claims["iat"], UTC)
    assert result.expires_at == datetime.fromtimestamp(claims["exp"], UTC)
    assert result.issued_at.tzinfo is UTC and result.expires_at.tzinfo is UTC
    with pytest.raises(AttributeError):
        result.tier = "AAA"  # type: ignore[misc]


def test_valid_credential_with_the_real_clock(signer: Signer, jwks: dict[str, Any]) -> None:
    iat = int(time.time())
    assert verify_offline(signer.token(iat=iat, exp=iat + 120), jwks).jti


def test_key_chosen_by_kid_among_several(jwks: dict[str, Any]) -> None:
    old, new, other = Signer(), Signer(), Signer()
    keyset = {"keys": [{"kty": "RSA", "kid": "rsa-1", "n": "AQAB", "e": "AQAB"}, old.jwk, new.jwk]}
    assert verify_offline(old.token(), keyset, now=NOW).kid == old.kid
    assert verify_offline(new.token(), keyset, now=NOW).kid == new.kid
    assert refused(other.token(), keyset).code == "unknown_key"


def test_issuer_is_checked_when_given(signer: Signer, jwks: dict[str, Any]) -> None:
    payload = signer.token()
    assert verify_offline(payload, jwks, now=NOW, issuer=ISSUER).issuer == ISSUER
    assert refused(payload, jwks, issuer="https://evil.example").code == "credential_invalid"


def test_extra_signed_claims_are_tolerated(signer: Signer, jwks: dict[str, Any]) -> None:
    assert verify_offline(signer.token(ver=2), jwks, now=NOW).tier == "AA"


# --------------------------------------------------------------------------- tampering


def test_every_single_bit_flip_is_refused(signer: Signer, jwks: dict[str, Any]) -> None:
    payload = signer.token()
    raw = payload.encode("ascii")
    codes: set[str] = set()
    for i in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[i] ^= 1 << bit
            candidate = flipped.decode("latin-1")
            with pytest.raises(CredentialError) as info:
                verify_offline(candidate, jwks, now=NOW)
            codes.add(info.value.code)
    assert codes <= {"credential_invalid", "unknown_key"}
    assert verify_offline(payload, jwks, now=NOW).jti  # the original still verifies


def test_every_truncation_is_refused(signer: Signer, jwks: dict[str, Any]) -> None:
    payload = signer.token()
    for cut in range(len(payload)):
        assert refused(payload[:cut], jwks).code == "credential_invalid"
    assert refused(payload + "A", jwks).code == "credential_invalid"
    assert refused(payload + "=", jwks).code == "credential_invalid"
    assert refused(payload + ".", jwks).code == "credential_invalid"


def test_non_canonical_signature_encoding_is_refused(signer: Signer, jwks: dict[str, Any]) -> None:
    payload = signer.token()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = payload[-1]
    assert alphabet.index(last) % 16 == 0  # the 4 trailing bits of a 64-byte value are zero
    twin = payload[:-1] + alphabet[alphabet.index(last) + 1]
    sig, twin_sig = payload.rsplit(".", 1)[1], twin.rsplit(".", 1)[1]
    # A lenient decoder reads the same 64 bytes from both spellings ...
    assert base64.urlsafe_b64decode(sig + "==") == base64.urlsafe_b64decode(twin_sig + "==")
    # ... but only the canonical one is accepted.
    assert refused(twin, jwks).code == "credential_invalid"


def test_signature_by_another_key_with_our_kid_is_refused(
    signer: Signer, jwks: dict[str, Any]
) -> None:
    impostor = Signer()
    payload = impostor.token(headers={"kid": signer.kid})
    error = refused(payload, jwks)
    assert error.code == "credential_invalid"
    assert "signature" in error.detail


def test_claims_swapped_between_tokens_are_refused(signer: Signer, jwks: dict[str, Any]) -> None:
    a, b = signer.token(tier="C"), signer.token(tier="AAA")
    ha, pa, _ = a.split(".")
    _, pb, sb = b.split(".")
    assert refused(f"{ha}.{pb}.{a.rsplit('.', 1)[1]}", jwks).code == "credential_invalid"
    assert refused(f"{ha}.{pa}.{sb}", jwks).code == "credential_invalid"


# --------------------------------------------------------------------------- size and shape


def _padded_token(signer: Signer, total_length: int) -> str | None:
    """A validly signed payload of exactly ``total_length`` characters, if one exists."""
    for pad in range(total_length):
        payload = signer.token(pad="p" * pad)
        if len(payload) == total_length:
            return payload
        if len(payload) > total_length:
            return None
    return None


def test_oversized_payload_is_refused_before_decoding(
    signer: Signer, jwks: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    at_limit = _padded_token(signer, 2048)
    assert at_limit is not None
    assert verify_offline(at_limit, jwks, now=NOW).jti  # 2048 bytes is allowed
    over = next(p for p in (_padded_token(signer, n) for n in range(2049, 2053)) if p)

    calls: list[str] = []

    def spy(name: str, real: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(jwt, "decode", spy("decode", jwt.decode))
    monkeypatch.setattr(base64, "urlsafe_b64decode", spy("b64", base64.urlsafe_b64decode))

    verify_offline(at_limit, jwks, now=NOW)
    assert {"decode", "b64"} <= set(calls)  # the spies do see normal decoding
    calls.clear()

    for payload in (over, "XY1:" + "A" * 5000, "XY1:" + "A" * 2045, "中" * 700):
        assert refused(payload, jwks).code == "credential_invalid"
    assert calls == []  # nothing was decoded


def test_wrong_prefix_is_refused(signer: Signer, jwks: dict[str, Any]) -> None:
    payload = signer.token()
    bare = payload.removeprefix("XY1:")
    for wrong in (bare, "XY2:" + bare, "xy1:" + bare, "XY1 " + bare, " " + payload, "XY1:"):
        assert refused(wrong, jwks).code == "credential_invalid"


def test_garbage_is_refused(jwks: dict[str, Any]) -> None:
    for junk in ("", "XY1:a.b.c", "XY1:...", "XY1:" + "A" * 86, "\x00" * 10):
        assert refused(junk, jwks).code == "credential_invalid"
    assert refused(b"XY1:abc", jwks).code == "credential_invalid"  # type: ignore[arg-type]


# --------------------------------------------------------------------------- algorithm attacks


def test_hs256_signed_with_the_public_key_is_refused(signer: Signer, jwks: dict[str, Any]) -> None:
    headers = {"kid": signer.kid, "typ": "xy-cred+jwt"}
    for secret in (signer.public_raw, signer.x.encode()):
        token = jwt.encode(signer.claims(), secret, algorithm="HS256", headers=headers)
        assert refused("XY1:" + token, jwks).code == "credential_invalid"


def test_hs512_with_an_ed25519_sized_signature_is_refused_by_alg(
    signer: Signer, jwks: dict[str, Any]
) -> None:
    # HS512 gives 64 bytes, the size of an Ed25519 signature, so only the alg pin stops it.
    header = {"alg": "HS512", "kid": signer.kid, "typ": "xy-cred+jwt"}
    body = signer.claims()
    unsigned = forge(header, body, b"\0" * 64).removeprefix("XY1:").rsplit(".", 1)[0]
    mac = hmac.new(signer.public_raw, unsigned.encode(), hashlib.sha512).digest()
    error = refused(f"XY1:{unsigned}.{b64url(mac)}", jwks)
    assert error.code == "credential_invalid"
    assert "EdDSA" in error.detail


def test_a_symmetric_key_with_our_kid_in_the_jwks_is_never_used(signer: Signer) -> None:
    keyset = {"keys": [{"kty": "oct", "k": b64url(signer.public_raw), "kid": signer.kid}]}
    assert refused(signer.token(), keyset).code == "unknown_key"


def test_alg_none_is_refused(signer: Signer, jwks: dict[str, Any]) -> None:
    headers = {"kid": signer.kid, "typ": "xy-cred+jwt"}
    unsigned = jwt.encode(signer.claims(), None, algorithm="none", headers=headers)  # type: ignore[arg-type]
    assert refused("XY1:" + unsigned, jwks).code == "credential_invalid"
    # alg none with a real signature pasted on
    real_sig = signer.token().rsplit(".", 1)[1]
    assert refused("XY1:" + unsigned + real_sig, jwks).code == "credential_invalid"
    for alg in ("none", "None", "NONE", "eddsa", "Ed25519", "ES256"):
        header = {"alg": alg, "kid": signer.kid, "typ": "xy-cred+jwt"}
        assert refused(forge(header, signer.claims(), b"\0" * 64), jwks).code == (
            "credential_invalid"
        )


@pytest.mark.parametrize(
    "headers",
    [
        {"typ": "JWT"},
        {"typ": "XY-CRED+JWT"},
        {"typ": None},
        {"crit": ["exp"]},
        {"jku": "https://evil.example/jwks.json"},
        {"kid": 7},
        {"kid": ""},
    ],
)
def test_bad_headers_are_refused(
    signer: Signer, jwks: dict[str, Any], headers: dict[str, Any]
) -> None:
    header = {"alg": "EdDSA", "kid": signer.kid, "typ": "xy-cred+jwt", **headers}
    header = {k: v for k, v in header.items() if v is not None}
    # Signed properly with our key: only the header makes it wrong.
    assert refused(sign_raw(signer, header, signer.claims()), jwks).code == "credential_invalid"


# --------------------------------------------------------------------------- keys


def test_unknown_kid(signer: Signer, jwks: dict[str, Any]) -> None:
    assert refused(Signer().token(), jwks).code == "unknown_key"
    assert refused(signer.token(), {"keys": []}).code == "unknown_key"
    assert refused(signer.token(), {}).code == "unknown_key"
    assert refused(signer.token(headers={"kid": "not-a-kid"}), jwks).code == "unknown_key"


def test_jwks_entry_whose_kid_is_not_its_thumbprint_is_unusable(signer: Signer) -> None:
    other = Signer()
    keyset = {"keys": [{**other.jwk, "kid": signer.kid}]}
    assert refused(signer.token(), keyset).code == "unknown_key"


@pytest.mark.parametrize(
    "change", [{"crv": "Ed448"}, {"kty": "EC"}, {"use": "enc"}, {"alg": "ES256"}, {"x": "AAAA"}]
)
def test_unusable_jwks_entries(signer: Signer, change: dict[str, str]) -> None:
    assert refused(signer.token(), {"keys": [{**signer.jwk, **change}]}).code == "unknown_key"


# --------------------------------------------------------------------------- claims


@pytest.mark.parametrize("claim", ["iss", "sub", "jti", "iat", "exp", "tier", "ben"])
def test_every_required_claim(signer: Signer, jwks: dict[str, Any], claim: str) -> None:
    assert refused(signer.token(drop=[claim]), jwks).code == "credential_invalid"


@pytest.mark.parametrize(
    "overrides",
    [
        {"iat": float(T - 10), "exp": float(T + 100)},
        {"iat": str(T - 10)},
        {"exp": True},
        {"sub": ""},
        {"sub": 12345},
        {"jti": ["a"]},
        {"tier": ""},
        {"ben": "library.deposit_free"},
        {"ben": ["ok", 3]},
        {"ben": [""]},
        {"iss": 1},
        {"iat": 10**30, "exp": 10**30 + 60},
    ],
)
def test_mistyped_claims_are_refused(
    signer: Signer, jwks: dict[str, Any], overrides: dict[str, Any]
) -> None:
    header = {"alg": "EdDSA", "kid": signer.kid, "typ": "xy-cred+jwt"}
    payload = sign_raw(signer, header, signer.claims(**overrides))
    assert refused(payload, jwks).code == "credential_invalid"


def test_sign_raw_matches_pyjwt(signer: Signer, jwks: dict[str, Any]) -> None:
    header = {"alg": "EdDSA", "kid": signer.kid, "typ": "xy-cred+jwt"}
    assert verify_offline(sign_raw(signer, header, signer.claims()), jwks, now=NOW).jti


def test_empty_benefit_list_is_fine(signer: Signer, jwks: dict[str, Any]) -> None:
    assert verify_offline(signer.token(ben=[]), jwks, now=NOW).benefits == ()


def test_lifetime_over_120_seconds_is_refused(signer: Signer, jwks: dict[str, Any]) -> None:
    assert verify_offline(signer.token(iat=T - 10, exp=T + 110), jwks, now=NOW)
    for iat, exp in ((T - 10, T + 111), (T, T), (T, T - 1), (T - 1000, T + 1000)):
        assert refused(signer.token(iat=iat, exp=exp), jwks).code == "credential_invalid"


# --------------------------------------------------------------------------- time


def test_expiry_with_60_seconds_of_skew(signer: Signer, jwks: dict[str, Any]) -> None:
    for seconds_past_exp in (0, 1, 30, 59):
        payload = signer.token(iat=T - 120 - seconds_past_exp, exp=T - seconds_past_exp)
        assert verify_offline(payload, jwks, now=NOW).jti
    for seconds_past_exp in (60, 61, 3600):
        payload = signer.token(iat=T - 120 - seconds_past_exp, exp=T - seconds_past_exp)
        assert refused(payload, jwks).code == "credential_expired"


def test_leeway_is_configurable(signer: Signer, jwks: dict[str, Any]) -> None:
    payload = signer.token(iat=T - 150, exp=T - 30)
    assert verify_offline(payload, jwks, now=NOW).jti
    assert refused(payload, jwks, leeway_seconds=0).code == "credential_expired"
    with pytest.raises(ValueError):
        verify_offline(payload, jwks, now=NOW, leeway_seconds=-1)


def test_not_yet_valid(signer: Signer, jwks: dict[str, Any]) -> None:
    for ahead in (1, 30, 60):
        assert verify_offline(signer.token(iat=T + ahead, exp=T + ahead + 120), jwks, now=NOW)
    for ahead in (61, 120, 3600):
        payload = signer.token(iat=T + ahead, exp=T + ahead + 120)
        assert refused(payload, jwks).code == "credential_not_yet_valid"
    payload = signer.token(nbf=T + 100)
    assert refused(payload, jwks).code == "credential_not_yet_valid"
    assert verify_offline(payload, jwks, now=NOW + timedelta(seconds=50)).jti


def test_prefetched_consecutive_windows(signer: Signer, jwks: dict[str, Any]) -> None:
    batch = [signer.token(iat=T + 120 * i, exp=T + 120 * (i + 1)) for i in range(15)]
    for i, payload in enumerate(batch):
        at = NOW + timedelta(seconds=120 * i + 5)
        assert verify_offline(payload, jwks, now=at).jti
        if i + 2 < len(batch):
            assert refused(batch[i + 2], jwks, now=at).code == "credential_not_yet_valid"


def test_now_must_be_aware(signer: Signer, jwks: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        verify_offline(signer.token(), jwks, now=datetime(2025, 6, 1, 12, 0, 0))


# --------------------------------------------------------------------------- replay


def test_replay_is_refused_with_a_seen_cache(signer: Signer, jwks: dict[str, Any]) -> None:
    seen = SeenJtiCache()
    payload = signer.token()
    first = verify_offline(payload, jwks, seen=seen, now=NOW)
    assert refused(payload, jwks, seen=seen).code == "credential_used"
    later = NOW + timedelta(seconds=30)
    assert refused(payload, jwks, seen=seen, now=later).code == "credential_used"
    # Another credential re-using the jti is the same credential as far as replay goes.
    assert refused(signer.token(jti=first.jti), jwks, seen=seen).code == "credential_used"
    # Without the cache the SDK cannot know.
    assert verify_offline(payload, jwks, now=NOW).jti == first.jti
    # A different credential is fine.
    assert verify_offline(signer.token(), jwks, seen=seen, now=NOW).jti


def test_replay_is_remembered_until_exp_plus_leeway(signer: Signer, jwks: dict[str, Any]) -> None:
    seen = SeenJtiCache()
    payload = signer.token(iat=T, exp=T + 120)
    verify_offline(payload, jwks, seen=seen, now=NOW)
    last_valid_moment = NOW + timedelta(seconds=120 + 59)
    assert refused(payload, jwks, seen=seen, now=last_valid_moment).code == "credential_used"
    after = NOW + timedelta(seconds=180)
    assert refused(payload, jwks, seen=seen, now=after).code == "credential_expired"


def test_refused_credentials_do_not_enter_the_cache(signer: Signer, jwks: dict[str, Any]) -> None:
    seen = SeenJtiCache()
    claims = signer.claims(iat=T + 300, exp=T + 420)
    early = signer.token(**claims)
    assert refused(early, jwks, seen=seen).code == "credential_not_yet_valid"
    forged = Signer().token(headers={"kid": signer.kid}, **claims)
    assert refused(forged, jwks, seen=seen, now=NOW + timedelta(seconds=310)).code == (
        "credential_invalid"
    )
    assert len(seen) == 0
    assert verify_offline(early, jwks, seen=seen, now=NOW + timedelta(seconds=310)).jti


def test_error_codes_are_stable_strings() -> None:
    for code in (
        "credential_invalid",
        "credential_expired",
        "credential_not_yet_valid",
        "credential_used",
        "unknown_key",
    ):
        error = CredentialError(code)
        assert error.code == code and code in str(error)


def test_jwks_helper_builds_a_set(signer: Signer) -> None:
    assert jwks_of(signer)["keys"][0]["kid"] == signer.kid


# --------------------------------------------------------------------------- review findings


def test_time_claims_at_the_end_of_the_datetime_range_are_refused(
    signer: Signer, jwks: dict[str, Any]
) -> None:
    # 253402300799 is 9999-12-31T23:59:59Z: representable, but exp + leeway is not.
    header = {"alg": "EdDSA", "kid": signer.kid, "typ": "xy-cred+jwt"}
    last = 253402300799
    for iat, exp in ((last - 100, last - 1), (last - 120, last)):
        payload = sign_raw(signer, header, signer.claims(iat=iat, exp=exp))
        assert refused(payload, jwks).code == "credential_invalid"
        assert refused(payload, jwks, seen=SeenJtiCache()).code == "credential_invalid"


def test_issuer_must_match_exactly_not_as_a_substring(signer: Signer, jwks: dict[str, Any]) -> None:
    # PyJWT 2.10.0 compared a str issuer with `in` (CVE-2024-53861): "xinyi" passed.
    for iss in ("xinyi", "https://xinyi", ISSUER[:-1], "example.cn"):
        payload = signer.token(iss=iss)
        assert refused(payload, jwks, issuer=ISSUER).code == "credential_invalid"
    assert verify_offline(signer.token(), jwks, now=NOW, issuer=ISSUER).issuer == ISSUER


def test_declared_pyjwt_floor_excludes_the_issuer_substring_bug() -> None:
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    dependencies = tomllib.loads(pyproject.read_text("utf-8"))["project"]["dependencies"]
    (pyjwt,) = [r for r in map(Requirement, dependencies) if r.name.lower() == "pyjwt"]
    assert not pyjwt.specifier.contains("2.10.0")  # CVE-2024-53861
