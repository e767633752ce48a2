"""Personal identifiers as masked value objects, field encryption and the blind index (no I/O)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date

import pytest
from stdnum.cn import ric

from tests.factories import SENSITIVE_VALUES, random_phone, valid_id_number
from xinyi.logs import redact
from xinyi.pii import (
    BlindIndex,
    DecryptionError,
    FieldCipher,
    IdNumber,
    InvalidIdentifier,
    PhoneNumber,
    mask_id_number,
    mask_name,
    mask_phone,
)

TODAY = date(2026, 1, 15)


def id_with(region: str = "110101", born: str = "19900307", seq: str = "123") -> str:
    body = region + born + seq
    number = body + ric.calc_check_digit(body + "0")
    SENSITIVE_VALUES.add(number)
    return number


def id_ending_in_x() -> str:
    for seq in range(1000):
        number = id_with(seq=f"{seq:03d}")
        if number.endswith("X"):
            return number
    raise AssertionError("no check digit X in range")  # pragma: no cover


# ---- IdNumber ----------------------------------------------------------------------------

def test_valid_id_number_parses_and_knows_its_birth_date() -> None:
    number = id_with(born="19900307")
    parsed = IdNumber.parse(number, today=TODAY)
    assert parsed.value == number
    assert parsed.birth_date == date(1990, 3, 7)


def test_id_number_with_surrounding_spaces_is_trimmed() -> None:
    number = valid_id_number()
    assert IdNumber.parse(f"  {number} ", today=TODAY).value == number


def test_lowercase_x_check_digit_is_accepted_and_normalised() -> None:
    number = id_ending_in_x()
    assert IdNumber.parse(number[:-1] + "x", today=TODAY).value == number


@pytest.mark.parametrize("mutate,reason", [
    (lambda n: n[:-1] + ("0" if n[-1] != "0" else "1"), "check digit"),
    (lambda n: n[:-2] + "X" + n[-1], "digit"),
    (lambda n: n[:17], "18 characters"),
    (lambda n: n + "1", "18 characters"),
])
def test_malformed_id_number_is_refused_without_echoing_it(
        mutate: Callable[[str], str], reason: str) -> None:
    number = valid_id_number()
    bad = mutate(number)
    with pytest.raises(InvalidIdentifier) as info:
        IdNumber.parse(bad, today=TODAY)
    assert reason in str(info.value)
    assert bad not in str(info.value) and number not in str(info.value)


def test_unknown_region_is_refused() -> None:
    with pytest.raises(InvalidIdentifier, match="region code or birth date"):
        IdNumber.parse(id_with(region="999999"), today=TODAY)


@pytest.mark.parametrize("born", ["19900230", "19901301", "19900000", "20230229"])
def test_impossible_birth_date_is_refused(born: str) -> None:
    with pytest.raises(InvalidIdentifier, match="region code or birth date"):
        IdNumber.parse(id_with(born=born), today=TODAY)


def test_leap_day_birth_date_is_accepted() -> None:
    assert IdNumber.parse(id_with(born="20000229"), today=TODAY).birth_date == date(2000, 2, 29)


@pytest.mark.parametrize("born", ["20260116", "20991231", "18991231"])
def test_future_or_implausibly_old_birth_date_is_refused(born: str) -> None:
    with pytest.raises(InvalidIdentifier, match="birth date is not plausible"):
        IdNumber.parse(id_with(born=born), today=TODAY)


def test_born_today_is_accepted() -> None:
    assert IdNumber.parse(id_with(born="20260115"), today=TODAY).birth_date == TODAY


@pytest.mark.parametrize("raw", [None, 110101199003071234, "", "x" * 33, "1" * 18])
def test_non_string_or_nonsense_id_number_is_refused(raw: object) -> None:
    with pytest.raises(InvalidIdentifier):
        IdNumber.parse(raw, today=TODAY)  # type: ignore[arg-type]


def test_id_number_repr_and_str_are_masked() -> None:
    number = valid_id_number()
    parsed = IdNumber.parse(number, today=TODAY)
    masked = number[:3] + "*" * 11 + number[-4:]
    assert str(parsed) == masked == parsed.masked() == mask_id_number(number)
    assert repr(parsed) == f"IdNumber({masked})"
    for rendered in (str(parsed), repr(parsed), f"{parsed}", f"{parsed!r}", str([parsed]),
                     str({"id": parsed})):
        assert number not in rendered


# ---- PhoneNumber -------------------------------------------------------------------------

def test_phone_number_parses_common_spellings() -> None:
    phone = random_phone()
    spaced = f"{phone[:3]} {phone[3:7]}-{phone[7:]}"
    for raw in (phone, f"+86{phone}", f" {phone} ", spaced):
        assert PhoneNumber.parse(raw).value == phone


@pytest.mark.parametrize("raw", ["12012345678", "1381234567", "138123456789", "1381234567a",
                                 "+1 13812345678", "", "１３８１２３４５６７８", None, 13812345678])
def test_invalid_phone_number_is_refused(raw: object) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        PhoneNumber.parse(raw)  # type: ignore[arg-type]
    assert "11-digit" in str(info.value)


@pytest.mark.parametrize("digits", ["０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९"])
def test_phone_number_with_non_ascii_digits_is_refused(digits: str) -> None:
    # "13" then nine non-ASCII digits: not a mobile number, and not the same account as the
    # ASCII spelling (the blind index differs), so it must not register a second account.
    phone = random_phone()
    raw = phone[:2] + "".join(digits[int(d)] for d in phone[2:])
    with pytest.raises(InvalidIdentifier, match="11-digit"):
        PhoneNumber.parse(raw)


def test_phone_number_repr_and_str_are_masked() -> None:
    phone = random_phone()
    parsed = PhoneNumber.parse(phone)
    masked = phone[:3] + "****" + phone[-4:]
    assert str(parsed) == repr(parsed)[len("PhoneNumber("):-1] == masked == mask_phone(phone)
    assert phone not in f"{parsed} {parsed!r} {[parsed]}"


def test_names_are_masked_after_the_family_name() -> None:
    assert mask_name("张三丰") == "张**"
    assert mask_name("李") == "李*"


# ---- FieldCipher -------------------------------------------------------------------------

def keys(*versions: int) -> dict[int, bytes]:
    return {v: secrets.token_bytes(32) for v in versions}


def test_cipher_round_trip_uses_a_fresh_nonce_each_time() -> None:
    cipher = FieldCipher(keys(1), 1)
    phone = random_phone()
    one = cipher.encrypt(phone, context="accounts.phone")
    two = cipher.encrypt(phone, context="accounts.phone")
    assert one != two
    assert phone.encode() not in one
    assert one[0] == 1
    assert cipher.decrypt(one, context="accounts.phone") == phone
    assert cipher.decrypt(two, context="accounts.phone") == phone


def test_cipher_round_trips_unicode() -> None:
    cipher = FieldCipher(keys(1), 1)
    blob = cipher.encrypt("阿卜杜·热合曼 😀", context="citizens.name")
    assert cipher.decrypt(blob, context="citizens.name") == "阿卜杜·热合曼 😀"


@pytest.mark.parametrize("position,flip", [
    (0, 0x03),  # version 1 → 2: a key that exists, but not the one that sealed it
    (1, 0x01), (12, 0x01),  # nonce
    (13, 0x01), (-1, 0x80),  # ciphertext, tag
])
def test_tampered_ciphertext_fails_to_decrypt(position: int, flip: int) -> None:
    cipher = FieldCipher(keys(1, 2), 1)
    blob = bytearray(cipher.encrypt(valid_id_number(), context="citizens.id_number"))
    blob[position] ^= flip
    with pytest.raises(DecryptionError, match="failed authentication"):
        cipher.decrypt(bytes(blob), context="citizens.id_number")


def test_truncated_ciphertext_fails_to_decrypt() -> None:
    cipher = FieldCipher(keys(1), 1)
    blob = cipher.encrypt(random_phone(), context="accounts.phone")
    for cut in (0, 1, 13, 28, len(blob) - 1):
        with pytest.raises(DecryptionError):
            cipher.decrypt(blob[:cut], context="accounts.phone")


def test_ciphertext_moved_to_another_column_fails_to_decrypt() -> None:
    cipher = FieldCipher(keys(1), 1)
    blob = cipher.encrypt(random_phone(), context="accounts.phone")
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, context="citizens.name")


def test_old_key_version_still_decrypts_after_rotation() -> None:
    old_keys = keys(1)
    old = FieldCipher(old_keys, 1)
    phone = random_phone()
    blob = old.encrypt(phone, context="accounts.phone")
    rotated = FieldCipher({**old_keys, **keys(2)}, 2)
    assert rotated.decrypt(blob, context="accounts.phone") == phone
    assert rotated.needs_rotation(blob)
    fresh = rotated.encrypt(phone, context="accounts.phone")
    assert fresh[0] == 2 and not rotated.needs_rotation(fresh)
    # The old deployment cannot read data written under a key it never had.
    with pytest.raises(DecryptionError, match="unknown data key version"):
        old.decrypt(fresh, context="accounts.phone")


def test_same_version_number_with_a_different_key_fails_to_decrypt() -> None:
    blob = FieldCipher(keys(1), 1).encrypt(random_phone(), context="accounts.phone")
    with pytest.raises(DecryptionError):
        FieldCipher(keys(1), 1).decrypt(blob, context="accounts.phone")


def test_cipher_refuses_a_current_version_it_has_no_key_for() -> None:
    with pytest.raises(ValueError, match="current data key version"):
        FieldCipher(keys(1), 2)


# ---- BlindIndex --------------------------------------------------------------------------

def test_blind_index_is_deterministic_keyed_and_kind_separated() -> None:
    key = secrets.token_bytes(32)
    phone = random_phone()
    index = BlindIndex(key)
    assert index(phone, kind="phone") == BlindIndex(key)(phone, kind="phone")
    assert len(index(phone, kind="phone")) == 32
    assert index(phone, kind="phone") != BlindIndex(secrets.token_bytes(32))(phone, kind="phone")
    assert index(phone, kind="phone") != index(phone, kind="id_number")
    assert index(phone, kind="phone") != index(random_phone(), kind="phone")
    assert phone.encode() not in index(phone, kind="phone")


def test_blind_index_values_stay_those_already_stored() -> None:
    # HMAC-SHA256 of "kind:value" under the key; a change would orphan every stored index.
    assert BlindIndex(bytes(range(32)))("110101199003074514", kind="id_number").hex() == (
        "ab8b28b7c8499193f3e1db9413d85bf9c15cb6b2d41e3f15e9a1c92672b8cd97")


# ---- log redaction -----------------------------------------------------------------------

def test_redact_removes_identifiers_tokens_and_secrets() -> None:
    number, x_number, phone = valid_id_number(), id_ending_in_x(), random_phone()
    jwt_like = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    secrets_ = ["xyk_0123456789abcdef_QmFzZTY0LXNlY3JldC1rZXktdmFsdWU",
                "xyr_UmVmcmVzaC10b2tlbi12YWx1ZS1oZXJl", "whsec_V2ViaG9vay1zZWNyZXQ=",
                "XY1:Q3JlZGVudGlhbC1ib2R5.c2lnbmF0dXJl"]
    SENSITIVE_VALUES.update([jwt_like, *secrets_])
    text = (f"id={number} idx={x_number.lower()} phone={phone} intl=+86{phone} "
            f"bearer {jwt_like} " + " ".join(secrets_))
    out = redact(text)
    for value in (number, x_number.lower(), phone, jwt_like, *secrets_):
        assert value not in out
    assert out.count("[id-number]") == 2
    assert out.count("[phone]") == 2
    assert "[jwt]" in out and out.count("[secret]") == 3 and "[credential]" in out


@pytest.mark.parametrize("prefix", ["xyk_0123456789abcdef_", "xyr_", "whsec_", "XY1:"])
def test_redact_removes_a_secret_whole_even_with_digit_runs_inside(prefix: str) -> None:
    # Digit runs that look like a phone or ID number inside a secret must not split it.
    for inner in ("13812345678", "110101199003071234"):
        secret = f"{prefix}ab{inner}cdTAIL"
        SENSITIVE_VALUES.add(secret)
        out = redact(f"token {secret} end")
        assert "TAIL" not in out and inner not in out, out
        assert out.startswith("token [") and out.endswith("] end")


def test_redact_leaves_ordinary_text_and_ids_alone() -> None:
    text = "request 3f2a9c1e took 12ms; account 5d1e2c3b-0a4f-4e8e-9d2b-1f0e3c4b5a69; n=1234567"
    assert redact(text) == text


def test_redact_catches_a_phone_next_to_chinese_text_but_not_inside_a_uuid() -> None:
    from xinyi.logs import redact

    assert redact("手机13812345678号") == "手机[phone]号"
    assert redact("client 8a3c13812345678b-0000") == "client 8a3c13812345678b-0000"
