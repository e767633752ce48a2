"""Citizen registration with real-name check, and the masked profile."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Subquery, delete, func, select
from sqlalchemy.orm import Session

from xinyi.auth import service as auth
from xinyi.auth.service import PhoneTaken, password_problems
from xinyi.citizens.models import Citizen
from xinyi.deps import Deps
from xinyi.errors import Conflict, NotFound, ValidationFailed
from xinyi.jsonable import plain
from xinyi.notify import Message
from xinyi.pii import IdNumber, InvalidIdentifier, PhoneNumber, mask_name
from xinyi.subjects import personal
from xinyi.subjects.service import ensure_subject, subjects_table
from xinyi.timeutil import china_today
from xinyi.uow import unique_or

log = logging.getLogger(__name__)
_ID_CONTEXT, _NAME_CONTEXT = "citizens.id_number", "citizens.name"
_NAME = re.compile(r"[\u3400-\u9fffA-Za-z][\u3400-\u9fffA-Za-z·.\- ]{0,63}")


class IdNumberTaken(Conflict):
    code = "id_number_taken"
    title = "An account with this ID number already exists"


class RealNameMismatch(ValidationFailed):
    code = "realname_mismatch"
    title = "The name does not match the ID number"


@dataclass(frozen=True)
class Profile:
    id: uuid.UUID
    phone: str
    name: str
    id_number: str
    created_at: datetime
    realname_verified_at: datetime


def _checked(deps: Deps, *, phone: str, password: str, name: str,
             id_number: str) -> tuple[PhoneNumber, IdNumber, str]:
    """Every field judged, and every bad one named in one refusal."""
    problems: list[tuple[str, str]] = []
    parsed_phone = parsed_id = None
    try:
        parsed_phone = PhoneNumber.parse(phone)
    except InvalidIdentifier as exc:
        problems.append(("phone", str(exc)))
    try:
        parsed_id = IdNumber.parse(id_number, today=deps.clock().date())
    except InvalidIdentifier as exc:
        problems.append(("id_number", str(exc)))
    name = name.strip()
    if not _NAME.fullmatch(name):
        problems.append(("name", "must be 1 to 64 letters or Chinese characters"))
    if weak := password_problems(password):
        problems.append(("password", "; ".join(weak)))
    if problems or parsed_phone is None or parsed_id is None:
        detail = "; ".join(f"{field}: {message}" for field, message in problems)
        raise ValidationFailed.at(*problems[0], *problems[1:], detail=detail)
    return parsed_phone, parsed_id, name


def register(session: Session, deps: Deps, *, phone: str, password: str, name: str,
             id_number: str, client_address: str) -> Profile:
    """Register a citizen (实名注册). An ID number already registered is refused (its owner
    must learn that an account exists for it); a phone number already in use is answered as
    if the account were made, and its owner is told by SMS, so that registration tells nobody
    whether a phone number has an account."""
    limits = deps.settings
    deps.limiter.hit(limits.register_limit_per_address, "register-addr", client_address)
    parsed_phone, parsed_id, name = _checked(deps, phone=phone, password=password, name=name,
                                             id_number=id_number)
    deps.limiter.hit(limits.register_limit_per_phone, "register-phone",
                     deps.bidx(parsed_phone.value, kind="phone").hex()[:32])
    if not deps.verifier.verify(parsed_id, name):
        raise RealNameMismatch()

    id_bidx = deps.bidx(parsed_id.value, kind="id_number")
    if session.scalar(select(Citizen.account_id).where(Citizen.id_number_bidx == id_bidx)):
        log.info("registration refused: ID number registered",
                 extra={"event": "registration_id_number_taken"})
        raise IdNumberTaken()
    if auth.phone_taken(session, deps, parsed_phone):
        return _phone_in_use(deps, parsed_phone, parsed_id, name, password)
    now = deps.clock()
    # Lost a race with a concurrent registration of the same phone or ID number: the same
    # answer as a sequential duplicate (create_account raises PhoneTaken for the phone).
    try:
        with unique_or(session, lambda: _taken(session, deps, parsed_phone)):
            # The citizen becomes a subject now, so a score, a pseudonym and an access log
            # can attach even before any record arrives; their personal key is made here,
            # and every personal field is sealed under it (a subject known before from
            # records, or from an account closed earlier, gets a fresh key).
            bidx = ensure_subject(session, deps, parsed_id, now)
            personal.create_key(session, deps, bidx, now)
            account_id = auth.create_account(
                session, deps, role="citizen", phone=parsed_phone, password=password, now=now,
                phone_enc=personal.seal(session, deps, bidx, parsed_phone.value,
                                        context=auth.PHONE_CONTEXT))
            citizen = Citizen(
                account_id=account_id, realname_verified_at=now,
                id_number_enc=personal.seal(session, deps, bidx, parsed_id.value,
                                            context=_ID_CONTEXT),
                id_number_bidx=id_bidx,
                name_enc=personal.seal(session, deps, bidx, name, context=_NAME_CONTEXT),
            )
            session.add(citizen)
            personal.adopt_subject(session, deps, bidx, parsed_id.value)
    except PhoneTaken:
        return _phone_in_use(deps, parsed_phone, parsed_id, name, password, hashed=True)
    deps.rescore(session, [bidx], now=now, today=china_today(now))
    log.info("citizen registered", extra={"event": "citizen_registered",
                                          "account_id": str(account_id)})
    return _profile(session, deps, citizen)


def _phone_in_use(deps: Deps, phone: PhoneNumber, id_number: IdNumber, name: str,
                  password: str, *, hashed: bool = False) -> Profile:
    """The answer a new account would get, with nothing stored; the phone's owner is told."""
    if not hashed:
        deps.passwords.hash(password)  # as long as a real registration takes
    deps.sender.send_sms(phone, Message("registration_attempt", {}))
    log.info("registration for a phone in use: owner notified",
             extra={"event": "registration_phone_in_use"})
    now = deps.clock()
    return Profile(id=uuid.uuid4(), phone=phone.masked(), name=mask_name(name),
                   id_number=id_number.masked(), created_at=now, realname_verified_at=now)


