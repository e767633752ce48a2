"""decision reviews: the score history (every computed score that changed, with the rule's
inputs), who declared a benefit session's default, and citizens' requests for a human review
of an automated decision

Revision ID: 0017_decision_reviews
Revises: 0015_personal_keys
Create Date: 2026-12-01 17:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_decision_reviews"
down_revision: str | Sequence[str] | None = "0015_personal_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "score_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_bidx", sa.LargeBinary(length=32), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score_from", sa.Integer(), nullable=True),
        sa.Column("score_to", sa.Integer(), nullable=False),
        sa.Column("tier_from", sa.String(length=4), nullable=True),
        sa.Column("tier_to", sa.String(length=4), nullable=False),
        sa.Column("record_points", sa.Integer(), nullable=False),
        sa.Column("records_counted", sa.Integer(), nullable=False),
        sa.Column("hours_bonus", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["subject_bidx"], ["subjects.bidx"],
                                name=op.f("fk_score_history_subject_bidx_subjects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_history")),
    )
    with op.batch_alter_table("score_history", schema=None) as batch_op:
        batch_op.create_index("ix_score_history_subject_computed",
                              ["subject_bidx", "computed_at"], unique=False)

    op.create_table(
        "decision_reviews",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_bidx", sa.LargeBinary(length=32), nullable=False),
        sa.Column("decision_id", sa.String(length=100), nullable=False),
        sa.Column("decision_kind", sa.String(length=32), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("due_provisional", sa.Boolean(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("outcome_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'confirmed', 'changed')",
                           name=op.f("ck_decision_reviews_status_known")),
        sa.CheckConstraint(
            "(status = 'open' AND decided_at IS NULL AND decided_by IS NULL "
            "AND outcome_reason IS NULL) OR "
            "(status <> 'open' AND decided_at IS NOT NULL AND decided_by IS NOT NULL "
            "AND outcome_reason IS NOT NULL)",
            name=op.f("ck_decision_reviews_decision_complete")),
        sa.ForeignKeyConstraint(["subject_bidx"], ["subjects.bidx"],
                                name=op.f("fk_decision_reviews_subject_bidx_subjects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_reviews")),
    )
    with op.batch_alter_table("decision_reviews", schema=None) as batch_op:
        batch_op.create_index("ix_decision_reviews_status_due", ["status", "due_on"],
                              unique=False)
        batch_op.create_index("ix_decision_reviews_subject", ["subject_bidx", "requested_at"],
                              unique=False)
        batch_op.create_index("uq_decision_reviews_open", ["decision_id"], unique=True,
                              postgresql_where=sa.text("status = 'open'"),
                              sqlite_where=sa.text("status = 'open'"))

    # A plain ADD COLUMN (no table rebuild on SQLite, where other tables reference this
    # one); the check on PostgreSQL only, as for the other existing tables' checks.
    op.add_column("benefit_sessions",
                  sa.Column("defaulted_by", sa.String(length=8), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.create_check_constraint(
            op.f("ck_benefit_sessions_benefit_session_defaulted_by_known"), "benefit_sessions",
            "defaulted_by IS NULL OR defaulted_by IN ('system', 'partner')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_benefit_sessions_benefit_session_defaulted_by_known"),
                           "benefit_sessions", type_="check")
    with op.batch_alter_table("benefit_sessions", schema=None) as batch_op:
        batch_op.drop_column("defaulted_by")
    with op.batch_alter_table("decision_reviews", schema=None) as batch_op:
        batch_op.drop_index("uq_decision_reviews_open")
        batch_op.drop_index("ix_decision_reviews_subject")
        batch_op.drop_index("ix_decision_reviews_status_due")
    op.drop_table("decision_reviews")
    with op.batch_alter_table("score_history", schema=None) as batch_op:
        batch_op.drop_index("ix_score_history_subject_computed")
    op.drop_table("score_history")
