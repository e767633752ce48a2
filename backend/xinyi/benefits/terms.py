"""Each benefit's session terms: grace days after a default and the exposure cap per tier.

They live in ``benefit_session_terms`` (one row per benefit rule, edited by staff); a
benefit without a row has :data:`DEFAULT_GRACE_DAYS` and :data:`DEFAULT_CAPS`. The cap that
applies to an open is the opened benefit's cap for the citizen's tier, checked against the
citizen's exposure across every partner and benefit.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from xinyi.auth.accounts import client_names
from xinyi.benefits.models import SessionTerms
from xinyi.scoring.service import benefit_rules

DEFAULT_GRACE_DAYS: Final = 7
MAX_GRACE_DAYS: Final = 90
#: Fen; a tier not named here (B, C) has no exposure: everything is charged normally.
DEFAULT_CAPS: Final[Mapping[str, int]] = {"AAA": 500_000, "AA": 300_000, "A": 100_000}
TIERS: Final = ("AAA", "AA", "A", "B", "C")


@dataclass(frozen=True)
class Terms:
    grace_days: int = DEFAULT_GRACE_DAYS
    exposure_caps: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_CAPS))

    def cap_for(self, tier: str) -> int:
        return int(self.exposure_caps.get(tier, 0))


def terms_of(session: Session, benefit_code: str) -> Terms:
    row = session.get(SessionTerms, benefit_code)
    if row is None:
        return Terms()
    return Terms(row.grace_days, {str(k): int(v) for k, v in row.exposure_caps.items()})


def all_terms(session: Session) -> dict[str, Terms]:
    return {row.benefit_code: Terms(row.grace_days,
                                    {str(k): int(v) for k, v in row.exposure_caps.items()})
            for row in session.scalars(select(SessionTerms))}


def benefit_name(session: Session, code: str) -> str:
    for rule in benefit_rules(session):
        if rule.code == code:
            return rule.name_zh
    return code


def partner_names(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    return client_names(session, ids)