def _taken(session: Session, deps: Deps, phone: PhoneNumber) -> Conflict:
    return PhoneTaken() if auth.phone_taken(session, deps, phone) else IdNumberTaken()


def _opened(session: Session, deps: Deps, citizen: Citizen, blob: bytes | None,
            context: str) -> str:
    value = personal.reveal(session, deps, citizen.id_number_bidx, blob, context=context)
    if value is None:  # a citizen row outlives its key only in a half-restored backup
        raise NotFound("No citizen profile for this account")
    return value


def _profile(session: Session, deps: Deps, citizen: Citizen) -> Profile:
    phone = auth.account_phone_enc(session, citizen.account_id)
    return Profile(
        id=citizen.account_id,
        phone=PhoneNumber(_opened(session, deps, citizen, phone, auth.PHONE_CONTEXT)).masked(),
        name=mask_name(_opened(session, deps, citizen, citizen.name_enc, _NAME_CONTEXT)),
        id_number=IdNumber(_opened(session, deps, citizen, citizen.id_number_enc,
                                   _ID_CONTEXT)).masked(),
        created_at=registered_at(session, citizen.account_id),
        realname_verified_at=citizen.realname_verified_at,
    )


def profile(session: Session, deps: Deps, account_id: uuid.UUID) -> Profile:
    citizen = session.get(Citizen, account_id)
    if citizen is None:
        raise NotFound("No citizen profile for this account")
    return _profile(session, deps, citizen)


def registered_at(session: Session, account_id: uuid.UUID) -> datetime:
    """When the citizen registered: their login is made in the same unit as the citizen
    (:func:`register`), so it is that account's creation."""
    return auth.account_created_at(session, account_id)


def citizen_bidx(session: Session, account_id: uuid.UUID) -> bytes:
    """The blind index that keys this citizen's records (their subject)."""
    bidx = session.scalar(select(Citizen.id_number_bidx).where(
        Citizen.account_id == account_id))
    if bidx is None:
        raise NotFound("No citizen profile for this account")
    return bidx


# ---- query pieces for the domains that know a citizen by account (credentials, records) ----

def citizen_phone(session: Session, deps: Deps, bidx: bytes) -> PhoneNumber | None:
    """The phone of the citizen whose subject is ``bidx``, to text them; None if that person
    has no account (a subject known only from a provider's records)."""
    account_id = session.scalar(select(Citizen.account_id).where(Citizen.id_number_bidx == bidx))
    if account_id is None:
        return None
    phone = personal.reveal(session, deps, bidx, auth.account_phone_enc(session, account_id),
                            context=auth.PHONE_CONTEXT)
    return None if phone is None else PhoneNumber(phone)


