"""adapters: each kind's own records (loans, rides, encounters, stays, entries)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 16:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The partner kinds when this migration was written (xinyi.partner_kinds): a migration must
# not change meaning when the code's list changes later.
_KINDS = ("'library', 'bike', 'hospital', 'hotel', 'scenic', 'campus', 'government', "
          "'other'")


def upgrade() -> None:
    op.create_table(
        "adapter_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("verification_id", sa.Uuid(), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("waived_fen", sa.Integer(), nullable=False),
        sa.Column("charge_normally_fen", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"kind IN ({_KINDS})", name=op.f("ck_adapter_records_kind_known")),
        sa.CheckConstraint("status IN ('open', 'closed')",
                           name=op.f("ck_adapter_records_status_known")),
        sa.CheckConstraint("amount_fen >= 0 AND waived_fen >= 0 AND charge_normally_fen >= 0",
                           name=op.f("ck_adapter_records_amounts_not_negative")),
        sa.CheckConstraint("waived_fen + charge_normally_fen = amount_fen",
                           name=op.f("ck_adapter_records_amounts_add_up")),
        sa.CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)",
                           name=op.f("ck_adapter_records_closed_when_closed")),
        sa.ForeignKeyConstraint(["partner_id"], ["api_clients.id"],
                                name=op.f("fk_adapter_records_partner_id_api_clients")),
        sa.ForeignKeyConstraint(["verification_id"], ["verifications.id"],
                                name=op.f("fk_adapter_records_verification_id_verifications")),
        sa.ForeignKeyConstraint(["session_id"], ["benefit_sessions.id"],
                                name=op.f("fk_adapter_records_session_id_benefit_sessions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adapter_records")),
        sa.UniqueConstraint("verification_id",
                            name=op.f("uq_adapter_records_verification_id")),
        sa.UniqueConstraint("session_id", name=op.f("uq_adapter_records_session_id")),
    )
    with op.batch_alter_table("adapter_records", schema=None) as batch_op:
        batch_op.create_index("ix_adapter_records_partner_created",
                              ["partner_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("adapter_records", schema=None) as batch_op:
        batch_op.drop_index("ix_adapter_records_partner_created")
    op.drop_table("adapter_records")
