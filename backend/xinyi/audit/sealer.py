"""The sealer: gives every committed access-log entry its place, and signs tree heads.

One sealer at a time (a transaction-scoped PostgreSQL advisory lock; SQLite's single writer
on SQLite). Each batch takes unsealed entries — those with no seal row, whatever their
``created_at`` — oldest first, so an entry whose transaction committed after later ones is
sealed in the next batch, never skipped. Each gets its per-subject ``seq`` and chain hash and
the next leaf of the log-wide tree; the batch writes seal rows and the new perfect subtree
nodes (:mod:`xinyi.audit.merkle`), never touching an entry.

The continuous loop (:class:`SealLoop`, in the worker) scans only entries newer than
``SETTLE`` before its last scan that came back drained (every transaction that inserted
older ones has ended by then), with a full sweep every ``FULL_SWEEP``; ``xinyi worker
--once`` always sweeps in full.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, insert, or_, select
from sqlalchemy.orm import Session

from xinyi.audit import merkle
from xinyi.audit.models import AccessLogEntry, AccessLogSeal, MerkleNode, TreeHead
from xinyi.audit.service import GENESIS, Head, entry_bytes
from xinyi.db import Database
from xinyi.deps import Deps
from xinyi.errors import Conflict, DomainError, NotFound
from xinyi.logs import failure
from xinyi.outbox.service import emit
from xinyi.signing import service as signing
from xinyi.uow import run_in_unit

log = logging.getLogger(__name__)

SEAL_LOCK = 0x7879_7365_616C_6572 & 0x7FFF_FFFF_FFFF_FFFF  # "xysealer"
BATCH = 5000
SETTLE = timedelta(seconds=60)
FULL_SWEEP = timedelta(minutes=2)  # well inside XINYI_SEAL_ALERT_SECONDS (300 s)
TREE_HEAD_TOPIC = "transparency.tree_head"


def _locked(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(SEAL_LOCK))))


def tree_size(session: Session) -> int:
    last = session.scalar(select(func.max(MerkleNode.index)).where(MerkleNode.level == 0))
    return 0 if last is None else int(last) + 1


def _nodes(session: Session, wanted: Sequence[merkle.Node]) -> dict[merkle.Node, bytes]:
    if not wanted:
        return {}
    found: dict[merkle.Node, bytes] = {}
    unique = sorted(set(wanted))
    for start in range(0, len(unique), 200):
        chunk = unique[start:start + 200]
        for level, index, digest in session.execute(
                select(MerkleNode.level, MerkleNode.index, MerkleNode.hash).where(or_(*(
                    and_(MerkleNode.level == lv, MerkleNode.index == ix) for lv, ix in chunk)))):
            found[(int(level), int(index))] = bytes(digest)
    return found


def _frontier(session: Session, size: int) -> dict[int, bytes]:
    wanted = merkle.frontier_nodes(size)
    found = _nodes(session, wanted)
    if len(found) != len(wanted):
        raise RuntimeError("the Merkle tree's right edge is incomplete")
    return {level: found[(level, index)] for level, index in wanted}


def _heads(session: Session, subjects: Sequence[bytes]) -> dict[bytes, Head]:
    last = (select(AccessLogSeal.subject_bidx.label("bidx"),
                   func.max(AccessLogSeal.seq).label("seq"))
            .where(AccessLogSeal.subject_bidx.in_(subjects))
            .group_by(AccessLogSeal.subject_bidx).subquery())
    rows = session.execute(select(AccessLogSeal.subject_bidx, AccessLogSeal.seq,
                                  AccessLogSeal.hash)
                           .join(last, and_(last.c.bidx == AccessLogSeal.subject_bidx,
                                            last.c.seq == AccessLogSeal.seq)))
    return {bytes(b): Head(int(s), bytes(h)) for b, s, h in rows}


def seal_batch(session: Session, deps: Deps, *, batch: int = BATCH,
               since: datetime | None = None) -> int | None:
    """Seal up to ``batch`` entries (only those created at or after ``since``, if given) in
    the caller's unit; how many, or None when another sealer holds the lock."""
    done = _seal(session, deps, batch, since)
    return None if done is None else done[0]


