"""provider catalogue: the catalogue items each data provider may push records of

Every provider that exists today is granted "*" (every item), so nothing it does now breaks;
the credit office narrows the grants with PUT /v1/admin/providers/{id}/catalogue. A provider
created from now on is granted what its creation names, and a provider without any grant may
push nothing.

The grants live in a table of their own, touched by no other migration, so this one commutes
with any migration that does not add providers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALL_CATALOGUE = "*"


def upgrade() -> None:
    grants = op.create_table(
        "provider_catalogue_grants",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("catalogue_code", sa.String(length=64), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["api_clients.id"],
                                name=op.f("fk_provider_catalogue_grants_client_id_api_clients")),
        sa.PrimaryKeyConstraint("client_id", "catalogue_code",
                                name=op.f("pk_provider_catalogue_grants")),
    )
    assert grants is not None
    clients = sa.table("api_clients", sa.column("id", sa.Uuid()), sa.column("type", sa.String()))
    granted_at = datetime.now(UTC)
    if op.get_bind().dialect.name == "sqlite":  # the app's UTC type stores it naive there
        granted_at = granted_at.replace(tzinfo=None)
    op.execute(grants.insert().from_select(
        ["client_id", "catalogue_code", "granted_at"],
        sa.select(clients.c.id, sa.literal(ALL_CATALOGUE, sa.String()),
                  sa.literal(granted_at, sa.DateTime(timezone=True)))
        .where(clients.c.type == "provider")))


def downgrade() -> None:
    op.drop_table("provider_catalogue_grants")
