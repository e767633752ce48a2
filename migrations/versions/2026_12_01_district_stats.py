"""district statistics: each subject's district (the first six digits of the ID number, kept
at creation; `xinyi subjects backfill-districts` fills the subjects stored before) and the
districts whose resident population staff set (the denominator of score coverage)

Revision ID: 0021_district_stats
Revises: 0014
Create Date: 2026-12-01 17:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_district_stats"
down_revision: str | Sequence[str] | None = "0018_commitments_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('districts',
    sa.Column('code', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('resident_population', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.Uuid(), nullable=False),
    sa.CheckConstraint('length(code) = 6', name=op.f('ck_districts_code_six_digits')),
    sa.CheckConstraint('resident_population IS NULL OR resident_population > 0', name=op.f('ck_districts_population_positive')),
    sa.ForeignKeyConstraint(['updated_by'], ['accounts.id'], name=op.f('fk_districts_updated_by_accounts')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_districts'))
    )
    # Nullable, with no default: adding it rewrites nothing, however many subjects there are.
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('district', sa.String(length=6), nullable=True))
        batch_op.create_check_constraint(op.f('ck_subjects_district_six_digits'),
                                         'district IS NULL OR length(district) = 6')
        batch_op.create_index(batch_op.f('ix_subjects_district'), ['district'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('subjects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subjects_district'))
        batch_op.drop_constraint(op.f('ck_subjects_district_six_digits'), type_='check')
        batch_op.drop_column('district')
    op.drop_table('districts')