def _seal(session: Session, deps: Deps, batch: int,
          since: datetime | None) -> tuple[int, datetime | None] | None:
    """:func:`seal_batch`, also answering the newest ``created_at`` it sealed: a sweep goes
    on from there (what it sealed is behind it; an entry committed meanwhile with an older
    time is the next sweep's), instead of skipping over every sealed entry again."""
    if not _locked(session):
        return None
    unsealed = ~exists().where(AccessLogSeal.entry_id == AccessLogEntry.id)
    stmt = select(AccessLogEntry).where(unsealed)
    if since is not None:
        stmt = stmt.where(AccessLogEntry.created_at >= since)
    entries = list(session.scalars(stmt.order_by(AccessLogEntry.created_at, AccessLogEntry.id)
                                   .limit(batch)))
    if not entries:
        return 0, None
    size = tree_size(session)
    frontier = _frontier(session, size)
    heads = _heads(session, sorted({e.subject_bidx for e in entries}))
    seals, leaves = [], []
    for offset, entry in enumerate(entries):
        head = heads.get(entry.subject_bidx, Head(0, GENESIS))
        data = entry_bytes(head.hash, entry, head.seq + 1)
        digest = hashlib.sha256(data).digest()
        seals.append({"entry_id": entry.id, "subject_bidx": entry.subject_bidx,
                      "seq": head.seq + 1, "leaf_index": size + offset,
                      "prev_hash": head.hash, "hash": digest})
        leaves.append(merkle.leaf_hash(data))
        heads[entry.subject_bidx] = Head(head.seq + 1, digest)
    nodes = merkle.append_leaves(size, frontier, leaves)
    now = deps.clock()
    for seal in seals:
        seal["sealed_at"] = now
    conn = session.connection()
    conn.execute(insert(AccessLogSeal), seals)
    conn.execute(insert(MerkleNode), [{"level": lv, "index": ix, "hash": h}
                                      for lv, ix, h in nodes])
    session.expunge_all()
    return len(entries), entries[-1].created_at


def head_bytes(tree_size: int, root_hash: bytes, timestamp: int) -> bytes:
    """What a tree head's signature covers (docs/access-log.md)."""
    return json.dumps({"tree_size": tree_size, "root_hash": root_hash.hex(),
                       "timestamp": timestamp}, sort_keys=True, separators=(",", ":")).encode()


def root_at(session: Session, size: int) -> bytes:
    if size == 0:
        return merkle.EMPTY_ROOT
    wanted = merkle.frontier_nodes(size)
    found = _nodes(session, wanted)
    return merkle.frontier_root([found[n] for n in wanted])


def sign_head(session: Session, deps: Deps) -> TreeHead | None:
    """Sign the tree as it stands, if it grew since the last head (under the sealer's
    lock). The first head of each hour also goes out as a ``transparency.tree_head`` event."""
    if not _locked(session):
        return None
    size = tree_size(session)
    last = latest_head(session)
    if size == 0 or (last is not None and last.tree_size >= size):
        return None
    key = signing.signing_key(session, deps, "audit")
    now = deps.clock()
    timestamp = int(now.timestamp() * 1000)
    root = root_at(session, size)
    head = TreeHead(tree_size=size, root_hash=root, timestamp=timestamp, kid=key.kid,
                    signature=key.private_key.sign(head_bytes(size, root, timestamp)))
    session.add(head)
    if last is None or last.timestamp // 3_600_000 != timestamp // 3_600_000:
        emit(session, TREE_HEAD_TOPIC, head_json(head), now=now)
    session.flush()
    return head


def latest_head(session: Session) -> TreeHead | None:
    return session.scalar(select(TreeHead).order_by(TreeHead.tree_size.desc()).limit(1))


def head_json(head: TreeHead) -> dict[str, Any]:
    return {"tree_size": head.tree_size, "root_hash": head.root_hash.hex(),
            "timestamp": head.timestamp, "kid": head.kid, "signature": head.signature.hex()}


def signed_head(session: Session) -> dict[str, Any]:
    """The latest signed tree head with the public key that signed it (the public route);
    404 before the first head is signed."""
    head = latest_head(session)
    if head is None:
        raise NotFound("No tree head is signed yet")
    return {**head_json(head), "public_jwk": signing.public_jwk(session, head.kid)}


def sealing_deps(deps: Deps) -> Deps:
    """``deps`` connected as the sealer's database role when one is configured
    (``XINYI_SEALER_DATABASE_URL``): only that role may write seals, nodes and heads."""
    url = deps.settings.sealer_database_url
    return deps if not url else dataclasses.replace(deps, db=Database(url))


def seal_all(deps: Deps, *, since: datetime | None = None) -> tuple[int, int | None]:
    """Seal until nothing is left (a unit per batch), then sign a head: (sealed, size)."""
    total, cursor = 0, since
    while True:
        done = run_in_unit(deps.db.sessions, functools.partial(_seal, deps=deps, batch=BATCH,
                                                               since=cursor))
        if not done or not done[0]:
            break
        total += done[0]
        cursor = done[1]
        if done[0] < BATCH:
            break
    head = run_in_unit(deps.db.sessions, lambda session: sign_head(session, deps))
    return total, head.tree_size if head else None


def has_unsealed(session: Session, before: datetime) -> bool:
    return session.scalar(select(exists().where(
        AccessLogEntry.created_at < before,
        ~exists().where(AccessLogSeal.entry_id == AccessLogEntry.id)))) or False


