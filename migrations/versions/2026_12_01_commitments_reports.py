"""credit commitments (信用承诺): published, versioned texts (seeded for repair, rongque
容缺受理 and benefit 信用免押), each commitment's text version, status and breach; reports of
dishonest behaviour (有奖举报), whose evidence links to attachments without a provider

Revision ID: 0018_commitments_reports
Revises: 0014
Create Date: 2026-12-01 16:19:09.457283
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0018_commitments_reports"
down_revision: str | Sequence[str] | None = "0016_exports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEEDED_AT = datetime(2026, 12, 1, tzinfo=UTC)
BREACH_ITEM = "commitment.broken"
# The texts as published by this migration, frozen here: a later version is a new row
# (POST /v1/admin/commitment-texts), never an edit of these.
TEXTS = [
    {"purpose": "repair", "version": 1, "title_zh": "信用修复承诺", "revocable": False,
     "text": ("本人郑重承诺：所提交的信用修复申请及证明材料真实、准确、完整；本人已纠正相关失信行为、"
              "履行相关义务；今后将诚实守信、依法履约。如有虚假，本人愿承担相应法律责任，"
              "并同意撤销本次信用修复决定。")},
    {"purpose": "rongque", "version": 1, "title_zh": "容缺受理承诺", "revocable": False,
     "text": ("本人申请容缺受理，郑重承诺：在受理之日起二十个工作日内（或受理机关书面告知的期限内）"
              "补齐所缺材料，所补材料真实、有效；逾期未补齐或材料不实的，本人同意受理机关终止办理或"
              "撤销已作出的决定，并将违反承诺的情况记入本人信用记录。")},
    {"purpose": "benefit", "version": 1, "title_zh": "信用免押承诺", "revocable": True,
     "text": ("本人使用信用免押服务，郑重承诺：按约定期限归还所借物品、结清相关费用；"
              "逾期经催告并于宽限期满仍未履约的，本人同意将违反承诺的情况记入本人信用记录。"
              "本人可随时撤回本承诺，撤回后不再享受信用免押服务，已发生的服务仍按约定履行。")},
]
# The catalogue item a breach becomes, as 0002 seeded it (an existing database has it
# unless staff removed it; then it comes back here, before the texts point at it).
BROKEN_COMMITMENT = {
    "code": BREACH_ITEM, "name_zh": "违反信用承诺", "name_en": "Broken credit commitment",
    "polarity": "negative", "severity": "general", "domain": "政务服务", "points": -30,
    "display_months": 12, "repair_after_months": 3, "repairable_by_volunteering": True,
    "repair_hours_required": 40, "legal_basis": None}



def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # The batch below rebuilds credit_commitments, which repair_applications references:
        # its foreign keys are checked at commit, when the rebuilt table is in place again.
        op.execute("PRAGMA defer_foreign_keys = ON")
    op.create_table('commitment_texts',
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('title_zh', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('revocable', sa.Boolean(), nullable=False),
    sa.Column('breach_catalogue_code', sa.String(length=64), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_by', sa.Uuid(), nullable=True),
    sa.CheckConstraint('version >= 1', name=op.f('ck_commitment_texts_version_positive')),
    sa.ForeignKeyConstraint(['breach_catalogue_code'], ['catalogue_items.code'], name=op.f('fk_commitment_texts_breach_catalogue_code_catalogue_items')),
    sa.PrimaryKeyConstraint('purpose', 'version', name=op.f('pk_commitment_texts'))
    )
    _seed()
    op.create_table('dishonesty_reports',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('reporter_bidx', sa.LargeBinary(length=32), nullable=False),
    sa.Column('party_kind', sa.String(length=16), nullable=False),
    sa.Column('party_bidx', sa.LargeBinary(length=32), nullable=True),
    sa.Column('party_id_number_enc', sa.LargeBinary(), nullable=True),
    sa.Column('party_name', sa.String(length=200), nullable=True),
    sa.Column('party_uscc', sa.String(length=18), nullable=True),
    sa.Column('facts', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('reward_fen', sa.Integer(), nullable=True),
    sa.Column('forwarded_to', sa.Uuid(), nullable=True),
    sa.Column('decided_by', sa.Uuid(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(outcome = 'forwarded') = (forwarded_to IS NOT NULL)", name=op.f('ck_dishonesty_reports_forwarded_iff_provider')),
    sa.CheckConstraint("(outcome = 'rewarded') = (reward_fen IS NOT NULL) AND (reward_fen IS NULL OR reward_fen > 0)", name=op.f('ck_dishonesty_reports_reward_iff_rewarded')),
    sa.CheckConstraint("(party_kind = 'person' AND party_bidx IS NOT NULL AND party_id_number_enc IS NOT NULL AND party_name IS NULL) OR (party_kind = 'organisation' AND party_name IS NOT NULL AND party_bidx IS NULL AND party_id_number_enc IS NULL)", name=op.f('ck_dishonesty_reports_party_complete')),
    sa.CheckConstraint("(status = 'pending' AND outcome IS NULL AND decided_at IS NULL) OR (status = 'decided' AND outcome IS NOT NULL AND decided_at IS NOT NULL AND decision_reason IS NOT NULL AND decided_by IS NOT NULL)", name=op.f('ck_dishonesty_reports_decision_complete')),
    sa.CheckConstraint("outcome IS NULL OR outcome IN ('forwarded', 'rejected', 'rewarded')", name=op.f('ck_dishonesty_reports_outcome_known')),
    sa.CheckConstraint("party_kind IN ('person', 'organisation')", name=op.f('ck_dishonesty_reports_party_kind_known')),
    sa.CheckConstraint("status IN ('pending', 'decided')", name=op.f('ck_dishonesty_reports_status_known')),
    sa.ForeignKeyConstraint(['forwarded_to'], ['api_clients.id'], name=op.f('fk_dishonesty_reports_forwarded_to_api_clients')),
    sa.ForeignKeyConstraint(['reporter_bidx'], ['subjects.bidx'], name=op.f('fk_dishonesty_reports_reporter_bidx_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dishonesty_reports')),
    sa.UniqueConstraint('reference', name=op.f('uq_dishonesty_reports_reference'))
    )
    with op.batch_alter_table('dishonesty_reports', schema=None) as batch_op:
        batch_op.create_index('ix_dishonesty_reports_forwarded', ['forwarded_to', 'decided_at'], unique=False)
        batch_op.create_index('ix_dishonesty_reports_reporter', ['reporter_bidx', 'created_at'], unique=False)
        batch_op.create_index('ix_dishonesty_reports_status', ['status', 'created_at'], unique=False)

    with op.batch_alter_table('attachment_links', schema=None) as batch_op:
        batch_op.alter_column('provider_id',
               existing_type=sa.UUID(),
               nullable=True)
        batch_op.drop_constraint(op.f('ck_attachment_links_case_kind_known'), type_='check')
        batch_op.create_check_constraint(
            'case_kind_known', "case_kind IN ('repair', 'dispute', 'report')")

    with op.batch_alter_table('credit_commitments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('text_version', sa.Integer(), server_default=sa.text('1'), nullable=False))
        batch_op.add_column(sa.Column('status', sa.String(length=16), server_default=sa.text("'active'"), nullable=False))
        batch_op.add_column(sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('breached_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('breach_provider_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('breach_facts', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('breach_occurred_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('record_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('record_id', sa.Uuid(), nullable=True))
        batch_op.create_index('ix_credit_commitments_breach_due', ['record_due_at'], unique=False, postgresql_where=sa.text("status = 'breached' AND record_id IS NULL"), sqlite_where=sa.text("status = 'breached' AND record_id IS NULL"))
        batch_op.create_foreign_key(batch_op.f('fk_credit_commitments_breach_provider_id_api_clients'), 'api_clients', ['breach_provider_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_credit_commitments_record_id_credit_records'), 'credit_records', ['record_id'], ['id'])
        batch_op.create_foreign_key('fk_credit_commitments_text', 'commitment_texts', ['purpose', 'text_version'], ['purpose', 'version'])
        batch_op.create_check_constraint(
            'status_known', "status IN ('active', 'revoked', 'breached')")
        batch_op.create_check_constraint(
            'revoked_complete', "(status = 'revoked') = (revoked_at IS NOT NULL)")
        batch_op.create_check_constraint(
            'breach_complete', "status <> 'breached' OR (breached_at IS NOT NULL "
            "AND breach_provider_id IS NOT NULL AND breach_facts IS NOT NULL "
            "AND breach_occurred_on IS NOT NULL AND record_due_at IS NOT NULL)")



def downgrade() -> None:
    with op.batch_alter_table('credit_commitments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_credit_commitments_breach_complete'), type_='check')
        batch_op.drop_constraint(op.f('ck_credit_commitments_revoked_complete'), type_='check')
        batch_op.drop_constraint(op.f('ck_credit_commitments_status_known'), type_='check')
        batch_op.drop_constraint('fk_credit_commitments_text', type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_credit_commitments_record_id_credit_records'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_credit_commitments_breach_provider_id_api_clients'), type_='foreignkey')
        batch_op.drop_index('ix_credit_commitments_breach_due', postgresql_where=sa.text("status = 'breached' AND record_id IS NULL"), sqlite_where=sa.text("status = 'breached' AND record_id IS NULL"))
        batch_op.drop_column('record_id')
        batch_op.drop_column('record_due_at')
        batch_op.drop_column('breach_occurred_on')
        batch_op.drop_column('breach_facts')
        batch_op.drop_column('breach_provider_id')
        batch_op.drop_column('breached_at')
        batch_op.drop_column('revoked_at')
        batch_op.drop_column('status')
        batch_op.drop_column('text_version')

    op.execute("DELETE FROM attachment_links WHERE case_kind = 'report'")
    with op.batch_alter_table('attachment_links', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_attachment_links_case_kind_known'), type_='check')
        batch_op.create_check_constraint('case_kind_known', "case_kind IN ('repair', 'dispute')")
        batch_op.alter_column('provider_id',
               existing_type=sa.UUID(),
               nullable=False)

    with op.batch_alter_table('dishonesty_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_dishonesty_reports_status')
        batch_op.drop_index('ix_dishonesty_reports_reporter')
        batch_op.drop_index('ix_dishonesty_reports_forwarded')

    op.drop_table('dishonesty_reports')
    op.drop_table('commitment_texts')


def _seed() -> None:
    bind = op.get_bind()
    catalogue = sa.table("catalogue_items", *[sa.column(c) for c in (*BROKEN_COMMITMENT,
                                                                       "updated_at")])
    known = bind.execute(sa.text("SELECT 1 FROM catalogue_items WHERE code = :code"),
                         {"code": BREACH_ITEM}).first()
    if known is None:
        op.bulk_insert(catalogue, [{**BROKEN_COMMITMENT, "updated_at": SEEDED_AT}])
    texts = sa.table("commitment_texts", sa.column("purpose"), sa.column("version"),
                     sa.column("title_zh"), sa.column("text"), sa.column("revocable"),
                     sa.column("breach_catalogue_code"),
                     sa.column("published_at", sa.DateTime(timezone=True)))
    op.bulk_insert(texts, [{**t, "breach_catalogue_code": BREACH_ITEM,
                            "published_at": SEEDED_AT} for t in TEXTS])
