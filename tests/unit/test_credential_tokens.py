"""The QR credential (DESIGN.md §5): issuing, verifying and refusing everything else.

The signature and the key id are also checked with joserfc, an implementation independent of
the PyJWT/cryptography code under test, and against the RFC 8037 test vectors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import warnings
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import OKPKey

from xinyi.credentials import tokens
from xinyi.credentials.tokens import (
    CredentialError,
    CredentialExpired,
    CredentialInvalid,
    CredentialNotYetValid,
    IssuedCredential,
    is_short_code,
    issue,
    issue_batch,
    normalize_short_code,
    verify,
)
from xinyi.jwk import SigningKey, jwks, keys_from_jwks, public_key_from_jwk

ISSUER = "xinyi"
NOW = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
CLAIM_NAMES = {"iss", "sub", "jti", "iat", "exp", "tier", "ben"}

# RFC 8037 Appendix A.1-A.4 (Ed25519 JWK, its RFC 7638 thumbprint, a JWS signature).
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_JWS = (
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
    ".hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def keys(key: SigningKey) -> dict[str, Ed25519PublicKey]:
    return {key.kid: key.public_key}


@pytest.fixture
def cred(key: SigningKey) -> IssuedCredential:
    return issue(key, issuer=ISSUER, tier="AA", benefits=["lib", "bike"], not_before=NOW)


def parts(payload: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    assert payload.startswith("XY1:")
    header, claims, signature = payload[4:].split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(claims)), signature


def sign(key: SigningKey, claims: dict[str, Any], **header: Any) -> str:
    """An ``XY1:`` payload over arbitrary claims/header, properly signed by ``key``.

    Built by hand (not with PyJWT, which normalises some headers and claims on encode).
    """
    protected = {"alg": "EdDSA", "kid": key.kid, "typ": "xy-cred+jwt", **header}
    segments = [
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (protected, claims)
    ]
    signing_input = ".".join(segments)
    return f"XY1:{signing_input}.{b64url(key.private_key.sign(signing_input.encode()))}"


def good_claims(**changes: Any) -> dict[str, Any]:
    iat = int(NOW.timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "c3ViamVjdC1yYW5kb20tMTI",
        "jti": "anRpLXJhbmRvbS0xMjM0NTY",
        "iat": iat,
        "exp": iat + 120,
        "tier": "A",
        "ben": ["lib"],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not ...}


def check(payload: str, keys: dict[str, Ed25519PublicKey], **kw: Any) -> tokens.VerifiedClaims:
    kw.setdefault("issuer", ISSUER)
    kw.setdefault("now", NOW)
    return verify(payload, keys, **kw)


# --------------------------------------------------------------------------- round trip


def test_round_trip(
    cred: IssuedCredential, keys: dict[str, Ed25519PublicKey], key: SigningKey
) -> None:
    got = check(cred.qr_payload, keys)
    assert got.kid == key.kid
    assert got.issuer == ISSUER
    assert got.subject == cred.subject
    assert got.jti == cred.jti
    assert got.tier == "AA"
    assert got.benefits == ("lib", "bike") == cred.benefits
    assert got.issued_at == cred.not_before == NOW
    assert got.expires_at == cred.expires_at == NOW + timedelta(seconds=120)
    assert cred.not_before.tzinfo is UTC and got.expires_at.tzinfo is UTC


def test_header_is_exactly_the_contract(cred: IssuedCredential, key: SigningKey) -> None:
    header, _, _ = parts(cred.qr_payload)
    assert header == {"alg": "EdDSA", "kid": key.kid, "typ": "xy-cred+jwt"}


def test_claims_are_only_the_listed_names(cred: IssuedCredential) -> None:
    _, claims, _ = parts(cred.qr_payload)
    assert set(claims) == CLAIM_NAMES
    assert claims["iss"] == ISSUER
    assert claims["sub"] == cred.subject and claims["jti"] == cred.jti
    assert claims["iat"] == int(NOW.timestamp())
    assert claims["exp"] == claims["iat"] + 120
    assert claims["tier"] == "AA" and claims["ben"] == ["lib", "bike"]


def test_subject_and_jti_are_fresh_random_values(key: SigningKey) -> None:
    creds = [issue(key, issuer=ISSUER, tier="A", benefits=[], not_before=NOW) for _ in range(50)]
    subjects = {c.subject for c in creds}
    jtis = {c.jti for c in creds}
    assert len(subjects) == len(jtis) == 50
    assert not subjects & jtis
    for c in creds:
        assert len(b64url_decode(c.jti)) >= 12 and len(b64url_decode(c.subject)) >= 8


def test_not_before_is_truncated_to_the_second_and_converted_to_utc(key: SigningKey) -> None:
    plus8 = datetime(2026, 3, 1, 16, 30, 0, 999_999, tzinfo=timezone(timedelta(hours=8)))
    c = issue(key, issuer=ISSUER, tier="A", benefits=[], not_before=plus8)
    assert c.not_before == NOW and c.not_before.utcoffset() == timedelta(0)
    assert parts(c.qr_payload)[1]["iat"] == int(NOW.timestamp())


def test_naive_datetimes_are_refused(key: SigningKey, cred: IssuedCredential, keys: Any) -> None:
    naive = datetime(2026, 3, 1, 8, 30)
    with pytest.raises(ValueError, match="timezone"):
        issue(key, issuer=ISSUER, tier="A", benefits=[], not_before=naive)
    with pytest.raises(ValueError, match="timezone"):
        verify(cred.qr_payload, keys, issuer=ISSUER, now=naive)


def test_issue_argument_checks(key: SigningKey) -> None:
    base: dict[str, Any] = {"issuer": ISSUER, "tier": "A", "benefits": [], "not_before": NOW}
    for bad_ttl in (0, -1, 121, 3600):
        with pytest.raises(ValueError, match="ttl"):
            issue(key, **base, ttl_seconds=bad_ttl)
    with pytest.raises(TypeError):
        issue(key, **{**base, "benefits": "lib"})
    with pytest.raises(ValueError):
        issue(key, **{**base, "issuer": ""})
    with pytest.raises(ValueError):
        issue(key, **{**base, "benefits": ["lib", ""]})
    assert issue(key, **base, ttl_seconds=1).expires_at == NOW + timedelta(seconds=1)


def test_payload_must_fit_a_version_15_qr_code(key: SigningKey) -> None:
    c = issue(key, issuer=ISSUER, tier="AAA", benefits=["lib", "bike"], not_before=NOW)
    assert len(c.qr_payload) <= tokens.MAX_QR_PAYLOAD_BYTES == 412
    with pytest.raises(ValueError, match="412"):
        issue(key, issuer=ISSUER, tier="A", benefits=["x" * 40], not_before=NOW)


def test_secrets_stay_out_of_repr(key: SigningKey, cred: IssuedCredential) -> None:
    assert cred.qr_payload not in repr(cred) and cred.short_code not in repr(cred)
    raw = key.private_bytes_raw()
    assert b64url(raw) not in repr(key) and raw.hex() not in repr(key)


# --------------------------------------------------------------------------- keys


def test_kid_is_the_rfc7638_thumbprint_computed_by_joserfc(key: SigningKey) -> None:
    jwk = key.public_jwk()
    assert jwk["kid"] == key.kid
    assert OKPKey.import_key({k: jwk[k] for k in ("kty", "crv", "x")}).thumbprint() == key.kid
    # and by hand, straight from RFC 7638 §3
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": jwk["x"]}, separators=(",", ":"))
    assert b64url(hashlib.sha256(canonical.encode()).digest()) == key.kid


def test_rfc8037_test_vectors() -> None:
    key = SigningKey.from_private_bytes_raw(b64url_decode(RFC8037_D))
    assert key.public_jwk()["x"] == RFC8037_X
    assert key.kid == RFC8037_THUMBPRINT
    signing_input, signature = RFC8037_JWS.rsplit(".", 1)
    assert b64url(key.private_key.sign(signing_input.encode())) == signature


def test_public_jwk_fields(key: SigningKey) -> None:
    jwk = key.public_jwk()
    assert set(jwk) == {"kty", "crv", "x", "kid", "use", "alg"}
    assert (jwk["kty"], jwk["crv"], jwk["use"], jwk["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")
    raw = key.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert b64url_decode(jwk["x"]) == raw and "d" not in jwk


def test_private_key_storage_round_trip(key: SigningKey, keys: Any) -> None:
    raw = key.private_bytes_raw()
    assert isinstance(raw, bytes) and len(raw) == 32
    again = SigningKey.from_private_bytes_raw(raw)
    assert again.kid == key.kid
    c = issue(again, issuer=ISSUER, tier="A", benefits=[], not_before=NOW)
    assert check(c.qr_payload, keys).jti == c.jti
    with pytest.raises(ValueError):
        SigningKey.from_private_bytes_raw(raw[:31])


def test_jwks_document_round_trips(key: SigningKey, other_key: SigningKey, cred: Any) -> None:
    doc = jwks([key.public_jwk(), other_key.public_jwk()])
    assert doc == {"keys": [key.public_jwk(), other_key.public_jwk()]}
    loaded = keys_from_jwks(json.loads(json.dumps(doc)))
    assert set(loaded) == {key.kid, other_key.kid}
    assert check(cred.qr_payload, loaded).jti == cred.jti


def test_public_key_from_jwk_refuses_a_lying_kid(key: SigningKey, other_key: SigningKey) -> None:
    jwk = {**key.public_jwk(), "kid": other_key.kid}
    with pytest.raises(ValueError, match="thumbprint"):
        public_key_from_jwk(jwk)
    with pytest.raises(ValueError):
        public_key_from_jwk({**key.public_jwk(), "crv": "X25519"})


def test_signature_verifies_with_joserfc(cred: IssuedCredential, key: SigningKey) -> None:
    jwk: dict[str, str | list[str]] = dict(key.public_jwk())
    public = OKPKey.import_key(jwk)
    with warnings.catch_warnings():
        # joserfc warns that RFC 9864 deprecates "EdDSA" in favour of "Ed25519"; the contract
        # (DESIGN.md §5) fixes "EdDSA", which verifiers still accept.
        warnings.simplefilter("ignore")
        obj = jws.deserialize_compact(cred.qr_payload[4:], public, algorithms=["EdDSA"])
        assert obj.protected == {"alg": "EdDSA", "kid": key.kid, "typ": "xy-cred+jwt"}
        assert json.loads(obj.payload) == parts(cred.qr_payload)[1]
        # and joserfc refuses it under another key
        stranger = OKPKey.generate_key("Ed25519")
        with pytest.raises(Exception, match=r"(?i)signature"):
            jws.deserialize_compact(cred.qr_payload[4:], stranger, algorithms=["EdDSA"])


# --------------------------------------------------------------------------- refusals


def test_every_flipped_byte_is_refused(cred: IssuedCredential, keys: Any) -> None:
    payload = cred.qr_payload
    tried = 0
    for i in range(len(payload)):
        for mask in (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40):
            mutated = payload[:i] + chr(ord(payload[i]) ^ mask) + payload[i + 1 :]
            with pytest.raises(CredentialInvalid):
                check(mutated, keys)
            tried += 1
    assert tried == 7 * len(payload)


def test_non_canonical_base64url_is_refused(cred: IssuedCredential, keys: Any) -> None:
    # The last character of an 86-character signature carries 2 bits; its 4 low bits must be
    # zero. A lenient decoder maps a sibling character to the same bytes. Not here.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    body, last = cred.qr_payload[:-1], cred.qr_payload[-1]
    index = alphabet.index(last)
    assert index % 16 == 0
    sibling = body + alphabet[index + 5]
    original_sig = cred.qr_payload.rsplit(".", 1)[1]
    assert b64url_decode(sibling.rsplit(".", 1)[1]) == b64url_decode(original_sig)
    with pytest.raises(CredentialInvalid):
        check(sibling, keys)
    with pytest.raises(CredentialInvalid):
        check(cred.qr_payload + "=", keys)  # padding
    with pytest.raises(CredentialInvalid):
        check(cred.qr_payload.replace(".", ".\n", 1), keys)


def test_every_truncation_is_refused(cred: IssuedCredential, keys: Any) -> None:
    for cut in range(len(cred.qr_payload)):
        with pytest.raises(CredentialInvalid):
            check(cred.qr_payload[:cut], keys)


def test_oversized_input_is_refused_before_decoding(
    cred: IssuedCredential, keys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: Any, **__: Any) -> Any:
        raise AssertionError("decoded an oversized credential")

    monkeypatch.setattr("xinyi.credentials.tokens.jwt.get_unverified_header", boom)
    monkeypatch.setattr("xinyi.credentials.tokens.jwt.decode", boom)
    monkeypatch.setattr(tokens, "b64url_decode_canonical", boom)
    header, claims, sig = cred.qr_payload[4:].split(".")
    padded = "XY1:" + header + "." + claims + "A" * (2049 - len(cred.qr_payload)) + "." + sig
    assert len(padded) == 2049
    for big in (padded, cred.qr_payload + "A" * 5000, "XY1:" + "é" * 1100):
        with pytest.raises(CredentialInvalid):
            check(big, keys)


def test_wrong_prefix_is_refused(cred: IssuedCredential, keys: Any) -> None:
    token = cred.qr_payload[4:]
    for bad in (token, "XY2:" + token, "xy1:" + token, " XY1:" + token, "XY1:XY1:" + token):
        with pytest.raises(CredentialInvalid):
            check(bad, keys)


def test_alg_none_is_refused(key: SigningKey, keys: Any) -> None:
    header = b64url(json.dumps({"alg": "none", "kid": key.kid, "typ": "xy-cred+jwt"}).encode())
    body = b64url(json.dumps(good_claims()).encode())
    for sig in ("", "A" * 86):
        with pytest.raises(CredentialInvalid):
            check(f"XY1:{header}.{body}.{sig}", keys)


def test_hs256_signed_with_the_public_key_is_refused(key: SigningKey, keys: Any) -> None:
    body = b64url(json.dumps(good_claims()).encode())
    for secret in (
        key.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw),
        key.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        key.public_jwk()["x"].encode(),
    ):
        for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
            header = b64url(json.dumps({"alg": alg, "kid": key.kid, "typ": "xy-cred+jwt"}).encode())
            mac = hmac.new(secret, f"{header}.{body}".encode(), digest).digest()
            with pytest.raises(CredentialInvalid):
                check(f"XY1:{header}.{body}.{b64url(mac)}", keys)


def test_unknown_or_mismatched_kid_is_refused(
    cred: IssuedCredential, key: SigningKey, other_key: SigningKey
) -> None:
    with pytest.raises(CredentialInvalid):
        check(cred.qr_payload, {other_key.kid: other_key.public_key})
    with pytest.raises(CredentialInvalid):
        check(cred.qr_payload, {})
    # the right kid pointing at the wrong key
    with pytest.raises(CredentialInvalid):
        check(cred.qr_payload, {key.kid: other_key.public_key})
    # signed by another key but claiming our kid
    forged = "XY1:" + jwt.encode(
        good_claims(),
        other_key.private_key,
        algorithm="EdDSA",
        headers={"kid": key.kid, "typ": "xy-cred+jwt"},
    )
    with pytest.raises(CredentialInvalid):
        check(forged, {key.kid: key.public_key})


@pytest.mark.parametrize(
    "header",
    [
        {"typ": "JWT"},
        {"typ": None},
        {"jku": "https://evil.example/jwks.json"},
        {"crit": ["exp"]},
        {"b64": True},
    ],
)
def test_headers_other_than_the_contract_are_refused(
    key: SigningKey, keys: Any, header: Any
) -> None:
    with pytest.raises(CredentialInvalid):
        check(sign(key, good_claims(), **header), keys)


def test_a_properly_signed_good_token_passes(key: SigningKey, keys: Any) -> None:
    # the control for the parametrized refusals below
    assert check(sign(key, good_claims()), keys).benefits == ("lib",)


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": ...},
        {"sub": ...},
        {"jti": ...},
        {"iat": ...},
        {"exp": ...},
        {"tier": ...},
        {"ben": ...},
        {"name": "张三"},  # any claim beyond the contract, personal data above all
        {"nbf": int(NOW.timestamp())},
        {"iss": "someone-else"},
        {"iss": [ISSUER]},
        {"sub": 42},
        {"sub": ""},
        {"jti": None},
        {"iat": float(NOW.timestamp())},
        {"iat": str(int(NOW.timestamp()))},
        {"exp": True},
        {"tier": 1},
        {"ben": "lib"},
        {"ben": ["lib", 3]},
    ],
)
def test_missing_extra_or_mistyped_claims_are_refused(
    key: SigningKey, keys: Any, changes: Any
) -> None:
    with pytest.raises(CredentialInvalid):
        check(sign(key, good_claims(**changes)), keys)


def test_lifetime_over_120_seconds_is_refused(key: SigningKey, keys: Any) -> None:
    iat = int(NOW.timestamp())
    assert check(sign(key, good_claims(exp=iat + 120)), keys)
    for exp in (iat + 121, iat + 3600, iat, iat - 1):
        with pytest.raises(CredentialInvalid):
            check(sign(key, good_claims(exp=exp)), keys)


def test_expired(cred: IssuedCredential, keys: Any) -> None:
    check(cred.qr_payload, keys, now=cred.expires_at - timedelta(microseconds=1))
    with pytest.raises(CredentialExpired):
        check(cred.qr_payload, keys, now=cred.expires_at)
    with pytest.raises(CredentialExpired):
        check(cred.qr_payload, keys, now=cred.expires_at + timedelta(days=1))
    # offline partners allow ±60 s of clock skew
    check(cred.qr_payload, keys, now=cred.expires_at + timedelta(seconds=59), leeway_seconds=60)
    with pytest.raises(CredentialExpired):
        check(cred.qr_payload, keys, now=cred.expires_at + timedelta(seconds=60), leeway_seconds=60)


def test_not_yet_valid(cred: IssuedCredential, keys: Any) -> None:
    check(cred.qr_payload, keys, now=cred.not_before)
    with pytest.raises(CredentialNotYetValid):
        check(cred.qr_payload, keys, now=cred.not_before - timedelta(seconds=1))
    check(cred.qr_payload, keys, now=cred.not_before - timedelta(seconds=60), leeway_seconds=60)
    with pytest.raises(CredentialNotYetValid):
        check(cred.qr_payload, keys, now=cred.not_before - timedelta(seconds=61), leeway_seconds=60)
    with pytest.raises(ValueError):
        check(cred.qr_payload, keys, leeway_seconds=-1)


def test_a_forged_expired_credential_is_invalid_not_expired(
    cred: IssuedCredential, keys: Any
) -> None:
    header, claims, sig = cred.qr_payload[4:].split(".")
    forged_sig = sig[:10] + ("B" if sig[10] != "B" else "C") + sig[11:]
    late = cred.expires_at + timedelta(hours=1)
    with pytest.raises(CredentialInvalid) as caught:
        check(f"XY1:{header}.{claims}.{forged_sig}", keys, now=late)
    assert type(caught.value) is CredentialInvalid


def test_error_codes() -> None:
    assert issubclass(CredentialInvalid, CredentialError)
    assert issubclass(CredentialExpired, CredentialError)
    assert issubclass(CredentialNotYetValid, CredentialError)
    assert CredentialInvalid.code == "credential_invalid"
    assert CredentialExpired.code == "credential_expired"
    assert CredentialNotYetValid.code == "credential_not_yet_valid"
    assert CredentialExpired().code == "credential_expired"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=3000), st.text().map(lambda s: "XY1:" + s)))
def test_arbitrary_input_only_ever_raises_credential_invalid(text: str) -> None:
    kp = SigningKey.from_private_bytes_raw(b64url_decode(RFC8037_D))
    with pytest.raises(CredentialInvalid):
        verify(text, {kp.kid: kp.public_key}, issuer=ISSUER, now=NOW)


def test_non_string_input_is_invalid(keys: Any) -> None:
    for value in (None, b"XY1:abc", 42):
        with pytest.raises(CredentialInvalid):
            verify(value, keys, issuer=ISSUER, now=NOW)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- batches


def test_batch_windows_are_consecutive(key: SigningKey, keys: Any) -> None:
    batch = issue_batch(key, issuer=ISSUER, tier="A", benefits=["lib"], start=NOW, count=15)
    assert len(batch) == 15
    for i, c in enumerate(batch):
        assert c.not_before == NOW + timedelta(seconds=120 * i)
        assert c.expires_at == NOW + timedelta(seconds=120 * (i + 1))
        got = check(c.qr_payload, keys, now=c.not_before)
        assert got.issued_at == c.not_before and got.jti == c.jti
        with pytest.raises(CredentialNotYetValid):
            check(c.qr_payload, keys, now=c.not_before - timedelta(seconds=1))
        with pytest.raises(CredentialExpired):
            check(c.qr_payload, keys, now=c.expires_at)
    for earlier, later in itertools.pairwise(batch):
        assert earlier.expires_at == later.not_before
    assert len({c.jti for c in batch}) == 15
    assert len({c.subject for c in batch}) == 15
    assert len({c.short_code for c in batch}) == 15


def test_batch_with_a_shorter_ttl(key: SigningKey) -> None:
    batch = issue_batch(
        key, issuer=ISSUER, tier="A", benefits=[], start=NOW, count=3, ttl_seconds=60
    )
    assert [c.not_before for c in batch] == [NOW + timedelta(seconds=60 * i) for i in range(3)]
    assert all(parts(c.qr_payload)[1]["exp"] - parts(c.qr_payload)[1]["iat"] == 60 for c in batch)


def test_batch_count_bounds(key: SigningKey) -> None:
    args: dict[str, Any] = {"issuer": ISSUER, "tier": "A", "benefits": [], "start": NOW}
    assert len(issue_batch(key, **args, count=1)) == 1
    for bad in (0, -1, 16, 100):
        with pytest.raises(ValueError, match="count"):
            issue_batch(key, **args, count=bad)
    with pytest.raises(ValueError, match="ttl"):
        issue_batch(key, **args, count=2, ttl_seconds=121)


# --------------------------------------------------------------------------- short codes


def test_short_code_is_18_digits(key: SigningKey) -> None:
    codes = {
        issue(key, issuer=ISSUER, tier="A", benefits=[], not_before=NOW).short_code
        for _ in range(200)
    }
    assert len(codes) == 200
    for code in codes:
        assert len(code) == 18 and code.isascii() and code.isdigit()
        assert is_short_code(code)


def test_short_code_keeps_leading_zeros(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def fake_randbelow(n: int) -> int:
        seen.append(n)
        return 42

    monkeypatch.setattr("xinyi.credentials.tokens.secrets.randbelow", fake_randbelow)
    assert tokens.new_short_code() == "000000000000000042"
    assert seen == [10**18]


@pytest.mark.parametrize(
    "value",
    [
        "12345678901234567",  # 17
        "1234567890123456789",  # 19
        "12345678901234567a",
        "123456789012345678\n",
        " 123456789012345678",
        "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨",  # Arabic-Indic digits
        "１２３４５６７８９０１２３４５６７８",  # full-width digits
        "",
    ],
)
def test_is_short_code_refuses(value: str) -> None:
    assert not is_short_code(value)


def test_is_short_code_accepts() -> None:
    assert is_short_code("000000000000000000")
    assert is_short_code("123456789012345678")
    assert not is_short_code(123456789012345678)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "typed",
    [
        "123456789012345678",
        "123 456 789 012 345 678",
        "123456-789012-345678",
        "1234 5678 9012 3456 78",
        "123-456 789-012 345-678",
        "1-2-3-4-5-6-7-8-9-0-1-2-3-4-5-6-7-8",
    ],
)
def test_a_short_code_typed_in_groups_is_normalized(typed: str) -> None:
    assert normalize_short_code(typed) == "123456789012345678"


@pytest.mark.parametrize(
    "typed",
    [
        "123  456 789 012 345 678",  # two separators in a row
        " 123 456 789 012 345 678",  # leading space
        "123 456 789 012 345 678 ",  # trailing space
        "-123456789012345678",
        "123\t456 789 012 345 678",  # tab
        "123\n456789012345678",
        "123.456.789.012.345.678",
        "123_456_789_012_345_678",
        "123\u3000456 789 012 345 678",  # ideographic space
        "123\u2010456789012345678",  # Unicode hyphen
        "１２３ ４５６ ７８９ ０１２ ３４５ ６７８",  # full-width digits
        "123 456 789 012 345 67",  # 17 digits
        "123 456 789 012 345 6789",  # 19 digits
        "1" * 18 + "-" * 17,
        "1-" * 40 + "1",
        "",
        "XY1:123456789012345678",
    ],
)
def test_anything_else_is_not_a_short_code(typed: str) -> None:
    assert normalize_short_code(typed) is None


def test_a_typed_short_code_is_bounded_before_it_is_matched() -> None:
    assert normalize_short_code("1 " * 5000) is None
    assert normalize_short_code(123456789012345678) is None  # type: ignore[arg-type]
