"""offline verifications: verifications uploaded after an offline check are marked, and the
jti → holder link outlives the credential's row (credential_holders)

Revision ID: 0023_offline_verifications
Revises: 0014 (chained on the current head so that the branch migrates on its own)
Create Date: 2026-12-01 17:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_offline_verifications"
down_revision: str | Sequence[str] | None = "0019_webhook_lease_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credential_holders",
        sa.Column("jti", sa.String(length=40), nullable=False),
        sa.Column("subject_bidx", sa.LargeBinary(length=32), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_credential_holders")),
    )
    with op.batch_alter_table("credential_holders", schema=None) as batch_op:
        batch_op.create_index("ix_credential_holders_expires_at", ["expires_at"], unique=False)
    # A constant default: adding the column rewrites no row on PostgreSQL.
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("offline", sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.drop_column("offline")
    with op.batch_alter_table("credential_holders", schema=None) as batch_op:
        batch_op.drop_index("ix_credential_holders_expires_at")
    op.drop_table("credential_holders")
