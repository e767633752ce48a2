"""sweep speed: the notifications lose their second index on ``(subject_bidx, created_at)``

Every query of the inbox is of one citizen (the list, its counts, the export, forgetting)
and is served by the leading ``subject_bidx`` of ``uq_notifications_subject_dedupe``; the
second index only made each insert dearer, and the overdue and default sweeps insert one
notice per session.

Revision ID: 0024_sweep_speed
Revises: 0020_session_speed
Create Date: 2026-12-01 23:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0024_sweep_speed"
down_revision: str | Sequence[str] | None = "0020_session_speed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_subject_created")


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_subject_created",
                              ["subject_bidx", "created_at"], unique=False)
