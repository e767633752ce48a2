"""session speed: the exposure row keeps what the last open added (``last_hold_fen``)

The open's hold is one upsert (``INSERT … ON CONFLICT DO UPDATE``) whose ``RETURNING`` sees
only the row after the change; the amount it added is written to this column by the same
SET, so the statement that inserts the session can read it back.

Revision ID: 0020_session_speed
Revises: 0014
Create Date: 2026-12-01 17:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_session_speed"
down_revision: str | Sequence[str] | None = "0022_transparency_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("benefit_exposure") as batch:
        batch.add_column(sa.Column("last_hold_fen", sa.Integer(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("benefit_exposure") as batch:
        batch.drop_column("last_hold_fen")
