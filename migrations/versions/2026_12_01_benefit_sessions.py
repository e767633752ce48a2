"""benefit sessions, exposure per citizen, session terms, idempotency keys, staff actions

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-01 13:48:14.745731
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('idempotent_requests',
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('operation', sa.String(length=100), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('response', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('owner_id', 'key', name=op.f('pk_idempotent_requests'))
    )
    with op.batch_alter_table('idempotent_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotent_requests_created_at'), ['created_at'], unique=False)

    op.create_table('staff_actions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=False),
    sa.Column('actor_role', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=128), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_actions'))
    )
    with op.batch_alter_table('staff_actions', schema=None) as batch_op:
        batch_op.create_index('ix_staff_actions_target_created', ['target', 'created_at'], unique=False)

    op.create_table('benefit_exposure',
    sa.Column('subject_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('open_fen', sa.Integer(), nullable=False),
    sa.Column('cap_fen', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('open_fen <= cap_fen', name=op.f('ck_benefit_exposure_benefit_exposure_within_cap')),
    sa.CheckConstraint('open_fen >= 0', name=op.f('ck_benefit_exposure_benefit_exposure_not_negative')),
    sa.ForeignKeyConstraint(['subject_bidx'], ['subjects.bidx'], name=op.f('fk_benefit_exposure_subject_bidx_subjects')),
    sa.PrimaryKeyConstraint('subject_bidx', name=op.f('pk_benefit_exposure'))
    )
    op.create_table('benefit_session_terms',
    sa.Column('benefit_code', sa.String(length=64), nullable=False),
    sa.Column('grace_days', sa.Integer(), nullable=False),
    sa.Column('exposure_caps', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('grace_days >= 0 AND grace_days <= 90', name=op.f('ck_benefit_session_terms_benefit_terms_grace_days_range')),
    sa.ForeignKeyConstraint(['benefit_code'], ['benefit_rules.code'], name=op.f('fk_benefit_session_terms_benefit_code_benefit_rules')),
    sa.PrimaryKeyConstraint('benefit_code', name=op.f('pk_benefit_session_terms'))
    )
    op.create_table('benefit_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('verification_id', sa.Uuid(), nullable=False),
    sa.Column('partner_id', sa.Uuid(), nullable=False),
    sa.Column('subject_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('benefit_code', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('waived_fen', sa.Integer(), nullable=False),
    sa.Column('charge_normally_fen', sa.Integer(), nullable=False),
    sa.Column('amount_owed_fen', sa.Integer(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('original_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('extended', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('overdue_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('defaulted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('grace_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('record_id', sa.Uuid(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("state IN ('open', 'fulfilled', 'cancelled', 'overdue', 'defaulted', 'settled', 'recorded')", name=op.f('ck_benefit_sessions_benefit_session_state_known')),
    sa.CheckConstraint('amount_fen > 0 AND waived_fen >= 0 AND charge_normally_fen >= 0 AND waived_fen + charge_normally_fen = amount_fen', name=op.f('ck_benefit_sessions_benefit_session_amounts_split')),
    sa.CheckConstraint('amount_owed_fen IS NULL OR amount_owed_fen >= 0', name=op.f('ck_benefit_sessions_benefit_session_owed_not_negative')),
    sa.ForeignKeyConstraint(['partner_id'], ['api_clients.id'], name=op.f('fk_benefit_sessions_partner_id_api_clients')),
    sa.ForeignKeyConstraint(['subject_bidx'], ['subjects.bidx'], name=op.f('fk_benefit_sessions_subject_bidx_subjects')),
    sa.ForeignKeyConstraint(['verification_id'], ['verifications.id'], name=op.f('fk_benefit_sessions_verification_id_verifications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_benefit_sessions')),
    sa.UniqueConstraint('verification_id', name=op.f('uq_benefit_sessions_verification_id'))
    )
    with op.batch_alter_table('benefit_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_benefit_sessions_partner_created', ['partner_id', 'created_at'], unique=False)
        batch_op.create_index('ix_benefit_sessions_state_due', ['state', 'due_at'], unique=False)
        batch_op.create_index('ix_benefit_sessions_state_grace', ['state', 'grace_until'], unique=False)
        batch_op.create_index('ix_benefit_sessions_subject_created', ['subject_bidx', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('benefit_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_benefit_sessions_subject_created')
        batch_op.drop_index('ix_benefit_sessions_state_grace')
        batch_op.drop_index('ix_benefit_sessions_state_due')
        batch_op.drop_index('ix_benefit_sessions_partner_created')

    op.drop_table('benefit_sessions')
    op.drop_table('benefit_session_terms')
    op.drop_table('benefit_exposure')
    with op.batch_alter_table('staff_actions', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_actions_target_created')

    op.drop_table('staff_actions')
    with op.batch_alter_table('idempotent_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotent_requests_created_at'))

    op.drop_table('idempotent_requests')
