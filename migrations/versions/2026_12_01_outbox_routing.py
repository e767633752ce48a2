"""outbox routing: who hears of an event (its partner, or the partners consented to its citizen)

Adds ``partner_id`` and ``subject_bidx`` to ``outbox_events`` and moves the routing out of the
payload, which from now on holds no subject at all (the delivery side adds each partner's own
pseudonym). Events written before this migration are backfilled from the rows they describe:
a consent event from its consent, a list event from its record. Nothing is dropped.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 14:00:00.000000
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5_000


def _payload(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


def _backfill() -> None:
    conn = op.get_bind()
    events = sa.table("outbox_events", sa.column("id", sa.Uuid()), sa.column("topic"),
                      sa.column("payload", sa.JSON()), sa.column("partner_id", sa.Uuid()),
                      sa.column("subject_bidx", sa.LargeBinary()))
    consents = sa.table("consents", sa.column("id", sa.Uuid()), sa.column("partner_id", sa.Uuid()),
                        sa.column("subject_bidx", sa.LargeBinary()))
    records = sa.table("credit_records", sa.column("id", sa.Uuid()),
                       sa.column("subject_bidx", sa.LargeBinary()))
    last: uuid.UUID | None = None
    while True:
        stmt = (sa.select(events.c.id, events.c.topic, events.c.payload)
                .where(events.c.subject_bidx.is_(None)).order_by(events.c.id).limit(BATCH))
        if last is not None:
            stmt = stmt.where(events.c.id > last)
        rows = conn.execute(stmt).all()
        if not rows:
            return
        last = rows[-1].id
        for row in rows:
            payload = _payload(row.payload)
            if row.topic.startswith("consent.") and "consent_id" in payload:
                found = conn.execute(sa.select(consents.c.partner_id, consents.c.subject_bidx)
                                     .where(consents.c.id == uuid.UUID(payload["consent_id"])))
                hit = found.first()
                if hit is None:
                    continue
                payload.pop("subject", None)
                payload.pop("partner_id", None)
                conn.execute(events.update().where(events.c.id == row.id).values(
                    partner_id=hit.partner_id, subject_bidx=hit.subject_bidx, payload=payload))
            elif row.topic.startswith("list.") and "record_id" in payload:
                bidx = conn.execute(sa.select(records.c.subject_bidx).where(
                    records.c.id == uuid.UUID(payload["record_id"]))).scalar()
                if bidx is not None:
                    conn.execute(events.update().where(events.c.id == row.id)
                                 .values(subject_bidx=bidx))


def upgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("subject_bidx", sa.LargeBinary(length=32), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_outbox_events_partner_id_api_clients"),
                                    "api_clients", ["partner_id"], ["id"])
    _backfill()


def downgrade() -> None:
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_outbox_events_partner_id_api_clients"),
                                 type_="foreignkey")
        batch_op.drop_column("subject_bidx")
        batch_op.drop_column("partner_id")