class SealLoop:
    """The worker's continuous sealer: a batch as soon as entries wait (polling every
    ``poll_seconds``), a signed head every ``head_seconds`` when the tree grew."""

    def __init__(self, deps: Deps, *, poll_seconds: float = 0.1,
                 head_seconds: float | None = None) -> None:
        self.deps = deps
        self.poll = poll_seconds
        self.head_every = (head_seconds if head_seconds is not None
                           else deps.settings.tree_head_interval_seconds)
        self._floor: datetime | None = None
        self._swept = float("-inf")
        self._signed = float("-inf")

    def step(self) -> int:
        """One round: seal what waits, maybe sign; how many entries were sealed."""
        started = self.deps.clock()
        full = time.monotonic() - self._swept >= FULL_SWEEP.total_seconds()
        since = None if full else self._floor
        sealed, cursor = 0, since
        while True:
            done = run_in_unit(self.deps.db.sessions, functools.partial(
                _seal, deps=self.deps, batch=BATCH, since=cursor))
            if done is None:  # another sealer runs
                return sealed
            sealed += done[0]
            if done[0] < BATCH:
                break
            cursor = done[1]
        # Drained: every transaction that inserted an entry older than SETTLE before this
        # scan had ended when it ran, so the next scans may start there.
        self._floor = started - SETTLE
        if full:
            self._swept = time.monotonic()
        if time.monotonic() - self._signed >= self.head_every:
            run_in_unit(self.deps.db.sessions, lambda session: sign_head(session, self.deps))
            self._signed = time.monotonic()
        return sealed

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                sealed = self.step()
            except Exception as err:
                log.error("sealing failed", extra={"event": "seal_failed", **failure(err)})
                sealed = 0
            if not sealed:
                stop.wait(self.poll)


def inclusion_proof(session: Session, leaf_index: int, size: int) -> list[bytes]:
    ranges = merkle.path_ranges(leaf_index, size)
    return _range_hashes(session, ranges)


def consistency_proof(session: Session, old: int, new: int) -> list[bytes]:
    return _range_hashes(session, merkle.consistency_ranges(old, new))


def _range_hashes(session: Session, ranges: Sequence[merkle.Range]) -> list[bytes]:
    wanted = [n for a, b in ranges for n in merkle.perfect_nodes(a, b)]
    found = _nodes(session, wanted)
    return [merkle.range_hash(a, b, found.__getitem__) for a, b in ranges]


def head_at(session: Session, size: int) -> TreeHead | None:
    return session.get(TreeHead, size)


def head_covering(session: Session, leaf_index: int) -> TreeHead | None:
    """The latest signed head; None while no head covers the leaf yet."""
    head = latest_head(session)
    return head if head is not None and head.tree_size > leaf_index else None


def utc_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class UnknownTreeSize(NotFound):
    code = "unknown_tree_size"
    title = "No signed tree head has that size"


class BadTreeSizes(DomainError):
    status = 422
    code = "bad_tree_sizes"
    title = "from must be at least 1 and at most to"


class EntryPending(Conflict):
    code = "entry_pending"
    title = "This entry is not sealed into a signed tree head yet: ask again in a few seconds"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "5"})


def consistency(session: Session, old: int, new: int) -> dict[str, Any]:
    """The consistency proof between two signed heads (sizes), both heads included."""
    if not 0 < old <= new:
        raise BadTreeSizes(errors=[{"field": "from", "location": "query",
                                    "messages": ["must be at least 1 and at most to"]}])
    first, second = head_at(session, old), head_at(session, new)
    for size, head, field in ((old, first, "from"), (new, second, "to")):
        if head is None:
            raise UnknownTreeSize(f"No signed tree head has size {size}", errors=[
                {"field": field, "location": "query", "messages": ["not a signed tree size"]}])
    assert first is not None and second is not None
    return {"from": head_json(first), "to": head_json(second),
            "proof": [h.hex() for h in consistency_proof(session, old, new)]}


def heads_page(session: Session, *, page: int, page_size: int) -> tuple[list[TreeHead], int]:
    total = session.scalar(select(func.count()).select_from(TreeHead)) or 0
    rows = session.scalars(select(TreeHead).order_by(TreeHead.tree_size.desc())
                           .limit(page_size).offset((page - 1) * page_size))
    return list(rows), total


def entry_proof(session: Session, bidx: bytes, entry_id: uuid.UUID) -> dict[str, Any]:
    """The inclusion proof of the citizen's own entry against the latest signed head;
    another citizen's entry is not found, one not yet covered by a head is pending."""
    entry = session.get(AccessLogEntry, entry_id)
    if entry is None or entry.subject_bidx != bidx:
        raise NotFound("No such entry in your access log")
    seal = session.get(AccessLogSeal, entry_id)
    head = latest_head(session)
    if seal is None or head is None or head.tree_size <= seal.leaf_index:
        raise EntryPending()
    return {"entry_id": entry.id, "seq": seal.seq, "leaf_index": seal.leaf_index,
            "tree_size": head.tree_size, "prev_hash": seal.prev_hash.hex(),
            "hash": seal.hash.hex(),
            "entry": entry_bytes(seal.prev_hash, entry, seal.seq)[32:].decode(),
            "audit_path": [h.hex() for h in inclusion_proof(session, seal.leaf_index,
                                                            head.tree_size)],
            "tree_head": head_json(head)}
