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
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from xinyi.audit.service import log_staff_action
from xinyi.auth.accounts import client_names, client_names_sql
from xinyi.auth.principal import Principal
from xinyi.benefits.models import SessionTerms
from xinyi.deps import Deps
from xinyi.errors import ValidationFailed
from xinyi.scoring.service import BenefitView, benefit_rules, update_benefit_rule

DEFAULT_GRACE_DAYS: Final = 7
MAX_GRACE_DAYS: Final = 90
MAX_CAP_FEN: Final = 100_000_000  # ¥1,000,000
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


def terms_columns(benefit_code: Any) -> tuple[Any, Any]:
    """``grace_days`` and ``exposure_caps`` of the terms of ``benefit_code`` (a column of
    the caller's query) as scalar subqueries, to read them in the caller's round trip; both
    NULL for a benefit without terms. :func:`terms_from` makes the terms of them."""
    where = SessionTerms.benefit_code == benefit_code
    return (select(SessionTerms.grace_days).where(where).scalar_subquery().label("grace_days"),
            select(SessionTerms.exposure_caps).where(where).scalar_subquery()
            .label("exposure_caps"))


def terms_from(grace_days: int | None, exposure_caps: Mapping[str, Any] | None) -> Terms:
    if grace_days is None or exposure_caps is None:
        return Terms()
    return Terms(grace_days, {str(k): int(v) for k, v in exposure_caps.items()})


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


def partner_names_sql() -> Any:
    """``(id, name)`` of the partners as a subquery to join (for set-based sweeps)."""
    return client_names_sql()


@dataclass(frozen=True)
class RuleView:
    """A benefit rule with its session terms, as staff see and edit it."""

    code: str
    partner_kind: str
    name_zh: str
    name_en: str
    min_score: int
    limits: dict[str, int]
    grace_days: int
    exposure_caps: dict[str, int]


def _rule_view(b: BenefitView, t: Terms) -> RuleView:
    return RuleView(b.code, b.partner_kind, b.name_zh, b.name_en, b.min_score, dict(b.limits),
                    t.grace_days, {tier: t.cap_for(tier) for tier in TIERS})


def list_rules(session: Session) -> list[RuleView]:
    terms = all_terms(session)
    return [_rule_view(b, terms.get(b.code, Terms())) for b in benefit_rules(session)]


def _as_dict(view: RuleView) -> dict[str, Any]:
    return {"min_score": view.min_score, "limits": view.limits,
            "grace_days": view.grace_days, "exposure_caps": view.exposure_caps}


def update_rule(session: Session, deps: Deps, staff: Principal, code: str,
                changes: Mapping[str, Any]) -> RuleView:
    """Change a benefit's threshold (``min_score``), its ``limits`` (replaced whole), its
    ``exposure_caps`` (per tier, fen, merged into the current ones) and ``grace_days``
    (0–90; 0: a default is recorded at the next sweep). Validated; logged with before and
    after in ``staff_actions`` in the same unit. Sessions already open keep their split;
    a changed grace applies to defaults from now on."""
    now = deps.clock()
    if not changes:
        raise ValidationFailed.at("_body", "name at least one field to change")
    caps = changes.get("exposure_caps")
    if caps is not None:
        for tier, value in caps.items():
            if tier not in TIERS:
                raise ValidationFailed.at(f"exposure_caps.{tier}",
                                          f"must be one of {', '.join(TIERS)}")
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not 0 <= value <= MAX_CAP_FEN:
                raise ValidationFailed.at(f"exposure_caps.{tier}",
                                          f"must be an integer 0 to {MAX_CAP_FEN} fen")
    grace = changes.get("grace_days")
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int)
                              or not 0 <= grace <= MAX_GRACE_DAYS):
        raise ValidationFailed.at("grace_days", f"must be an integer 0 to {MAX_GRACE_DAYS}")
    before_rule, after_rule = update_benefit_rule(
        session, code, min_score=changes.get("min_score"), limits=changes.get("limits"),
        now=now)
    row = session.scalar(select(SessionTerms).where(SessionTerms.benefit_code == code)
                         .with_for_update())
    old = Terms() if row is None else Terms(row.grace_days, dict(row.exposure_caps))
    new_caps = {tier: old.cap_for(tier) for tier in TIERS} | dict(caps or {})
    new = Terms(old.grace_days if grace is None else grace, new_caps)
    if row is None:
        session.add(SessionTerms(benefit_code=code, grace_days=new.grace_days,
                                 exposure_caps=dict(new.exposure_caps), updated_at=now))
    else:
        row.grace_days, row.exposure_caps, row.updated_at = (
            new.grace_days, dict(new.exposure_caps), now)
    session.flush()
    before, after = _rule_view(before_rule, old), _rule_view(after_rule, new)
    log_staff_action(session, actor_id=staff.id, actor_role=staff.kind,
                     action="benefit_rule.update", target=f"benefit_rule:{code}",
                     before=_as_dict(before), after=_as_dict(after), now=now)
    deps.cache.forget(("benefit-rules",))
    deps.cache.forget(("benefit-rules-list",))
    return after
