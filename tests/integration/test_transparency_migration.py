"""The transparency-log migration carries an existing access log over: every old chain still
verifies (same seq and hashes), the Merkle tree is built over the old entries, and the next
entry continues its citizen's chain."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, select, text

from tests.factories import TEST_DATABASE_URL, TEST_REDIS_URL, make_settings
from tests.proofs import consistency_ok
from xinyi.audit.checkpoints import verify_all
from xinyi.audit.models import AccessLogSeal, TreeHead
from xinyi.audit.sealer import consistency_proof, latest_head, seal_all
from xinyi.audit.service import Access, append
from xinyi.cli import alembic_config
from xinyi.db import UTCDateTime, make_engine
from xinyi.wiring import build_deps

REVISION = "0022_transparency_log"
# The tables as they were before the migration (only what these rows need).
OLD_SUBJECTS = sa.table("subjects", sa.column("bidx", sa.LargeBinary()),
                        sa.column("id_number_enc", sa.LargeBinary()),
                        sa.column("first_seen_at", UTCDateTime()))
OLD_LOG = sa.table("access_log", *(sa.column(name, kind) for name, kind in (
    ("id", sa.Uuid()), ("subject_bidx", sa.LargeBinary()), ("seq", sa.Integer()),
    ("actor_type", sa.String()), ("actor_id", sa.String()), ("actor_name", sa.String()),
    ("action", sa.String()), ("scope", sa.String()), ("consent_id", sa.Uuid()),
    ("purpose", sa.Text()), ("created_at", UTCDateTime()), ("prev_hash", sa.LargeBinary()),
    ("hash", sa.LargeBinary()))))


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/old.db"
        return
    if not TEST_DATABASE_URL.startswith("postgresql"):
        pytest.skip("no PostgreSQL")
    base, _, name = TEST_DATABASE_URL.rpartition("/")
    scratch = f"{name.split('?')[0]}_tlog_migration"
    admin = make_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT", poolclass=None)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {scratch}"))
    try:
        yield f"{base}/{scratch}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"))
        admin.dispose()


def _old_hash(prev: bytes, row: dict[str, object], subject: bytes) -> bytes:
    """The chain hash as the request path computed it before this migration."""
    created = row["created_at"]
    assert isinstance(created, datetime)
    canonical = json.dumps({
        "id": str(row["id"]), "subject": subject.hex(), "seq": row["seq"],
        "actor_type": "staff", "actor_id": "s-1", "actor_name": "复核员", "action": "review",
        "scope": "report.full", "consent_id": None, "purpose": row["purpose"],
        "created_at": created.isoformat(timespec="microseconds")},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(prev + canonical.encode()).digest()


def test_old_chains_are_carried_into_the_tree_and_still_verify(scratch_url: str) -> None:
    cfg = alembic_config(scratch_url)
    before = ScriptDirectory.from_config(cfg).get_revision(REVISION).down_revision
    assert isinstance(before, str)
    command.upgrade(cfg, before)
    engine = create_engine(scratch_url)
    subjects = [bytes([n]) * 32 for n in (1, 2)]
    start = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    old: dict[uuid.UUID, tuple[bytes, int, bytes]] = {}
    with engine.begin() as conn:
        for bidx in subjects:
            conn.execute(OLD_SUBJECTS.insert().values(bidx=bidx, id_number_enc=b"x" * 40,
                                                      first_seen_at=start))
        prev = {bidx: b"\0" * 32 for bidx in subjects}
        for i in range(7):  # interleaved: the two chains' entries alternate in time
            bidx = subjects[i % 2]
            row = {"id": uuid.uuid4(), "seq": i // 2 + 1, "purpose": f"复核 {i}",
                   "created_at": start + timedelta(seconds=i)}
            digest = _old_hash(prev[bidx], row, bidx)
            conn.execute(OLD_LOG.insert().values(
                **row, subject_bidx=bidx, actor_type="staff", actor_id="s-1",
                actor_name="复核员", action="review", scope="report.full", consent_id=None,
                prev_hash=prev[bidx], hash=digest))
            old[row["id"]] = (bidx, int(row["seq"]), digest)
            prev[bidx] = digest
    engine.dispose()

    command.upgrade(cfg, REVISION)
    deps = build_deps(make_settings(scratch_url, TEST_REDIS_URL))
    try:
        with deps.db.session() as s:
            seals = list(s.scalars(select(AccessLogSeal).order_by(AccessLogSeal.leaf_index)))
            assert [x.leaf_index for x in seals] == list(range(7))
            assert {x.entry_id: (bytes(x.subject_bidx), x.seq, bytes(x.hash))
                    for x in seals} == old
            report = verify_all(s, deps)
            assert report.problem is None and report.entries_checked == 7
        assert seal_all(deps) == (0, 7)  # nothing to seal: the first head signs the old tree
        with deps.db.session() as s:
            append(s, Access(subjects[0], "staff", "s-1", "复核员", "review", "report.full",
                             "复核 7"), now=start + timedelta(minutes=1))
            s.commit()
        assert seal_all(deps) == (1, 8)
        with deps.db.session() as s:
            newest = s.scalar(select(AccessLogSeal).where(AccessLogSeal.leaf_index == 7))
            assert newest is not None and newest.seq == 5  # after subject 1's four old ones
            assert newest.prev_hash == prev[subjects[0]]
            head = latest_head(s)
            assert head is not None and head.tree_size == 8
            first = s.get(TreeHead, 7)
            assert first is not None
            assert consistency_ok(7, 8, first.root_hash, head.root_hash,
                                             consistency_proof(s, 7, 8))
            report = verify_all(s, deps)
            assert report.problem is None and report.heads_checked == 2
    finally:
        deps.db.engine.dispose()