def citizen_subjects() -> Subquery:
    """``(account_id, bidx)``: each citizen's account and the subject that keys their data."""
    return (select(Citizen.account_id, Citizen.id_number_bidx.label("bidx"))
            .subquery("citizen_subjects"))


def citizen_id_number(session: Session, deps: Deps, account_id: uuid.UUID) -> IdNumber:
    """The citizen's ID number, decrypted (never to be shown or logged unmasked)."""
    citizen = session.get(Citizen, account_id)
    if citizen is None:
        raise NotFound("No citizen profile for this account")
    return IdNumber(_opened(session, deps, citizen, citizen.id_number_enc, _ID_CONTEXT))


def registered_count(session: Session) -> int:
    """How many citizens have registered."""
    return int(session.scalar(select(func.count()).select_from(Citizen)) or 0)


def export_profile(session: Session, deps: Deps, account_id: uuid.UUID,
                   bidx: bytes) -> dict[str, Any]:
    """The citizen's own profile for their export, unmasked (it is theirs)."""
    citizen = session.get(Citizen, account_id)
    if citizen is None:
        raise NotFound("No citizen profile for this account")
    return {
        "account_id": str(account_id),
        "name": _opened(session, deps, citizen, citizen.name_enc, _NAME_CONTEXT),
        "id_number": _opened(session, deps, citizen, citizen.id_number_enc, _ID_CONTEXT),
        "phone": _opened(session, deps, citizen, auth.account_phone_enc(session, account_id),
                         auth.PHONE_CONTEXT),
        "registered_at": plain(registered_at(session, account_id)),
        "realname_verified_at": plain(citizen.realname_verified_at),
        "subject": bidx.hex(),
    }
# ---- personal keys and closing the account (the privacy domain orchestrates) ----------------

def citizens_without_personal_key(session: Session, limit: int) -> list[tuple[uuid.UUID, bytes]]:
    """``(account_id, bidx)`` of up to ``limit`` citizens registered before personal keys."""
    return [(a, bytes(b)) for a, b in session.execute(
        select(Citizen.account_id, Citizen.id_number_bidx)
        .where(personal.keyless(Citizen.id_number_bidx))
        .order_by(Citizen.id_number_bidx).limit(limit))]


def move_under_personal_key(session: Session, deps: Deps, account_id: uuid.UUID,
                            now: datetime) -> bytes:
    """Give a citizen registered before personal keys their key, and seal their name, ID
    number, phone and the subject's copy under it; returns the subject. Idempotent."""
    bidx = own_subject(session, deps, account_id, now)
    citizen = session.get(Citizen, account_id)
    assert citizen is not None  # own_subject found it
    personal.create_key(session, deps, bidx, now)
    citizen.name_enc = personal.reseal(session, deps, bidx, citizen.name_enc,
                                       context=_NAME_CONTEXT)
    citizen.id_number_enc = personal.reseal(session, deps, bidx, citizen.id_number_enc,
                                            context=_ID_CONTEXT)
    phone = auth.account_phone_enc(session, account_id)
    if phone is not None:
        auth.set_account_phone_enc(session, account_id, personal.reseal(
            session, deps, bidx, phone, context=auth.PHONE_CONTEXT))
    personal.reseal_subject(session, deps, bidx)
    return bidx


def own_subject(session: Session, deps: Deps, account_id: uuid.UUID, now: datetime) -> bytes:
    """The citizen's subject, created if missing (an account older than subjects made at
    registration): keys, pseudonyms and the access log all hang off it."""
    bidx = citizen_bidx(session, account_id)
    if session.scalar(select(subjects_table().c.bidx)
                      .where(subjects_table().c.bidx == bidx)) is None:
        ensure_subject(session, deps, citizen_id_number(session, deps, account_id), now)
    return bidx


def forget_citizen(session: Session, account_id: uuid.UUID) -> bool:
    """Remove the citizen's own row (name, ID number and its blind index), so the same
    person may register again; their subject and its records stay. Idempotent."""
    result = session.execute(delete(Citizen).where(Citizen.account_id == account_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]
