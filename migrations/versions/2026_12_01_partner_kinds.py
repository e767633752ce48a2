"""partner kinds: the benefit rules use the admin API's partner kinds, held by a CHECK

The rules of 0002 named three kinds no partner could have (``scenic_spot``, ``campus_sport``,
``government_service``; the admin API says ``scenic``, ``campus``, ``government``), so those
benefits could never be verified. This renames them and lets the database refuse a rule for
any kind outside the vocabulary of :mod:`xinyi.partner_kinds`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here, as the vocabulary stood on 2026-12-01: a later change of xinyi.partner_kinds
# needs a migration of its own, never a silent rewrite of this one.
PARTNER_KINDS = ("library", "bike", "hospital", "hotel", "scenic", "campus", "government",
                 "other")
RENAMED = {"scenic_spot": "scenic", "campus_sport": "campus", "government_service": "government"}
CHECK = "partner_kind_known"

benefit_rules = sa.table("benefit_rules", sa.column("code", sa.String),
                         sa.column("partner_kind", sa.String))


def _rename(mapping: dict[str, str]) -> None:
    for old, new in mapping.items():
        op.execute(benefit_rules.update().where(benefit_rules.c.partner_kind == old)
                   .values(partner_kind=new))


def upgrade() -> None:
    _rename(RENAMED)
    # Staff may have added rules for some other kind: name them rather than fail on the CHECK.
    stray = op.get_bind().execute(
        sa.select(benefit_rules.c.code, benefit_rules.c.partner_kind)
        .where(benefit_rules.c.partner_kind.not_in(PARTNER_KINDS))).all()
    if stray:
        listed = ", ".join(f"{code} ({kind})" for code, kind in stray)
        raise RuntimeError(f"benefit rules with a partner kind outside {PARTNER_KINDS}: "
                           f"{listed}; change their partner_kind, then upgrade again")
    kinds = ", ".join(f"'{kind}'" for kind in PARTNER_KINDS)
    with op.batch_alter_table('benefit_rules', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f(f'ck_benefit_rules_{CHECK}'),
                                         f"partner_kind IN ({kinds})")


def downgrade() -> None:
    with op.batch_alter_table('benefit_rules', schema=None) as batch_op:
        batch_op.drop_constraint(op.f(f'ck_benefit_rules_{CHECK}'), type_='check')
    _rename({new: old for old, new in RENAMED.items()})
