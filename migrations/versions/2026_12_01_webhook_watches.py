"""webhook watches (who was told an entry opened is told when it closes); an index of feed
events by outbox event

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 13:43:47.095186
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('webhook_watches',
    sa.Column('partner_id', sa.Uuid(), nullable=False),
    sa.Column('about', sa.String(length=100), nullable=False),
    sa.Column('subject_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['api_clients.id'], name=op.f('fk_webhook_watches_partner_id_api_clients')),
    sa.PrimaryKeyConstraint('partner_id', 'about', name=op.f('pk_webhook_watches'))
    )
    with op.batch_alter_table('webhook_watches', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_watches_about', ['about'], unique=False)
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_events_outbox', ['outbox_event_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_events_outbox')
    with op.batch_alter_table('webhook_watches', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_watches_about')

    op.drop_table('webhook_watches')
