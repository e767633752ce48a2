"""Personal identifiers as values that cannot print themselves, and their protection at rest.

An ID number (公民身份号码, GB 11643) or phone number is validated once at the edge and carried
as a value object whose ``repr``/``str`` are masked, so a stray log line or f-string cannot leak
it. At rest both are AES-256-GCM encrypted under a versioned key and found by a keyed blind
index (HMAC-SHA256), so the database alone reveals nothing and lookups still use an index.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

_PHONE = re.compile(r"1[3-9][0-9]{9}")  # not \d: it also matches fullwidth and other digits


class InvalidIdentifier(ValueError):
    """The value is not a valid identifier; the message never repeats the value."""


@dataclass(frozen=True, slots=True)
class IdNumber:
    """A valid 18-character resident ID number (region, real birth date, check digit)."""

    value: str

    @classmethod
    def parse(cls, raw: str, *, today: date | None = None) -> IdNumber:
        if not isinstance(raw, str) or len(raw) > 32:
            raise InvalidIdentifier("must be an 18-character resident ID number")
        try:
            number = ric.validate(raw.strip())
            born = ric.get_birth_date(number)
        except ValidationError as exc:
            reason = {
                "InvalidLength": "must be 18 characters",
                "InvalidFormat": "must be 17 digits followed by a digit or X",
                "InvalidChecksum": "check digit does not match",
                "InvalidComponent": "region code or birth date is not valid",
            }.get(type(exc).__name__, "is not a valid resident ID number")
            raise InvalidIdentifier(reason) from None
        if born > (today or date.today()) or born.year < 1900:
            raise InvalidIdentifier("birth date is not plausible")
        return cls(number)

    @property
    def birth_date(self) -> date:
        return ric.get_birth_date(self.value)

    def masked(self) -> str:
        return mask_id_number(self.value)

    def __repr__(self) -> str:
        return f"IdNumber({self.masked()})"

    __str__ = masked


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A mainland mobile number, 11 digits starting with 1[3-9]."""

    value: str

    @classmethod
    def parse(cls, raw: str) -> PhoneNumber:
        if not isinstance(raw, str):
            raise InvalidIdentifier("must be an 11-digit mainland mobile number")
        cleaned = raw.strip().replace(" ", "").replace("-", "")
        cleaned = cleaned.removeprefix("+86")
        if not _PHONE.fullmatch(cleaned):
            raise InvalidIdentifier("must be an 11-digit mainland mobile number")
        return cls(cleaned)

    def masked(self) -> str:
        return mask_phone(self.value)

    def __repr__(self) -> str:
        return f"PhoneNumber({self.masked()})"

    __str__ = masked


def mask_id_number(value: str) -> str:
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_phone(value: str) -> str:
    return value[:3] + "****" + value[-4:]


def mask_name(value: str) -> str:
    """Keep the family name (first character), hide the rest: 张三丰 → 张**."""
    return value[:1] + "*" * max(len(value) - 1, 1)


class DecryptionError(RuntimeError):
    """Ciphertext was altered, truncated or written under a key this process lacks."""


class FieldCipher:
    """AES-256-GCM with a one-byte key version prefix: ``version || nonce(12) || ct+tag``.

    The column name is bound as associated data, so a ciphertext copied into another
    column (phone into name, say) fails to decrypt instead of silently lying.
    """

    def __init__(self, keys: Mapping[int, bytes], current: int) -> None:
        if current not in keys:
            raise ValueError("current data key version is missing")
        self._keys = {v: AESGCM(k) for v, k in keys.items()}
        self._current = current

    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        return self.encrypt_bytes(plaintext.encode(), context=context)

    def decrypt(self, blob: bytes, *, context: str) -> str:
        return self.decrypt_bytes(blob, context=context).decode()

    def encrypt_bytes(self, plaintext: bytes, *, context: str) -> bytes:
        """:meth:`encrypt` for binary content (a built export file)."""
        nonce = secrets.token_bytes(12)
        sealed = self._keys[self._current].encrypt(nonce, plaintext, context.encode())
        return bytes([self._current]) + nonce + sealed

    def decrypt_bytes(self, blob: bytes, *, context: str) -> bytes:
        if len(blob) < 1 + 12 + 16:
            raise DecryptionError("ciphertext too short")
        aead = self._keys.get(blob[0])
        if aead is None:
            raise DecryptionError("unknown data key version")
        try:
            return aead.decrypt(blob[1:13], blob[13:], context.encode())
        except InvalidTag:
            raise DecryptionError("ciphertext failed authentication") from None

    def needs_rotation(self, blob: bytes) -> bool:
        return blob[0] != self._current


class BlindIndex:
    """Keyed HMAC so equal values can be found without storing them in the clear."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, value: str, *, kind: str) -> bytes:
        return hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).digest()
