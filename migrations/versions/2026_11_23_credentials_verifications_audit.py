"""credentials verifications audit

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 11:35:23.973637
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_checkpoints',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.Column('prev_digest', sa.LargeBinary(length=32), nullable=False),
    sa.Column('digest', sa.LargeBinary(length=32), nullable=False),
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_checkpoints'))
    )
    op.create_table('signing_keys',
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('public_jwk', sa.JSON(), nullable=False),
    sa.Column('private_enc', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('kid', name=op.f('pk_signing_keys'))
    )
    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.create_index('ix_signing_keys_purpose', ['purpose', 'retired_at'], unique=False)

    op.create_table('credentials',
    sa.Column('jti', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_credentials_account_id_accounts')),
    sa.PrimaryKeyConstraint('jti', name=op.f('pk_credentials')),
    sa.UniqueConstraint('subject', name=op.f('uq_credentials_subject'))
    )
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credentials_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_credentials_expires_at', ['expires_at'], unique=False)

    op.create_table('pseudonyms',
    sa.Column('partner_id', sa.Uuid(), nullable=False),
    sa.Column('pseudonym', sa.String(length=40), nullable=False),
    sa.Column('subject_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['api_clients.id'], name=op.f('fk_pseudonyms_partner_id_api_clients')),
    sa.ForeignKeyConstraint(['subject_bidx'], ['subjects.bidx'], name=op.f('fk_pseudonyms_subject_bidx_subjects')),
    sa.PrimaryKeyConstraint('partner_id', 'pseudonym', name=op.f('pk_pseudonyms')),
    sa.UniqueConstraint('partner_id', 'subject_bidx', name='uq_pseudonyms_partner_subject')
    )
    op.create_table('verifications',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('partner_id', sa.Uuid(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=100), nullable=True),
    sa.Column('credential_jti', sa.String(length=40), nullable=False),
    sa.Column('subject_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('benefit_code', sa.String(length=64), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['api_clients.id'], name=op.f('fk_verifications_partner_id_api_clients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_verifications')),
    sa.UniqueConstraint('credential_jti', name=op.f('uq_verifications_credential_jti')),
    sa.UniqueConstraint('partner_id', 'idempotency_key', name='uq_verifications_partner_idempotency')
    )
    with op.batch_alter_table('verifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_verifications_subject_bidx'), ['subject_bidx'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('verifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_verifications_subject_bidx'))

    op.drop_table('verifications')
    op.drop_table('pseudonyms')
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.drop_index('ix_credentials_expires_at')
        batch_op.drop_index(batch_op.f('ix_credentials_account_id'))

    op.drop_table('credentials')
    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_signing_keys_purpose')

    op.drop_table('signing_keys')
    op.drop_table('audit_checkpoints')
