"""exports: the citizen's background exports, encrypted until downloaded

Revision ID: 0016_exports
Revises: 0014
Create Date: 2026-12-01 17:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_exports"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("status IN ('queued', 'building')")


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("failure", sa.String(length=64), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint("format IN ('json', 'zip')", name=op.f("ck_exports_format_known")),
        sa.CheckConstraint("status IN ('queued', 'building', 'ready', 'failed', 'expired', "
                           "'downloaded')", name=op.f("ck_exports_status_known")),
        sa.CheckConstraint("content IS NULL OR status = 'ready'",
                           name=op.f("ck_exports_content_only_when_ready")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_exports_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
    )
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.create_index("ix_exports_status_created", ["status", "created_at"],
                              unique=False)
        batch_op.create_index("uq_exports_active_account", ["account_id"], unique=True,
                              postgresql_where=ACTIVE, sqlite_where=ACTIVE)


def downgrade() -> None:
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.drop_index("uq_exports_active_account", postgresql_where=ACTIVE,
                            sqlite_where=ACTIVE)
        batch_op.drop_index("ix_exports_status_created")
    op.drop_table("exports")
