"""Closing the account (注销账户) with crypto-shredding, its replay after a restore, and the
backfill that gives citizens registered before personal keys a key of their own.

Closing is one unit: :func:`forget` asks each domain to forget the citizen through its own
public function, in turn; a domain that keeps account-only data adds one line there. The
records, the access log and other government-sourced data stay, under the subject's blind
index, so the same person registering again sees them again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from xinyi.attachments import service as attachments
from xinyi.auth import service as auth
from xinyi.citizens import service as citizens
from xinyi.consents import service as consents
from xinyi.credentials import service as credentials
from xinyi.deps import Deps
from xinyi.errors import Forbidden
from xinyi.exports import service as exports
from xinyi.notifications import service as notifications
from xinyi.privacy import shredlist
from xinyi.reports import service as reports
from xinyi.subjects import personal
from xinyi.uow import run_in_unit
from xinyi.volunteering import service as volunteering

log = logging.getLogger(__name__)


class PasswordIncorrect(Forbidden):
    code = "password_incorrect"
    title = "The password is wrong: the account was not closed"

    @classmethod
    def at_password(cls) -> PasswordIncorrect:
        return cls(errors=[{"field": "password", "location": "json",
                            "messages": ["does not match this account's password"]}])


def forget(session: Session, deps: Deps, account_id: uuid.UUID, bidx: bytes, now: datetime, *,
           before: datetime | None = None) -> bool:
    """Everything closing an account does, each domain through its own function; idempotent,
    True if anything changed. ``before`` is the closure's time when the shred list is replayed
    after a restore: what a later registration of the same person made is kept."""
    changes = [
        # Every login family revoked (access tokens die at once), phone wiped, disabled.
        auth.forget_account(session, account_id, now),
        # Each live consent revoked, each partner told (consent.revoked); requests denied.
        consents.withdraw_all(session, bidx, now, granted_before=before),
        credentials.revoke_all_of(session, account_id),
        notifications.forget(session, bidx, before=before),
        exports.forget_account(session, account_id),
        reports.forget_party(session, bidx),
        attachments.forget_unlinked(session, bidx, before=before),
        citizens.forget_citizen(session, account_id),
        # The wrapped key destroyed and the subject's copy of the ID number wiped ...
        personal.shred(session, bidx, before=before),
        # ... before the names organisations gave (any not under a live key go).
        volunteering.forget_names(session, deps, bidx),
        personal.record_shredding(session, bidx, account_id, before or now),
    ]
    return any(bool(change) for change in changes)


def close_account(session: Session, deps: Deps, account_id: uuid.UUID, *,
                  password: str) -> None:
    """Close the citizen's account (``DELETE /v1/me``) after checking the password again.
    Attempts are rate-limited per account, as logins are; a wrong password changes nothing.
    The shred list gets its line (fsynced) before the unit commits."""
    deps.limiter.hit(deps.settings.login_limit_per_phone_address, "close-account",
                     str(account_id))
    if not auth.password_matches(session, deps, account_id, password):
        log.info("account closure refused", extra={"event": "account_closure_refused"})
        raise PasswordIncorrect.at_password()
    now = deps.clock()
    # An account older than subjects made at registration gets its subject now, so that its
    # tombstone (and the subject's records, access log) has one to name.
    bidx = citizens.own_subject(session, deps, account_id, now)
    forget(session, deps, account_id, bidx, now)
    shredlist.append(deps.settings.shred_list, shredlist.Entry(bidx, account_id, now))
    log.info("account closed", extra={"event": "account_closed", "account_id": str(account_id)})


@dataclass(frozen=True)
class Replay:
    entries: int
    reapplied: int


def replay_shred_list(deps: Deps) -> Replay:
    """``xinyi restore-check``: close again, one unit each, every account on the shred list
    (after a database restore). Idempotent: an entry the database already reflects changes
    nothing."""
    total = reapplied = 0
    for entry in shredlist.entries(deps.settings.shred_list):
        total += 1

        def again(session: Session, entry: shredlist.Entry = entry) -> bool:
            return forget(session, deps, entry.account_id, entry.subject_bidx, deps.clock(),
                          before=entry.shredded_at)

        reapplied += run_in_unit(deps.db.sessions, again)
    log.info("shred list replayed", extra={"event": "shred_list_replayed", "entries": total,
                                           "reapplied": reapplied})
    return Replay(total, reapplied)


def backfill_batch(session: Session, deps: Deps, limit: int = 500) -> int:
    """Up to ``limit`` citizens registered before personal keys moved under a key of their
    own (name, ID number, phone, the subject's copy, volunteer names); returns how many."""
    now = deps.clock()
    moved = citizens.citizens_without_personal_key(session, limit)
    for account_id, bidx in moved:
        citizens.move_under_personal_key(session, deps, account_id, now)
        volunteering.reseal_names(session, deps, bidx)
    return len(moved)


def backfill(deps: Deps, batch_size: int = 500) -> int:
    """Every citizen still without a personal key, a unit per batch; 0 when none is left."""
    total = 0
    while done := run_in_unit(deps.db.sessions,
                              lambda session: backfill_batch(session, deps, batch_size)):
        total += done
    return total
