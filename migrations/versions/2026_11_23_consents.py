"""consents: partners' consent requests and citizens' consents (授权查询, R3)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 11:40:12.221591
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('consent_requests',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('partner_id', sa.Uuid(), nullable=False),
    sa.Column('subject_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=500), nullable=False),
    sa.Column('requested_duration_seconds', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(status IN ('approved', 'denied') AND decided_at IS NOT NULL) OR (status IN ('pending', 'expired', 'withdrawn') AND decided_at IS NULL)", name=op.f('ck_consent_requests_decided_when_decided')),
    sa.CheckConstraint("scope IN ('report.summary', 'report.full')", name=op.f('ck_consent_requests_scope_known')),
    sa.CheckConstraint("status IN ('pending', 'approved', 'denied', 'expired', 'withdrawn')", name=op.f('ck_consent_requests_status_known')),
    sa.CheckConstraint('expires_at > created_at', name=op.f('ck_consent_requests_expires_after_creation')),
    sa.CheckConstraint('requested_duration_seconds BETWEEN 3600 AND 31536000', name=op.f('ck_consent_requests_duration_bounded')),
    sa.ForeignKeyConstraint(['partner_id'], ['api_clients.id'], name=op.f('fk_consent_requests_partner_id_api_clients')),
    sa.ForeignKeyConstraint(['subject_bidx'], ['subjects.bidx'], name=op.f('fk_consent_requests_subject_bidx_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_requests'))
    )
    with op.batch_alter_table('consent_requests', schema=None) as batch_op:
        batch_op.create_index('ix_consent_requests_status_expires', ['status', 'expires_at'], unique=False)
        batch_op.create_index('ix_consent_requests_subject_status', ['subject_bidx', 'status', 'expires_at'], unique=False)

    op.create_table('consents',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('subject_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('partner_id', sa.Uuid(), nullable=False),
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=500), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('request_id', sa.Uuid(), nullable=True),
    sa.CheckConstraint("scope IN ('report.summary', 'report.full')", name=op.f('ck_consents_scope_known')),
    sa.CheckConstraint('expires_at > granted_at', name=op.f('ck_consents_expires_after_grant')),
    sa.CheckConstraint('revoked_at IS NULL OR revoked_at >= granted_at', name=op.f('ck_consents_revoked_after_grant')),
    sa.ForeignKeyConstraint(['partner_id'], ['api_clients.id'], name=op.f('fk_consents_partner_id_api_clients')),
    sa.ForeignKeyConstraint(['request_id'], ['consent_requests.id'], name=op.f('fk_consents_request_id_consent_requests')),
    sa.ForeignKeyConstraint(['subject_bidx'], ['subjects.bidx'], name=op.f('fk_consents_subject_bidx_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consents')),
    sa.UniqueConstraint('request_id', name=op.f('uq_consents_request_id'))
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index('ix_consents_subject_granted', ['subject_bidx', 'granted_at'], unique=False)
        batch_op.create_index('ix_consents_subject_partner', ['subject_bidx', 'partner_id', 'expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index('ix_consents_subject_partner')
        batch_op.drop_index('ix_consents_subject_granted')

    op.drop_table('consents')
    with op.batch_alter_table('consent_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_requests_subject_status')
        batch_op.drop_index('ix_consent_requests_status_expires')

    op.drop_table('consent_requests')
