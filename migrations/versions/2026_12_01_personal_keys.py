"""personal keys: per-citizen data keys, the closed-account tombstones, clearable phones

Revision ID: 0015_personal_keys
Revises: 0014
Create Date: 2026-12-01 16:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_personal_keys"
down_revision: str | Sequence[str] | None = "0021_district_stats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "personal_keys",
        sa.Column("subject_bidx", sa.LargeBinary(length=32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subject_bidx"], ["subjects.bidx"],
                                name=op.f("fk_personal_keys_subject_bidx_subjects")),
        sa.PrimaryKeyConstraint("subject_bidx", name=op.f("pk_personal_keys")),
    )
    op.create_table(
        "shredded_subjects",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_bidx", sa.LargeBinary(length=32), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("shredded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subject_bidx"], ["subjects.bidx"],
                                name=op.f("fk_shredded_subjects_subject_bidx_subjects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shredded_subjects")),
    )
    with op.batch_alter_table("shredded_subjects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shredded_subjects_subject_bidx"),
                              ["subject_bidx"], unique=False)
    # A closed account keeps its row, without its phone (which may then register again).
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.alter_column("phone_enc", existing_type=sa.LargeBinary(), nullable=True)
        batch_op.alter_column("phone_bidx", existing_type=sa.LargeBinary(length=32),
                              nullable=True)


def downgrade() -> None:
    # Closed accounts have no phone: under NOT NULL again they get placeholders that match
    # no number (a random blind index each, for its unique index) and decrypt to nothing.
    op.execute("UPDATE accounts SET phone_bidx = randomblob(32) WHERE phone_bidx IS NULL"
               if op.get_bind().dialect.name == "sqlite" else
               "UPDATE accounts SET phone_bidx = decode(md5(random()::text || id::text), 'hex') "
               "WHERE phone_bidx IS NULL")
    op.get_bind().execute(sa.text("UPDATE accounts SET phone_enc = :nothing "
                                  "WHERE phone_enc IS NULL"), {"nothing": b"\x00"})
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.alter_column("phone_bidx", existing_type=sa.LargeBinary(length=32),
                              nullable=False)
        batch_op.alter_column("phone_enc", existing_type=sa.LargeBinary(), nullable=False)
    with op.batch_alter_table("shredded_subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shredded_subjects_subject_bidx"))
    op.drop_table("shredded_subjects")
    op.drop_table("personal_keys")
