"""Record a signed credit commitment (信用承诺) in the caller's unit, and check one.

The signature is an EdDSA compact JWS (``typ: xy-commitment+jwt``) by the service's
``commitment`` signing key over the commitment's id, subject-free purpose and case, the
SHA-256 of its text and the time it was given; it holds no personal data.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from xinyi.commitments.models import CreditCommitment
from xinyi.deps import Deps
from xinyi.jsonable import row
from xinyi.signing import service as signing

PURPOSES = ("repair",)
TEXTS = {
    "repair": (
        "本人郑重承诺：所提交的信用修复申请及证明材料真实、准确、完整；本人已纠正相关失信行为、"
        "履行相关义务；今后将诚实守信、依法履约。如有虚假，本人愿承担相应法律责任，"
        "并同意撤销本次信用修复决定。"),
}
JWS_TYPE = "xy-commitment+jwt"


def _claims(c: CreditCommitment) -> dict[str, Any]:
    return {"jti": str(c.id), "purpose": c.purpose, "ref": c.ref,
            "text_sha256": hashlib.sha256(c.text.encode()).hexdigest(),
            "iat": int(c.signed_at.timestamp())}


def record_commitment(session: Session, deps: Deps, subject_bidx: bytes, *, purpose: str,
                      ref: str, now: datetime) -> CreditCommitment:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown commitment purpose {purpose!r}")
    key = signing.signing_key(session, deps, "commitment")
    commitment = CreditCommitment(id=uuid.uuid4(), subject_bidx=subject_bidx, purpose=purpose,
                                  ref=ref, text=TEXTS[purpose], kid=key.kid, signature="",
                                  signed_at=now.replace(microsecond=0))
    commitment.signature = jwt.encode(_claims(commitment), key.private_key, algorithm="EdDSA",
                                      headers={"kid": key.kid, "typ": JWS_TYPE})
    session.add(commitment)
    session.flush()
    return commitment


def verify_commitment(session: Session, commitment_id: uuid.UUID) -> bool:
    """Whether the stored commitment still matches its signature."""
    commitment = session.get(CreditCommitment, commitment_id)
    if commitment is None:
        return False
    public = signing.any_public_key(session, commitment.kid)
    if public is None:
        return False
    try:
        claims = jwt.decode(commitment.signature, public, algorithms=["EdDSA"],
                            options={"verify_iat": False})
    except jwt.InvalidTokenError:
        return False
    return bool(claims == _claims(commitment))


def export_commitments(session: Session, deps: Deps, account_id: uuid.UUID,
                       bidx: bytes) -> list[dict[str, Any]]:
    """Every credit commitment the citizen signed, with its text and signature (export)."""
    return [row(c, "id", "purpose", "ref", "text", "kid", "signature", "signed_at")
            for c in session.scalars(select(CreditCommitment)
                                     .where(CreditCommitment.subject_bidx == bidx)
                                     .order_by(CreditCommitment.signed_at, CreditCommitment.id))]
