"""Signed checkpoints over the per-subject access-log chains.

Each checkpoint covers a time window contiguous with the previous one and signs
``SHA-256(prev_digest ‖ sorted(subject ‖ seq ‖ hash) of every chain head that moved in the
window)`` with the Ed25519 audit key. Re-hashing a chain after altering an entry passes the
chain check but no longer matches the signed heads; dropping a chain's tail does the same.
The window ends a minute in the past so transactions still in flight are not skipped.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from xinyi.audit.models import AccessLogEntry, AuditCheckpoint
from xinyi.audit.service import GENESIS, ChainProblem, verify_chains
from xinyi.deps import Deps
from xinyi.jsonable import plain
from xinyi.signing import service as signing

SETTLE = timedelta(seconds=60)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHECKPOINT_LOCK = 0x7879_6175_6469_7431  # pg_advisory_xact_lock key: "xyaudit1"


def _heads_digest(session: Session, prev: bytes, start: datetime,
                  end: datetime) -> tuple[bytes, int]:
    in_window = and_(AccessLogEntry.created_at > start, AccessLogEntry.created_at <= end)
    heads = (select(AccessLogEntry.subject_bidx.label("bidx"),
                    func.max(AccessLogEntry.seq).label("seq"))
             .where(in_window).group_by(AccessLogEntry.subject_bidx).subquery())
    rows = session.execute(
        select(AccessLogEntry.subject_bidx, AccessLogEntry.seq, AccessLogEntry.hash)
        .join(heads, and_(heads.c.bidx == AccessLogEntry.subject_bidx,
                          heads.c.seq == AccessLogEntry.seq))
        .order_by(AccessLogEntry.subject_bidx)).all()
    count = session.scalar(select(func.count()).select_from(AccessLogEntry)
                           .where(in_window)) or 0
    digest = hashlib.sha256(prev)
    for bidx, seq, entry_hash in rows:
        digest.update(bytes(bidx) + int(seq).to_bytes(8, "big") + bytes(entry_hash))
    return digest.digest(), int(count)


def make_checkpoint(session: Session, deps: Deps) -> AuditCheckpoint | None:
    """Sign the window since the last checkpoint; nothing to sign leaves the window open.

    Workers take turns (a transaction-scoped advisory lock on PostgreSQL, the write lock of
    ``BEGIN IMMEDIATE`` on SQLite), so two never sign from the same predecessor.
    """
    key = signing.signing_key(session, deps, "audit")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(CHECKPOINT_LOCK)))
    now = deps.clock()
    last = session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1))
    start = last.window_end if last else EPOCH
    end = now - SETTLE
    if end <= start:
        return None
    prev = last.digest if last else GENESIS
    digest, count = _heads_digest(session, prev, start, end)
    if count == 0:
        return None
    checkpoint = AuditCheckpoint(created_at=now, window_start=start, window_end=end,
                                 entries=count, prev_digest=prev, digest=digest, kid=key.kid,
                                 signature=key.private_key.sign(digest))
    session.add(checkpoint)
    session.flush()
    return checkpoint


@dataclass(frozen=True)
class AuditReport:
    entries_checked: int
    checkpoints_checked: int
    problem: str | None


def verify_all(session: Session) -> AuditReport:
    """Recompute every chain, then every checkpoint; name the first thing that fails."""
    checked, chain_problem = verify_chains(session)
    if chain_problem is not None:
        return AuditReport(checked, 0, _describe(chain_problem))
    prev = GENESIS
    done = 0
    for cp in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id)):
        if cp.prev_digest != prev:
            return AuditReport(checked, done, f"checkpoint {cp.id}: does not follow {cp.id - 1}")
        public = signing.any_public_key(session, cp.kid)
        try:
            if public is None:
                raise InvalidSignature
            public.verify(cp.signature, cp.digest)
        except InvalidSignature:
            return AuditReport(checked, done, f"checkpoint {cp.id}: signature is not valid")
        digest, count = _heads_digest(session, prev, cp.window_start, cp.window_end)
        if digest != cp.digest or count != cp.entries:
            return AuditReport(checked, done, (
                f"checkpoint {cp.id} ({cp.window_start.isoformat()} – "
                f"{cp.window_end.isoformat()}): entries were rewritten, added or removed "
                f"after signing (signed {cp.entries} entries, found {count})"))
        prev = cp.digest
        done += 1
    return AuditReport(checked, done, None)


def _describe(problem: ChainProblem) -> str:
    return (f"access-log entry {problem.entry_id} (subject {problem.subject_hex}…, "
            f"seq {problem.seq}): {problem.reason}")


def export_chain_proof(session: Session, deps: Deps, account_id: uuid.UUID,
                       bidx: bytes) -> dict[str, Any]:
    """What proves the citizen's exported chain: its head, and the latest signed checkpoint
    with the citizen's head inside it (the last entry at or before its window's end).

    The checkpoint's ``digest`` is signed (Ed25519, key ``kid``, public key ``public_jwk``);
    it covers the ``covered`` head of this chain together with every other citizen's, so the
    citizen checks the signature over the digest and that their chain passes through
    ``covered``; the service (``xinyi audit verify``) recomputes the digest itself.
    """
    head = session.execute(select(AccessLogEntry.seq, AccessLogEntry.hash)
                           .where(AccessLogEntry.subject_bidx == bidx)
                           .order_by(AccessLogEntry.seq.desc()).limit(1)).first()
    proof: dict[str, Any] = {
        "subject": bidx.hex(), "head_seq": head.seq if head else 0,
        "head_hash": bytes(head.hash).hex() if head else GENESIS.hex(), "checkpoint": None}
    latest = session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc())
                            .limit(1))
    if latest is None:
        return proof
    covered = session.execute(select(AccessLogEntry.seq, AccessLogEntry.hash).where(
        AccessLogEntry.subject_bidx == bidx, AccessLogEntry.created_at <= latest.window_end)
        .order_by(AccessLogEntry.seq.desc()).limit(1)).first()
    if covered is None:
        return proof
    proof["checkpoint"] = {
        "id": latest.id, "window_start": plain(latest.window_start),
        "window_end": plain(latest.window_end), "entries": latest.entries,
        "prev_digest": latest.prev_digest.hex(), "digest": latest.digest.hex(),
        "kid": latest.kid, "signature": latest.signature.hex(),
        "public_jwk": signing.public_jwk(session, latest.kid),
        "covered_seq": covered.seq, "covered_hash": bytes(covered.hash).hex()}
    return proof
