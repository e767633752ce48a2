"""webhook deliveries carry their event's seq, and an index the delivery worker leases from
(each endpoint's due deliveries in event order, without ranking every due row)

Revision ID: 0019_webhook_lease_index
Revises: 0014
Create Date: 2026-12-01 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_webhook_lease_index"
down_revision: str | Sequence[str] | None = "0017_decision_reviews"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
    op.execute("UPDATE webhook_deliveries SET seq = (SELECT e.seq FROM webhook_events e "
               "WHERE e.id = webhook_deliveries.event_id)")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_index("ix_webhook_deliveries_lease",
                              ["endpoint_id", "status", "next_attempt_at", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_lease")
        batch_op.drop_column("seq")
