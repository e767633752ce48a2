"""transparency log: the access log's seals, Merkle tree nodes and signed tree heads

The request path now only inserts entries; the sealer writes each entry's place (per-subject
seq and chain hash, leaf index) in access_log_seals, the tree's perfect subtrees in
merkle_nodes and signed heads in tree_heads. Existing entries are carried over: their seq,
prev_hash and hash move to seals unchanged (so old chains still verify), their leaves are
laid in created_at order (each citizen's entries keeping their seq order), and the tree is
built over them. The next sealer run signs the first head.

Revision ID: 0022_transparency_log
Revises: 0014
Create Date: 2026-12-01 18:00:00.000000
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0022_transparency_log"
down_revision: str | Sequence[str] | None = "0023_offline_verifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def _canonical(row: Any) -> bytes:
    """The entry as its hash covers it (frozen copy of xinyi.audit.service.canonical)."""
    created = row.created_at
    created = created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)
    return json.dumps({
        "id": str(row.id), "subject": bytes(row.subject_bidx).hex(), "seq": row.seq,
        "actor_type": row.actor_type, "actor_id": row.actor_id,
        "actor_name": row.actor_name, "action": row.action, "scope": row.scope,
        "consent_id": str(row.consent_id) if row.consent_id else None,
        "purpose": row.purpose, "created_at": created.isoformat(timespec="microseconds"),
    }, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def upgrade() -> None:
    op.create_table(
        "access_log_seals",
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("subject_bidx", sa.LargeBinary(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_access_log_seals")),
        sa.UniqueConstraint("leaf_index", name="uq_access_log_seals_leaf_index"),
        sa.UniqueConstraint("subject_bidx", "seq", name="uq_access_log_seals_subject_seq"),
    )
    op.create_table(
        "merkle_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "index", name=op.f("pk_merkle_nodes")),
    )
    op.create_table(
        "tree_heads",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_tree_heads")),
    )
    _carry_entries()
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.drop_constraint("uq_access_log_subject_seq", type_="unique")
        batch_op.drop_column("seq")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("hash")
    # Only now: SQLite rebuilds access_log above, which a reference to it would forbid.
    with op.batch_alter_table("access_log_seals", schema=None) as batch_op:
        batch_op.create_foreign_key(op.f("fk_access_log_seals_entry_id_access_log"),
                                    "access_log", ["entry_id"], ["id"])


def _carry_entries() -> None:
    conn = op.get_bind()
    # Typed, so that each backend hands back what the hash covered (SQLite stores UUIDs as
    # hex and times as text).
    log = sa.table("access_log", *(sa.column(c, t) for c, t in (
        ("id", sa.Uuid()), ("subject_bidx", sa.LargeBinary()), ("seq", sa.Integer()),
        ("actor_type", sa.String()), ("actor_id", sa.String()), ("actor_name", sa.String()),
        ("action", sa.String()), ("scope", sa.String()), ("consent_id", sa.Uuid()),
        ("purpose", sa.Text()), ("created_at", sa.DateTime(timezone=True)),
        ("prev_hash", sa.LargeBinary()), ("hash", sa.LargeBinary()))))
    rows = conn.execute(sa.select(log.c.id, log.c.subject_bidx, log.c.seq, log.c.created_at)
                        .order_by(log.c.created_at, log.c.id)).all()
    if not rows:
        return
    # Leaf slots in created_at order; each citizen's slots go to their entries in seq order.
    slots: dict[bytes, list[int]] = {}
    seqs: dict[bytes, list[tuple[int, Any]]] = {}
    for position, row in enumerate(rows):
        bidx = bytes(row.subject_bidx)
        slots.setdefault(bidx, []).append(position)
        seqs.setdefault(bidx, []).append((row.seq, row.id))
    leaf_of: dict[Any, int] = {}
    for bidx, chain in seqs.items():
        for slot, (_seq, entry_id) in zip(slots[bidx], sorted(chain, key=lambda c: c[0]),
                                          strict=True):
            leaf_of[entry_id] = slot
    seals_t = sa.table("access_log_seals", *(sa.column(c, t) for c, t in (
        ("entry_id", sa.Uuid()), ("subject_bidx", sa.LargeBinary()), ("seq", sa.Integer()),
        ("leaf_index", sa.BigInteger()), ("prev_hash", sa.LargeBinary()),
        ("hash", sa.LargeBinary()), ("sealed_at", sa.DateTime(timezone=True)))))
    nodes_t = sa.table("merkle_nodes", sa.column("level", sa.SmallInteger()),
                       sa.column("index", sa.BigInteger()), sa.column("hash", sa.LargeBinary()))
    leaves: list[bytes] = [b""] * len(rows)
    now = datetime.now(UTC)
    if conn.dialect.name == "sqlite":  # stored naive in UTC, as the app's UTCDateTime does
        now = now.replace(tzinfo=None)
    ids = [r.id for r in rows]
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        seals = []
        for row in conn.execute(sa.select(log).where(log.c.id.in_(chunk))):
            data = bytes(row.prev_hash) + _canonical(row)
            leaves[leaf_of[row.id]] = hashlib.sha256(b"\x00" + data).digest()
            seals.append({"entry_id": row.id, "subject_bidx": bytes(row.subject_bidx),
                          "seq": row.seq, "leaf_index": leaf_of[row.id],
                          "prev_hash": bytes(row.prev_hash), "hash": bytes(row.hash),
                          "sealed_at": now})
        conn.execute(seals_t.insert(), seals)
    level, below = 0, leaves
    while below:
        nodes = [{"level": level, "index": i, "hash": h} for i, h in enumerate(below)]
        for start in range(0, len(nodes), BATCH):
            conn.execute(nodes_t.insert(), nodes[start:start + BATCH])
        below = [_node(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        level += 1


def downgrade() -> None:
    unsealed = op.get_bind().scalar(sa.text(
        "SELECT count(*) FROM access_log a WHERE NOT EXISTS "
        "(SELECT 1 FROM access_log_seals s WHERE s.entry_id = a.id)"))
    if unsealed:
        raise RuntimeError(f"{unsealed} access-log entries are not sealed yet: run "
                           "`xinyi audit seal` first (they would have no place in the chains)")
    with op.batch_alter_table("access_log_seals", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_access_log_seals_entry_id_access_log"),
                                 type_="foreignkey")
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.LargeBinary(length=32), nullable=True))
    op.execute("UPDATE access_log SET seq = s.seq, prev_hash = s.prev_hash, hash = s.hash "
               "FROM access_log_seals s WHERE s.entry_id = access_log.id")
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.alter_column("seq", nullable=False)
        batch_op.alter_column("prev_hash", nullable=False)
        batch_op.alter_column("hash", nullable=False)
        batch_op.create_unique_constraint("uq_access_log_subject_seq", ["subject_bidx", "seq"])
    op.drop_table("tree_heads")
    op.drop_table("merkle_nodes")
    op.drop_table("access_log_seals")
