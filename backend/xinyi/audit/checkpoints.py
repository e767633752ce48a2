"""Checking the whole access log (``xinyi audit verify``), and the export's chain proof.

:func:`verify_all` recomputes, in one pass over the seals in leaf order, every citizen's
chain and every leaf of the log-wide tree from the entries themselves, then every stored
subtree, every signed tree head (root and signature), the checkpoints signed before the
tree existed, any head a partner kept, and looks for entries left unsealed too long. It
names the first divergence.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from xinyi.audit import merkle, sealer
from xinyi.audit.models import (
    AccessLogEntry,
    AccessLogSeal,
    AuditCheckpoint,
    MerkleNode,
    TreeHead,
)
from xinyi.audit.service import GENESIS, entry_bytes, read_head
from xinyi.deps import Deps
from xinyi.signing import service as signing


@dataclass(frozen=True)
class KeptHead:
    """A tree head someone kept a copy of (a partner's, from the hourly event)."""

    tree_size: int
    root_hash: bytes


@dataclass(frozen=True)
class AuditReport:
    entries_checked: int
    heads_checked: int
    problem: str | None


def _entry_problem(seal: AccessLogSeal, reason: str) -> str:
    return (f"access-log entry {seal.entry_id} (subject {bytes(seal.subject_bidx).hex()[:16]}…, "
            f"seq {seal.seq}, leaf {seal.leaf_index}): {reason}")


def _leaves(session: Session, batch: int) -> tuple[list[bytes], str | None]:
    """Every leaf recomputed from its entry, checking the chains on the way."""
    leaves: list[bytes] = []
    heads: dict[bytes, tuple[int, bytes]] = {}
    stmt = (select(AccessLogSeal, AccessLogEntry)
            .outerjoin(AccessLogEntry, AccessLogEntry.id == AccessLogSeal.entry_id)
            .order_by(AccessLogSeal.leaf_index).execution_options(yield_per=batch))
    for seal, entry in session.execute(stmt):
        if seal.leaf_index != len(leaves):
            return leaves, f"leaf {len(leaves)}: no sealed entry (removed)"
        if entry is None:
            return leaves, _entry_problem(seal, "the entry was removed")
        subject = bytes(seal.subject_bidx)
        seq, prev = heads.get(subject, (0, GENESIS))
        if entry.subject_bidx != subject:
            return leaves, _entry_problem(seal, "the entry names another citizen")
        if seal.seq != seq + 1:
            return leaves, _entry_problem(seal, f"sequence gap: expected {seq + 1}")
        if seal.prev_hash != prev:
            return leaves, _entry_problem(seal, "prev_hash does not match the previous entry")
        data = entry_bytes(prev, entry, seal.seq)
        if hashlib.sha256(data).digest() != seal.hash:
            return leaves, _entry_problem(seal, "rewritten: its content does not match its hash")
        heads[subject] = (seal.seq, bytes(seal.hash))
        leaves.append(merkle.leaf_hash(data))
    return leaves, None


def _levels(session: Session, leaves: list[bytes], batch: int) -> tuple[list[list[bytes]],
                                                                        str | None]:
    """The tree's perfect subtrees recomputed level by level, each compared with the stored
    nodes (which proofs are built from)."""
    levels = [leaves]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([merkle.node_hash(below[i], below[i + 1])
                       for i in range(0, len(below) - 1, 2)])
    stored = session.execute(select(MerkleNode.level, MerkleNode.index, MerkleNode.hash)
                             .order_by(MerkleNode.level, MerkleNode.index)
                             .execution_options(yield_per=batch))
    count = 0
    for level, index, digest in stored:
        ok = level < len(levels) and index < len(levels[level])
        if not ok:
            return levels, f"merkle node ({level}, {index}) is beyond the sealed entries"
        if levels[level][index] != digest:
            return levels, (f"merkle node ({level}, {index}) does not match the entries "
                            "under it")
        count += 1
    if count != sum(len(lv) for lv in levels):
        return levels, "merkle nodes are missing"
    return levels, None


def verify_all(session: Session, deps: Deps, *, kept: Sequence[KeptHead] = (),
               batch: int = 10_000) -> AuditReport:
    leaves, problem = _leaves(session, batch)
    if problem:
        return AuditReport(len(leaves), 0, problem)
    levels, problem = _levels(session, leaves, batch)
    if problem:
        return AuditReport(len(leaves), 0, problem)

    def root(size: int) -> bytes:
        if size == 0:
            return merkle.EMPTY_ROOT
        return merkle.range_hash(0, size, lambda n: levels[n[0]][n[1]])

    done = 0
    for head in session.scalars(select(TreeHead).order_by(TreeHead.tree_size)):
        if head.tree_size > len(leaves):
            return AuditReport(len(leaves), done, (
                f"tree head {head.tree_size}: signed over more entries than are sealed "
                f"({len(leaves)}): entries were removed"))
        if root(head.tree_size) != head.root_hash:
            return AuditReport(len(leaves), done, (
                f"tree head {head.tree_size}: its root does not match the entries"))
        public = signing.any_public_key(session, head.kid)
        try:
            if public is None:
                raise InvalidSignature
            public.verify(head.signature, sealer.head_bytes(head.tree_size, head.root_hash,
                                                            head.timestamp))
        except InvalidSignature:
            return AuditReport(len(leaves), done,
                               f"tree head {head.tree_size}: signature is not valid")
        done += 1
    for copy in kept:
        if copy.tree_size > len(leaves) or root(copy.tree_size) != copy.root_hash:
            return AuditReport(len(leaves), done, (
                f"kept tree head {copy.tree_size}: the log no longer extends it (its "
                "history was rewritten)"))
    problem = _checkpoints(session)
    if problem:
        return AuditReport(len(leaves), done, problem)
    cutoff = deps.clock() - timedelta(seconds=deps.settings.seal_alert_seconds)
    if sealer.has_unsealed(session, cutoff):
        oldest = session.scalar(
            select(AccessLogEntry.id).where(~select(AccessLogSeal.entry_id).where(
                AccessLogSeal.entry_id == AccessLogEntry.id).exists())
            .order_by(AccessLogEntry.created_at).limit(1))
        return AuditReport(len(leaves), done, (
            f"access-log entry {oldest}: still unsealed after "
            f"{deps.settings.seal_alert_seconds:g} s (the sealer is not keeping up, or "
            "skipped it)"))
    return AuditReport(len(leaves), done, None)


def _heads_digest(session: Session, prev: bytes, start: datetime,
                  end: datetime) -> tuple[bytes, int]:
    """A pre-tree checkpoint's digest, recomputed from the seals the migration carried."""
    in_window = and_(AccessLogEntry.created_at > start, AccessLogEntry.created_at <= end)
    joined = (select(AccessLogSeal.subject_bidx, AccessLogSeal.seq, AccessLogSeal.hash)
              .join(AccessLogEntry, AccessLogEntry.id == AccessLogSeal.entry_id)
              .where(in_window))
    rows = joined.subquery()
    heads = (select(rows.c.subject_bidx, func.max(rows.c.seq).label("seq"))
             .group_by(rows.c.subject_bidx).subquery())
    found = session.execute(
        select(rows.c.subject_bidx, rows.c.seq, rows.c.hash)
        .join(heads, and_(heads.c.subject_bidx == rows.c.subject_bidx,
                          heads.c.seq == rows.c.seq))
        .order_by(rows.c.subject_bidx)).all()
    count = session.scalar(select(func.count()).select_from(rows)) or 0
    digest = hashlib.sha256(prev)
    for bidx, seq, entry_hash in found:
        digest.update(bytes(bidx) + int(seq).to_bytes(8, "big") + bytes(entry_hash))
    return digest.digest(), int(count)


def _checkpoints(session: Session) -> str | None:
    """The checkpoints signed before the tree existed (kept, and still checked)."""
    prev = GENESIS
    for cp in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id)):
        if cp.prev_digest != prev:
            return f"checkpoint {cp.id}: does not follow {cp.id - 1}"
        public = signing.any_public_key(session, cp.kid)
        try:
            if public is None:
                raise InvalidSignature
            public.verify(cp.signature, cp.digest)
        except InvalidSignature:
            return f"checkpoint {cp.id}: signature is not valid"
        digest, count = _heads_digest(session, prev, cp.window_start, cp.window_end)
        if digest != cp.digest or count != cp.entries:
            return (f"checkpoint {cp.id} ({cp.window_start.isoformat()} – "
                    f"{cp.window_end.isoformat()}): entries were rewritten, added or removed "
                    f"after signing (signed {cp.entries} entries, found {count})")
        prev = cp.digest
    return None


def export_chain_proof(session: Session, deps: Deps, account_id: uuid.UUID,
                       bidx: bytes) -> dict[str, Any]:
    """What proves the citizen's exported chain: its sealed head, and the inclusion proof of
    that head's entry against the latest signed tree head (docs/access-log.md)."""
    head = read_head(session, bidx)
    proof: dict[str, Any] = {"subject": bidx.hex(), "head_seq": head.seq,
                             "head_hash": head.hash.hex(), "tree_head": None,
                             "inclusion": None}
    if head.seq == 0:
        return proof
    leaf = session.scalar(select(AccessLogSeal.leaf_index).where(
        AccessLogSeal.subject_bidx == bidx, AccessLogSeal.seq == head.seq))
    signed = sealer.latest_head(session)
    if leaf is None or signed is None or signed.tree_size <= leaf:
        return proof
    proof["tree_head"] = {**sealer.head_json(signed),
                          "public_jwk": signing.public_jwk(session, signed.kid)}
    proof["inclusion"] = {
        "leaf_index": leaf, "tree_size": signed.tree_size,
        "audit_path": [h.hex() for h in sealer.inclusion_proof(session, leaf,
                                                               signed.tree_size)]}
    return proof
