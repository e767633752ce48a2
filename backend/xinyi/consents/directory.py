"""The public partner directory (合作机构名录): a citizen grants a consent by choosing a partner.

A consent names the partner by id, which no citizen could know. The directory lists each
partner that is not disabled with what a citizen needs to choose: its name and kind, the
benefits it offers (the rules for its kind) and the consent scopes it may ask for. It is
composed here, above both domains, because auth must not know the scoring rules. Keys,
secrets and contact data stay in auth: :class:`~xinyi.auth.service.ClientRef` carries none.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.orm import Session

from xinyi.auth.service import active_partners
from xinyi.consents.models import SCOPES
from xinyi.scoring.service import BenefitView, benefit_rules


@dataclass(frozen=True)
class DirectoryEntry:
    """``DirectoryPartnerOut``."""

    id: uuid.UUID
    name: str
    kind: str | None
    benefits: list[BenefitView]
    # Every partner may ask for every scope today; the citizen still decides each request.
    scopes: tuple[str, ...] = SCOPES


def partner_directory(session: Session, *, page: int,
                      page_size: int) -> tuple[list[DirectoryEntry], int]:
    partners, total = active_partners(session, page=page, page_size=page_size)
    offered: defaultdict[str | None, list[BenefitView]] = defaultdict(list)
    for rule in benefit_rules(session):
        offered[rule.partner_kind].append(rule)
    return [DirectoryEntry(p.id, p.name, p.kind, offered[p.kind]) for p in partners], total
