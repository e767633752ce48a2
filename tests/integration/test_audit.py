"""The access log as a transparency log: the request only inserts, the sealer gives every
entry its chain place and Merkle leaf, tree heads are signed, and ``audit verify`` names any
tampering (a rewritten, removed or unsealed entry, a re-signed fork of a kept head)."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, delete, func, select, text, update
from sqlalchemy.orm import Session

from tests.factories import ROOT
from tests.proofs import consistency_ok, inclusion_ok
from xinyi.audit import merkle, sealer
from xinyi.audit.checkpoints import KeptHead, verify_all
from xinyi.audit.models import AccessLogEntry, AccessLogSeal, MerkleNode, TreeHead
from xinyi.audit.service import GENESIS, Access, append, entry_bytes, entry_hash
from xinyi.outbox.models import OutboxEvent
from xinyi.signing import service as signing
from xinyi.signing.models import SigningKeyRow
from xinyi.subjects.models import Subject


def _subject(session, n: int) -> bytes:  # type: ignore[no-untyped-def]
    bidx = bytes([n]) * 32
    session.add(Subject(bidx=bidx, id_number_enc=b"x" * 40, first_seen_at=datetime.now(UTC)))
    session.flush()
    return bidx


def _log(session, bidx: bytes, when: datetime, n: int = 3) -> list[AccessLogEntry]:  # type: ignore[no-untyped-def]
    entries = [append(session, Access(bidx, "partner", str(uuid.uuid4()), "图书馆", "report",
                                      "report.summary", "借书押金"), now=when + timedelta(
                                          seconds=i)) for i in range(n)]
    session.commit()
    return entries


def _seal(session, deps) -> TreeHead | None:  # type: ignore[no-untyped-def]
    while sealer.seal_batch(session, deps):
        pass
    head = sealer.sign_head(session, deps)
    session.commit()
    return head


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, written out plainly (the stored tree is checked against it)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _seals(session, bidx: bytes | None = None) -> list[AccessLogSeal]:  # type: ignore[no-untyped-def]
    stmt = select(AccessLogSeal).order_by(AccessLogSeal.leaf_index)
    if bidx is not None:
        stmt = stmt.where(AccessLogSeal.subject_bidx == bidx)
    return list(session.scalars(stmt))


def test_an_entry_is_one_insert_and_pending_until_sealed(app: Flask) -> None:
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        bidx = _subject(s, 1)
        entries = _log(s, bidx, datetime.now(UTC))
        assert s.scalar(select(func.count()).select_from(AccessLogEntry)
                        .where(AccessLogEntry.subject_bidx == bidx)) == 3
        assert _seals(s, bidx) == []  # nothing but the entry is written on the request path
        _seal(s, deps)
        seals = _seals(s, bidx)
        assert [x.entry_id for x in seals] == [e.id for e in entries]
        assert [x.seq for x in seals] == [1, 2, 3]
        assert seals[0].prev_hash == GENESIS and seals[1].prev_hash == seals[0].hash
        assert seals[2].hash == entry_hash(seals[1].hash, entries[2], 3)
        assert sealer.seal_batch(s, deps) == 0  # sealed exactly once


def test_the_stored_tree_and_signed_head_match_rfc_9162_over_every_entry(app: Flask) -> None:
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        a, b = _subject(s, 2), _subject(s, 3)
        now = datetime.now(UTC)
        entries = {e.id: e for e in _log(s, a, now, n=7) + _log(s, b, now, n=6)}
        head = _seal(s, deps)
        seals = _seals(s)
        assert [x.leaf_index for x in seals] == list(range(13))  # dense, from 0
        leaves = [merkle.leaf_hash(entry_bytes(x.prev_hash, entries[x.entry_id], x.seq))
                  for x in seals]
        assert head is not None and head.tree_size == 13
        assert head.root_hash == _mth(leaves)
        public = signing.any_public_key(s, head.kid)
        assert public is not None
        public.verify(head.signature, sealer.head_bytes(13, head.root_hash, head.timestamp))
        for i, leaf in enumerate(leaves):
            path = sealer.inclusion_proof(s, i, 13)
            assert inclusion_ok(leaf, i, 13, path, head.root_hash)
        for old in range(1, 13):
            proof = sealer.consistency_proof(s, old, 13)
            assert consistency_ok(old, 13, _mth(leaves[:old]), head.root_hash, proof)
        report = verify_all(s, deps)
        assert report.problem is None and report.entries_checked == 13
        assert report.heads_checked == 1
        assert sealer.sign_head(s, deps) is None  # the tree did not grow: no new head


def test_a_rewritten_sealed_entry_is_named(app: Flask) -> None:
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        bidx = _subject(s, 4)
        entries = _log(s, bidx, datetime.now(UTC))
        _seal(s, deps)
        s.execute(update(AccessLogEntry).where(AccessLogEntry.id == entries[1].id)
                  .values(purpose="篡改"))
        report = verify_all(s, deps)
    assert report.problem is not None
    assert str(entries[1].id) in report.problem and "rewritten" in report.problem


def test_a_rewritten_entry_with_its_seal_rehashed_breaks_the_tree(app: Flask) -> None:
    """A forger who also rewrites the seal's hash (and the next entry's link) without the
    tree: the leaf no longer matches the stored node, or the signed root."""
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        bidx = _subject(s, 5)
        entries = _log(s, bidx, datetime.now(UTC), n=2)
        _seal(s, deps)
        s.execute(update(AccessLogEntry).where(AccessLogEntry.id == entries[1].id)
                  .values(purpose="篡改"))
        forged = s.get(AccessLogEntry, entries[1].id)
        s.refresh(forged)
        seal = s.get(AccessLogSeal, entries[1].id)
        s.execute(update(AccessLogSeal).where(AccessLogSeal.entry_id == entries[1].id)
                  .values(hash=entry_hash(seal.prev_hash, forged, 2)))
        report = verify_all(s, deps)
    assert report.problem is not None and "merkle node (0, " in report.problem


def test_a_removed_entry_is_named(app: Flask) -> None:
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        bidx = _subject(s, 6)
        entries = _log(s, bidx, datetime.now(UTC))
        _seal(s, deps)
        s.execute(delete(AccessLogSeal).where(AccessLogSeal.entry_id == entries[1].id))
        s.execute(delete(AccessLogEntry).where(AccessLogEntry.id == entries[1].id))
        report = verify_all(s, deps)
    assert report.problem is not None and "leaf 1: no sealed entry" in report.problem


def test_a_removed_last_entry_with_its_leaf_contradicts_the_signed_head(app: Flask) -> None:
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        bidx = _subject(s, 7)
        entries = _log(s, bidx, datetime.now(UTC), n=4)
        _seal(s, deps)
        s.execute(delete(AccessLogSeal).where(AccessLogSeal.entry_id == entries[3].id))
        s.execute(delete(AccessLogEntry).where(AccessLogEntry.id == entries[3].id))
        # The forger drops the leaf and every subtree over it too.
        s.execute(delete(MerkleNode).where(MerkleNode.level == 0, MerkleNode.index == 3))
        s.execute(delete(MerkleNode).where(MerkleNode.level == 1, MerkleNode.index == 1))
        s.execute(delete(MerkleNode).where(MerkleNode.level == 2, MerkleNode.index == 0))
        report = verify_all(s, deps)
    assert report.problem is not None
    assert "tree head 4: signed over more entries than are sealed" in report.problem


def test_a_resigned_fork_of_a_kept_head_fails_its_consistency_proof(app: Flask) -> None:
    """Someone holding the database and the audit key rewrites an entry and rebuilds every
    seal, node and head: the log checks out on its own, but not against a head a partner
    kept: the consistency proof from it fails, and ``audit verify`` with the copy names it."""
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        bidx = _subject(s, 8)
        entries = _log(s, bidx, datetime.now(UTC), n=3)
        kept = _seal(s, deps)
        assert kept is not None
        _log(s, bidx, datetime.now(UTC) + timedelta(seconds=10), n=2)
        _seal(s, deps)
        # The fork: history rewritten from entry 2 on, then sealed and signed again.
        s.execute(update(AccessLogEntry).where(AccessLogEntry.id == entries[1].id)
                  .values(purpose="篡改"))
        for table in (TreeHead, MerkleNode, AccessLogSeal):
            s.execute(delete(table))
        forked = _seal(s, deps)
        assert forked is not None and forked.tree_size == 5
        assert verify_all(s, deps).problem is None  # consistent with itself
        proof = sealer.consistency_proof(s, kept.tree_size, forked.tree_size)
        assert not consistency_ok(kept.tree_size, forked.tree_size,
                                             kept.root_hash, forked.root_hash, proof)
        report = verify_all(s, deps, kept=[KeptHead(kept.tree_size, kept.root_hash)])
    assert report.problem is not None and "kept tree head 3" in report.problem


def test_an_entry_left_unsealed_past_the_threshold_is_named(app: Flask) -> None:
    deps = app.extensions["xinyi"]
    late = deps.clock() - timedelta(seconds=deps.settings.seal_alert_seconds + 1)
    with deps.db.session() as s:
        bidx = _subject(s, 9)
        _seal(s, deps)
        fresh = _log(s, bidx, deps.clock(), n=1)  # unsealed, but within the threshold
        assert verify_all(s, deps).problem is None
        stale = _log(s, bidx, late, n=1)
        report = verify_all(s, deps)
        assert report.problem is not None and str(stale[0].id) in report.problem
        assert "unsealed" in report.problem
        _seal(s, deps)  # an old created_at is sealed all the same, never skipped
        assert {x.entry_id for x in _seals(s, bidx)} == {fresh[0].id, stale[0].id}
        assert verify_all(s, deps).problem is None


def test_the_worker_loop_seals_signs_and_catches_an_entry_that_committed_late(
        app: Flask) -> None:
    deps = app.extensions["xinyi"]
    loop = sealer.SealLoop(deps, head_seconds=0)
    with deps.db.session() as s:
        bidx = _subject(s, 11)
        _log(s, bidx, deps.clock(), n=2)
        assert loop.step() == 2
        head = sealer.latest_head(s)
        assert head is not None and head.tree_size == 2
        # A transaction that ran for half a minute commits after the scan: its entry's time
        # is older than what was sealed, and the next round seals it all the same.
        late = _log(s, bidx, deps.clock() - timedelta(seconds=30), n=1)
        assert loop.step() == 1
        assert loop.step() == 0
        assert [x.entry_id for x in _seals(s, bidx)][-1] == late[0].id
        head = sealer.latest_head(s)
        assert head is not None and head.tree_size == 3


def test_the_app_role_cannot_alter_the_log_nor_seal(app: Flask) -> None:
    deps = app.extensions["xinyi"]
    if not deps.db.url.startswith("postgresql"):
        pytest.skip("database roles are a PostgreSQL feature")
    sql = (ROOT / "docs" / "sql" / "production_roles.sql").read_text()
    statements = [line for line in sql.splitlines() if line and not line.startswith("--")]
    with deps.db.session() as s:
        bidx = _subject(s, 10)
        _log(s, bidx, datetime.now(UTC), n=1)
        _seal(s, deps)
        s.execute(text("CREATE ROLE xinyi_app_test NOLOGIN"))
        for statement in statements:
            s.execute(text(statement.replace(":app_role", "xinyi_app_test")))
        s.execute(text("SET LOCAL ROLE xinyi_app_test"))
        with s.begin_nested():
            s.execute(text("SELECT count(*) FROM access_log_seals"))
        for forbidden in ("UPDATE access_log SET purpose = 'x'", "DELETE FROM access_log",
                          "TRUNCATE access_log", "DELETE FROM audit_checkpoints",
                          "UPDATE access_log_seals SET seq = 9", "DELETE FROM merkle_nodes",
                          "DELETE FROM tree_heads", "UPDATE tree_heads SET tree_size = 0",
                          "INSERT INTO merkle_nodes VALUES (30, 0, '\\x00')"):
            with pytest.raises(Exception, match="permission denied"), s.begin_nested():
                s.execute(text(forbidden))


def _run_together(work: Callable[..., None], args: list[tuple[Any, ...]], *,
                  timeout: float) -> None:
    """``work`` in one thread per argument tuple, at once; any exception fails the test."""
    errors: list[BaseException] = []

    def guarded(*arguments: Any) -> None:
        try:
            work(*arguments)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=a) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not errors, errors


@contextlib.contextmanager
def _committed(deps: Any, *, pool_size: int, subjects: int = 1
               ) -> Iterator[tuple[Engine, list[bytes]]]:
    """Subjects committed through an engine of its own, for tests of real concurrent
    transactions; removed afterwards with the log and the tree (which only they fill)."""
    if not deps.db.url.startswith("postgresql"):
        pytest.skip("SQLite has a single writer: transactions cannot interleave")
    engine = create_engine(deps.db.url, pool_size=pool_size)
    bidxs = [uuid.uuid4().bytes * 2 for _ in range(subjects)]
    try:
        with Session(engine) as s:
            for bidx in bidxs:
                s.add(Subject(bidx=bidx, id_number_enc=b"x" * 40,
                              first_seen_at=datetime.now(UTC)))
            s.commit()
        yield engine, bidxs
    finally:
        with engine.begin() as conn:
            for table in (TreeHead, MerkleNode, AccessLogSeal):
                conn.execute(delete(table))
            conn.execute(delete(AccessLogEntry).where(AccessLogEntry.subject_bidx.in_(bidxs)))
            conn.execute(delete(Subject).where(Subject.bidx.in_(bidxs)))
            conn.execute(delete(SigningKeyRow).where(SigningKeyRow.purpose == "audit"))
            conn.execute(delete(OutboxEvent).where(OutboxEvent.topic == sealer.TREE_HEAD_TOPIC))
        deps.cache.clear()
        engine.dispose()


def test_an_entry_committed_after_a_later_one_is_sealed_after_it(app: Flask) -> None:
    """Transaction A writes the earlier entry but commits last: the sealer, which only sees
    committed entries, seals B first and A in its next batch, at the next leaf."""
    deps = app.extensions["xinyi"]
    with _committed(deps, pool_size=3) as (engine, [bidx]):
        early = datetime.now(UTC) - timedelta(seconds=30)
        a, b = Session(engine), Session(engine)
        try:
            first = append(a, Access(bidx, "staff", "s-1", "复核员", "review", "x", "A"),
                           now=early)
            a.flush()
            second = append(b, Access(bidx, "staff", "s-1", "复核员", "review", "x", "B"),
                            now=early + timedelta(seconds=1))
            b.commit()
            with Session(engine) as s:
                assert sealer.seal_batch(s, deps) == 1
                s.commit()
            a.commit()
            with Session(engine) as s:
                assert sealer.seal_batch(s, deps, since=early - sealer.SETTLE) == 1
                s.commit()
                seals = _seals(s, bidx)
        finally:
            a.close()
            b.close()
        assert [(x.entry_id, x.seq, x.leaf_index) for x in seals] == [
            (second.id, 1, 0), (first.id, 2, 1)]


def test_concurrent_writers_and_sealers_seal_every_entry_once_densely(app: Flask) -> None:
    """Six connections write entries out of created_at order while two sealers run at once:
    each entry is sealed exactly once, leaves and each chain's seq are dense, and it all
    verifies."""
    deps = app.extensions["xinyi"]
    writing = threading.Event()
    start = threading.Barrier(8)

    def writer(n: int) -> None:
        start.wait(timeout=10)
        for i in range(20):
            with Session(engine) as s:
                # Skewed clocks: later writes often carry earlier times.
                when = datetime.now(UTC) - timedelta(milliseconds=(n * 37 + i * 11) % 500)
                append(s, Access(bidxs[(n + i) % 3], "partner", f"p-{n}", "图书馆",
                                 "verification", "benefit:x", f"{n}-{i}"), now=when)
                s.commit()

    def sealing(_n: int) -> None:
        start.wait(timeout=10)
        while writing.is_set():
            with Session(engine) as s:
                sealer.seal_batch(s, deps, batch=7)
                s.commit()

    with _committed(deps, pool_size=10, subjects=3) as (engine, bidxs):
        writing.set()
        threads = [threading.Thread(target=sealing, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        try:
            _run_together(writer, [(n,) for n in range(6)], timeout=60)
        finally:
            writing.clear()
            for t in threads:
                t.join(timeout=30)
        with Session(engine) as s:
            while sealer.seal_batch(s, deps):
                s.commit()
            s.commit()
            seals = _seals(s)
            assert [x.leaf_index for x in seals] == list(range(120))
            assert len({x.entry_id for x in seals}) == 120
            for bidx in bidxs:
                assert [x.seq for x in seals if x.subject_bidx == bidx] == list(range(1, 41))
            assert sealer.sign_head(s, deps) is not None
            s.commit()
            report = verify_all(s, deps)
            assert report.problem is None and report.entries_checked == 120


def test_the_sealer_never_runs_twice_at_once(app: Flask) -> None:
    """While one sealer holds the lock another seals and signs nothing."""
    deps = app.extensions["xinyi"]
    with _committed(deps, pool_size=3) as (engine, [bidx]):
        with Session(engine) as s:
            _log(s, bidx, datetime.now(UTC), n=2)
        holder = engine.connect()
        try:
            holder.execute(select(func.pg_advisory_lock(sealer.SEAL_LOCK)))
            with Session(engine) as s:
                assert sealer.seal_batch(s, deps) is None
                assert sealer.sign_head(s, deps) is None
                assert _seals(s) == []
            holder.execute(select(func.pg_advisory_unlock(sealer.SEAL_LOCK)))
        finally:
            holder.close()
        with Session(engine) as s:
            assert sealer.seal_batch(s, deps) == 2
            s.commit()
