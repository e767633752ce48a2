"""volunteering, repairs, objections: volunteers and service hours, repair applications
with signed credit commitments, objections, evidence attachments, staff-entered calendar
years and staff alerts; the catalogue's repair_hours_required and the records' objection state

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('calendar_years',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('holidays', sa.JSON(), nullable=False),
    sa.Column('workdays', sa.JSON(), nullable=False),
    sa.Column('entered_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('year BETWEEN 2000 AND 2200', name=op.f('ck_calendar_years_year_plausible')),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_calendar_years'))
    )
    op.create_table('staff_alerts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('ref', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_alerts')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_staff_alerts_dedupe_key'))
    )
    with op.batch_alter_table('staff_alerts', schema=None) as batch_op:
        batch_op.create_index('ix_staff_alerts_open', ['acknowledged_at', 'created_at'], unique=False)

    op.create_table('attachments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('media_type', sa.String(length=32), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.LargeBinary(length=32), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("media_type IN ('image/png', 'image/jpeg', 'application/pdf')", name=op.f('ck_attachments_media_type_known')),
    sa.CheckConstraint('size > 0 AND size <= 2097152', name=op.f('ck_attachments_size_bounded')),
    sa.ForeignKeyConstraint(['owner_bidx'], ['subjects.bidx'], name=op.f('fk_attachments_owner_bidx_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attachments'))
    )
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.create_index('ix_attachments_owner', ['owner_bidx', 'created_at'], unique=False)

    op.create_table('credit_commitments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('subject_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('ref', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.Text(), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subject_bidx'], ['subjects.bidx'], name=op.f('fk_credit_commitments_subject_bidx_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_commitments'))
    )
    with op.batch_alter_table('credit_commitments', schema=None) as batch_op:
        batch_op.create_index('ix_credit_commitments_subject', ['subject_bidx', 'signed_at'], unique=False)

    op.create_table('hours_claims',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('subject_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('ref', sa.String(length=100), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('minutes > 0', name=op.f('ck_hours_claims_minutes_positive')),
    sa.ForeignKeyConstraint(['subject_bidx'], ['subjects.bidx'], name=op.f('fk_hours_claims_subject_bidx_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hours_claims')),
    sa.UniqueConstraint('ref', name=op.f('uq_hours_claims_ref'))
    )
    with op.batch_alter_table('hours_claims', schema=None) as batch_op:
        batch_op.create_index('ix_hours_claims_subject', ['subject_bidx', 'released_at'], unique=False)

    op.create_table('volunteers',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('subject_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('name_enc', sa.LargeBinary(), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('left_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['api_clients.id'], name=op.f('fk_volunteers_org_id_api_clients')),
    sa.ForeignKeyConstraint(['subject_bidx'], ['subjects.bidx'], name=op.f('fk_volunteers_subject_bidx_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volunteers')),
    sa.UniqueConstraint('org_id', 'subject_bidx', name='uq_volunteers_org_subject')
    )
    with op.batch_alter_table('volunteers', schema=None) as batch_op:
        batch_op.create_index('ix_volunteers_subject', ['subject_bidx'], unique=False)

    op.create_table('attachment_links',
    sa.Column('case_kind', sa.String(length=16), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('attachment_id', sa.Uuid(), nullable=False),
    sa.Column('provider_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint("case_kind IN ('repair', 'dispute')", name=op.f('ck_attachment_links_case_kind_known')),
    sa.ForeignKeyConstraint(['attachment_id'], ['attachments.id'], name=op.f('fk_attachment_links_attachment_id_attachments')),
    sa.ForeignKeyConstraint(['provider_id'], ['api_clients.id'], name=op.f('fk_attachment_links_provider_id_api_clients')),
    sa.PrimaryKeyConstraint('case_kind', 'case_id', 'attachment_id', name=op.f('pk_attachment_links'))
    )
    with op.batch_alter_table('attachment_links', schema=None) as batch_op:
        batch_op.create_index('ix_attachment_links_attachment', ['attachment_id'], unique=False)

    op.create_table('disputes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('subject_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('record_id', sa.Uuid(), nullable=False),
    sa.Column('provider_id', sa.Uuid(), nullable=False),
    sa.Column('catalogue_code', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('evidence', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('filed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('due_provisional', sa.Boolean(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by_kind', sa.String(length=16), nullable=True),
    sa.Column('resolved_by_id', sa.Uuid(), nullable=True),
    sa.Column('resolution_reason', sa.Text(), nullable=True),
    sa.Column('correction', sa.JSON(), nullable=True),
    sa.CheckConstraint("(status = 'open' AND resolved_at IS NULL) OR (status <> 'open' AND resolved_at IS NOT NULL AND resolution_reason IS NOT NULL)", name=op.f('ck_disputes_resolution_complete')),
    sa.CheckConstraint("resolved_by_kind IS NULL OR resolved_by_kind IN ('provider', 'reviewer')", name=op.f('ck_disputes_resolver_known')),
    sa.CheckConstraint("status IN ('open', 'corrected', 'deleted', 'upheld')", name=op.f('ck_disputes_status_known')),
    sa.ForeignKeyConstraint(['provider_id'], ['api_clients.id'], name=op.f('fk_disputes_provider_id_api_clients')),
    sa.ForeignKeyConstraint(['record_id'], ['credit_records.id'], name=op.f('fk_disputes_record_id_credit_records')),
    sa.ForeignKeyConstraint(['subject_bidx'], ['subjects.bidx'], name=op.f('fk_disputes_subject_bidx_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disputes'))
    )
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.create_index('ix_disputes_provider_status', ['provider_id', 'status', 'due_on'], unique=False)
        batch_op.create_index('ix_disputes_subject', ['subject_bidx', 'filed_at'], unique=False)
        batch_op.create_index('uq_disputes_open_record', ['record_id'], unique=True, postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))

    op.create_table('repair_applications',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('subject_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('record_id', sa.Uuid(), nullable=False),
    sa.Column('provider_id', sa.Uuid(), nullable=False),
    sa.Column('catalogue_code', sa.String(length=64), nullable=False),
    sa.Column('basis', sa.String(length=32), nullable=False),
    sa.Column('evidence', sa.Text(), nullable=True),
    sa.Column('commitment_id', sa.Uuid(), nullable=True),
    sa.Column('hours_required', sa.Integer(), nullable=True),
    sa.Column('minutes_claimed', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('due_provisional', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.Uuid(), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('decision_pdf', sa.LargeBinary(), nullable=True),
    sa.CheckConstraint("(status = 'pending' AND decided_at IS NULL) OR (status <> 'pending' AND decided_at IS NOT NULL AND decision_reason IS NOT NULL)", name=op.f('ck_repair_applications_decision_complete')),
    sa.CheckConstraint("basis IN ('volunteer_hours', 'charity', 'fulfilled_obligation')", name=op.f('ck_repair_applications_basis_known')),
    sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name=op.f('ck_repair_applications_status_known')),
    sa.ForeignKeyConstraint(['commitment_id'], ['credit_commitments.id'], name=op.f('fk_repair_applications_commitment_id_credit_commitments')),
    sa.ForeignKeyConstraint(['decided_by'], ['accounts.id'], name=op.f('fk_repair_applications_decided_by_accounts')),
    sa.ForeignKeyConstraint(['provider_id'], ['api_clients.id'], name=op.f('fk_repair_applications_provider_id_api_clients')),
    sa.ForeignKeyConstraint(['record_id'], ['credit_records.id'], name=op.f('fk_repair_applications_record_id_credit_records')),
    sa.ForeignKeyConstraint(['subject_bidx'], ['subjects.bidx'], name=op.f('fk_repair_applications_subject_bidx_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repair_applications'))
    )
    with op.batch_alter_table('repair_applications', schema=None) as batch_op:
        batch_op.create_index('ix_repair_applications_status_due', ['status', 'due_on'], unique=False)
        batch_op.create_index('ix_repair_applications_subject', ['subject_bidx', 'created_at'], unique=False)
        batch_op.create_index('uq_repair_applications_pending_record', ['record_id'], unique=True, postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))

    op.create_table('service_records',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('volunteer_id', sa.Uuid(), nullable=False),
    sa.Column('subject_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('activity_ref', sa.String(length=128), nullable=False),
    sa.Column('activity_name', sa.String(length=200), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('service_day', sa.Date(), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('retracted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('retraction_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(status = 'accepted' AND retracted_at IS NULL) OR (status = 'retracted' AND retracted_at IS NOT NULL AND retraction_reason IS NOT NULL)", name=op.f('ck_service_records_retraction_complete')),
    sa.CheckConstraint("status IN ('accepted', 'retracted')", name=op.f('ck_service_records_status_known')),
    sa.CheckConstraint('ended_at > started_at', name=op.f('ck_service_records_interval_positive')),
    sa.CheckConstraint('minutes > 0 AND minutes <= 720', name=op.f('ck_service_records_minutes_bounded')),
    sa.ForeignKeyConstraint(['org_id'], ['api_clients.id'], name=op.f('fk_service_records_org_id_api_clients')),
    sa.ForeignKeyConstraint(['subject_bidx'], ['subjects.bidx'], name=op.f('fk_service_records_subject_bidx_subjects')),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_service_records_volunteer_id_volunteers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_records')),
    sa.UniqueConstraint('org_id', 'activity_ref', 'subject_bidx', name='uq_service_records_org_activity_subject')
    )
    with op.batch_alter_table('service_records', schema=None) as batch_op:
        batch_op.create_index('ix_service_records_org_created', ['org_id', 'created_at'], unique=False)
        batch_op.create_index('ix_service_records_subject_start', ['subject_bidx', 'started_at'], unique=False)

    with op.batch_alter_table('catalogue_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('repair_hours_required', sa.Integer(), nullable=True))

    with op.batch_alter_table('credit_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('objection_status', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('objection_note', sa.Text(), nullable=True))

    # The default hours a repair by volunteering needs: 10 for minor items, 40 for general
    # ones, none for serious ones (volunteering alone never repairs them).
    op.execute("UPDATE catalogue_items SET repair_hours_required = CASE severity "
               "WHEN 'minor' THEN 10 WHEN 'general' THEN 40 END "
               "WHERE repairable_by_volunteering AND severity IN ('minor', 'general')")
    # The checks on these two existing tables on PostgreSQL only: on SQLite adding one
    # rebuilds the table, and credit_records is referenced by live foreign keys there. The
    # services enforce both rules on either database.
    if op.get_bind().dialect.name == "postgresql":
        op.create_check_constraint(
            op.f("ck_catalogue_items_repair_hours_not_negative"), "catalogue_items",
            "repair_hours_required IS NULL OR repair_hours_required >= 0")
        op.create_check_constraint(
            op.f("ck_credit_records_objection_status_known"), "credit_records",
            "objection_status IS NULL OR objection_status IN ('open', 'upheld')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_credit_records_objection_status_known"), "credit_records",
                           type_="check")
        op.drop_constraint(op.f("ck_catalogue_items_repair_hours_not_negative"),
                           "catalogue_items", type_="check")
    with op.batch_alter_table('credit_records', schema=None) as batch_op:
        batch_op.drop_column('objection_note')
        batch_op.drop_column('objection_status')

    with op.batch_alter_table('catalogue_items', schema=None) as batch_op:
        batch_op.drop_column('repair_hours_required')

    with op.batch_alter_table('service_records', schema=None) as batch_op:
        batch_op.drop_index('ix_service_records_subject_start')
        batch_op.drop_index('ix_service_records_org_created')

    op.drop_table('service_records')
    with op.batch_alter_table('repair_applications', schema=None) as batch_op:
        batch_op.drop_index('uq_repair_applications_pending_record', postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
        batch_op.drop_index('ix_repair_applications_subject')
        batch_op.drop_index('ix_repair_applications_status_due')

    op.drop_table('repair_applications')
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_index('uq_disputes_open_record', postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))
        batch_op.drop_index('ix_disputes_subject')
        batch_op.drop_index('ix_disputes_provider_status')

    op.drop_table('disputes')
    with op.batch_alter_table('attachment_links', schema=None) as batch_op:
        batch_op.drop_index('ix_attachment_links_attachment')

    op.drop_table('attachment_links')
    with op.batch_alter_table('volunteers', schema=None) as batch_op:
        batch_op.drop_index('ix_volunteers_subject')

    op.drop_table('volunteers')
    with op.batch_alter_table('hours_claims', schema=None) as batch_op:
        batch_op.drop_index('ix_hours_claims_subject')

    op.drop_table('hours_claims')
    with op.batch_alter_table('credit_commitments', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_commitments_subject')

    op.drop_table('credit_commitments')
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_index('ix_attachments_owner')

    op.drop_table('attachments')
    with op.batch_alter_table('staff_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_alerts_open')

    op.drop_table('staff_alerts')
    op.drop_table('calendar_years')
