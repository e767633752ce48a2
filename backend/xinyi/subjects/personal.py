"""Personal data keys (envelope encryption) and crypto-shredding.

A registered citizen's personal fields (their name and ID number, their login's phone, the
subject's copy of the ID number that staff views show, the name a volunteer organisation
gave) are sealed under a random 32-byte data key of their own. That key is stored only
wrapped by the master data key (:class:`xinyi.pii.FieldCipher`, bound to the subject's
blind index). Closing the account deletes the wrapped key: every field sealed under it is
then noise, in this database and, once the shred list is replayed, in any restored backup.

A field under a personal key starts with the version byte 0, which no master key uses
(master versions are 1–255): ``0 || fingerprint(4) || nonce(12) || ciphertext+tag``. The
fingerprint names which of the subject's keys sealed it, so a field left from before a
re-registration reads as closed rather than as tampered. Subjects who never registered
(known only from providers' records, the bulk import) stay under the master key. Every
reader goes through :func:`reveal`, which tells the formats apart and answers None for a
field whose key is gone; staff views then show :func:`closed_reference`.

Keys are cached per unit of work (``session.info``): :func:`load` fetches a whole page's
keys in one query.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import ColumnElement, delete, exists, select, update
from sqlalchemy.orm import Session

from xinyi.deps import Deps
from xinyi.pii import DecryptionError, mask_id_number
from xinyi.subjects.models import PersonalKey, ShreddedSubject, Subject

PERSONAL_VERSION = 0
# What a wiped column holds: the personal marker and nothing else, which no key opens.
SHREDDED = bytes([PERSONAL_VERSION])
CLOSED = "account closed"
_CACHE = "xinyi.personal_keys"
_CHUNK = 1000
_MIN_SEALED = 1 + 4 + 12 + 16


@dataclass(frozen=True)
class _Key:
    aead: AESGCM
    fingerprint: bytes


def _wrap_context(bidx: bytes) -> str:
    return "personal_keys:" + bidx.hex()


def _key_of(raw: bytes) -> _Key:
    return _Key(AESGCM(raw), hashlib.sha256(raw).digest()[:4])


def _cache(session: Session) -> dict[bytes, _Key | None]:
    cache: dict[bytes, _Key | None] = session.info.setdefault(_CACHE, {})
    return cache


def load(session: Session, deps: Deps, bidxs: Iterable[bytes]) -> None:
    """Fetch the keys of these subjects (one query per 1,000) into the unit's cache: list
    views call this once for the page, then :func:`reveal` each row."""
    cache = _cache(session)
    wanted = sorted({bytes(b) for b in bidxs} - cache.keys())
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        found = {bytes(b): w for b, w in session.execute(
            select(PersonalKey.subject_bidx, PersonalKey.wrapped_key)
            .where(PersonalKey.subject_bidx.in_(chunk)))}
        for bidx in chunk:
            wrapped = found.get(bidx)
            cache[bidx] = None if wrapped is None else _key_of(bytes.fromhex(
                deps.cipher.decrypt(wrapped, context=_wrap_context(bidx))))


def _key(session: Session, deps: Deps, bidx: bytes) -> _Key | None:
    bidx = bytes(bidx)
    cache = _cache(session)
    if bidx not in cache:
        load(session, deps, [bidx])
    return cache[bidx]


def has_key(session: Session, deps: Deps, bidx: bytes) -> bool:
    return _key(session, deps, bidx) is not None


def create_key(session: Session, deps: Deps, bidx: bytes, now: datetime) -> None:
    """A fresh data key for this subject (at registration); one it has already is kept. The
    subject row must exist (the key's foreign key)."""
    if _key(session, deps, bidx) is not None:
        return
    raw = secrets.token_bytes(32)
    session.add(PersonalKey(subject_bidx=bytes(bidx), created_at=now,
                            wrapped_key=deps.cipher.encrypt(raw.hex(),
                                                            context=_wrap_context(bidx))))
    session.flush()
    _cache(session)[bytes(bidx)] = _key_of(raw)


def _aad(context: str, bidx: bytes) -> bytes:
    # The column and the subject: a field copied to another column or person fails to open.
    return context.encode() + b"|" + bytes(bidx)


def seal(session: Session, deps: Deps, bidx: bytes, plaintext: str, *, context: str) -> bytes:
    """Encrypt a personal field of this subject: under their personal key if they have one
    (registered citizens), under the master key otherwise."""
    key = _key(session, deps, bidx)
    if key is None:
        return deps.cipher.encrypt(plaintext, context=context)
    nonce = secrets.token_bytes(12)
    return (SHREDDED + key.fingerprint + nonce
            + key.aead.encrypt(nonce, plaintext.encode(), _aad(context, bidx)))


def is_personal(blob: bytes) -> bool:
    """Sealed under a personal key (or wiped), not under the master key."""
    return bytes(blob[:1]) == SHREDDED


def reveal(session: Session, deps: Deps, bidx: bytes, blob: bytes | None, *,
           context: str) -> str | None:
    """The field in the clear, or None if it was shredded (its key destroyed, or the column
    wiped). A field altered or sealed under a key this process lacks raises
    :class:`~xinyi.pii.DecryptionError`, as the master cipher does."""
    if blob is None:
        return None
    blob = bytes(blob)
    if not is_personal(blob):
        return deps.cipher.decrypt(blob, context=context)
    key = _key(session, deps, bidx)
    if key is None or blob[1:5] != key.fingerprint:
        return None
    if len(blob) < _MIN_SEALED:
        raise DecryptionError("ciphertext too short")
    try:
        return key.aead.decrypt(blob[5:17], blob[17:], _aad(context, bidx)).decode()
    except InvalidTag:
        raise DecryptionError("ciphertext failed authentication") from None


def under_current_key(session: Session, deps: Deps, bidx: bytes, blob: bytes) -> bool:
    """Whether this field is sealed under the subject's live personal key."""
    key = _key(session, deps, bidx)
    return key is not None and is_personal(blob) and bytes(blob[1:5]) == key.fingerprint


def reseal(session: Session, deps: Deps, bidx: bytes, blob: bytes, *, context: str) -> bytes:
    """The field moved under the subject's personal key (the backfill of citizens registered
    before personal keys); one already there, or already shredded, is returned as it is."""
    if is_personal(blob):
        return bytes(blob)
    return seal(session, deps, bidx, deps.cipher.decrypt(bytes(blob), context=context),
                context=context)


def closed_reference(bidx: bytes) -> str:
    """What staff see instead of a shredded person: a masked blind-index reference."""
    return f"{CLOSED} ({bytes(bidx).hex()[:8]}…)"


def masked_id_number(session: Session, deps: Deps, bidx: bytes, blob: bytes | None) -> str:
    """The subject's ID number masked for a staff view, or the closed reference."""
    value = reveal(session, deps, bidx, blob, context="subjects.id_number")
    return closed_reference(bidx) if value is None else mask_id_number(value)


# ---- the subject's own copy of the ID number -------------------------------------------------

def adopt_subject(session: Session, deps: Deps, bidx: bytes, id_number: str) -> None:
    """The subject's copy of the ID number sealed (again) under its personal key: at
    registration, and at a re-registration after the account was closed."""
    session.execute(update(Subject).where(Subject.bidx == bidx).values(
        id_number_enc=seal(session, deps, bidx, id_number, context="subjects.id_number")))


def reseal_subject(session: Session, deps: Deps, bidx: bytes) -> None:
    """The subject's copy moved under its personal key (backfill)."""
    blob = session.scalar(select(Subject.id_number_enc).where(Subject.bidx == bidx))
    if blob is not None and not is_personal(blob):
        session.execute(update(Subject).where(Subject.bidx == bidx).values(
            id_number_enc=reseal(session, deps, bidx, blob, context="subjects.id_number")))


# ---- shredding ---------------------------------------------------------------------------------

def shred(session: Session, bidx: bytes, *, before: datetime | None = None) -> bool:
    """Destroy the subject's key and wipe the subject's copy of the ID number (which may
    predate personal keys, under the master key). With ``before`` (a replay of the shred
    list), a key made after that moment belongs to a later registration and is kept, with the
    copy sealed under it. True if anything changed."""
    bidx = bytes(bidx)
    newer = None
    if before is not None:
        newer = session.scalar(select(PersonalKey.created_at).where(
            PersonalKey.subject_bidx == bidx, PersonalKey.created_at > before))
    if newer is not None:
        return False
    keys = session.execute(delete(PersonalKey).where(PersonalKey.subject_bidx == bidx))
    wiped = session.execute(update(Subject).where(
        Subject.bidx == bidx, Subject.id_number_enc != SHREDDED).values(id_number_enc=SHREDDED))
    _cache(session)[bidx] = None
    return bool(keys.rowcount or wiped.rowcount)  # type: ignore[attr-defined]


def record_shredding(session: Session, bidx: bytes, account_id: uuid.UUID,
                     now: datetime) -> bool:
    """The tombstone of a closed account (append-only); written once per account, and only
    for a subject the database knows (a backup older than the subject has none to name)."""
    if session.get(Subject, bytes(bidx)) is None or session.scalar(select(ShreddedSubject.id).where(
            ShreddedSubject.subject_bidx == bidx, ShreddedSubject.account_id == account_id)):
        return False
    session.add(ShreddedSubject(id=uuid.uuid4(), subject_bidx=bytes(bidx),
                                account_id=account_id, shredded_at=now))
    session.flush()
    return True


def keyless(bidx: Any) -> ColumnElement[bool]:
    """Query piece: the subject ``bidx`` (a column) has no personal key."""
    return ~exists(select(PersonalKey.subject_bidx).where(PersonalKey.subject_bidx == bidx))
