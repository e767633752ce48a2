"""Delivery reliability with real `xinyi worker` processes: a worker killed with SIGKILL in the
middle of a burst loses nothing once a worker runs again (a repeat only ever carries the same
webhook-id and body), and two workers at once never send one delivery concurrently."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from tests.factories import CAPTURED_LOGS
from tests.webhook_support import (
    DeliveryDb,
    Receiver,
    delivery_database,
    make_endpoint,
    make_events,
    make_partner,
    statuses,
    wait_for,
)

XINYI = str(Path(sys.executable).with_name("xinyi"))
LEASE_SECONDS = "20"


@pytest.fixture(scope="module")
def ddb() -> Iterator[DeliveryDb]:
    with delivery_database("whrel") as found:
        yield found


@pytest.fixture
def db(ddb: DeliveryDb) -> Iterator[DeliveryDb]:
    ddb.truncate()
    yield ddb
    ddb.truncate()


class Worker:
    def __init__(self, db: DeliveryDb, log: Path) -> None:
        env = {**db.env, "XINYI_WEBHOOK_LEASE_SECONDS": LEASE_SECONDS}
        self.log = log
        with log.open("ab") as err:
            self.proc = subprocess.Popen([XINYI, "worker", "--interval", "3600"], env=env,
                                         stdout=subprocess.DEVNULL, stderr=err)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: attempts in flight finish and are recorded
            self.proc.wait(timeout=40)
        CAPTURED_LOGS.extend(line for line in self.log.read_text(errors="replace").splitlines()
                             if line.strip())
        return self.proc.returncode


def _verified(receiver: Receiver, secret: str) -> Counter[str]:
    """Each request's webhook-id, after checking its signature; a repeat of an id must carry
    the very same body."""
    bodies: dict[str, bytes] = {}
    seen: Counter[str] = Counter()
    for got in receiver.received:
        headers = {k.lower(): v for k, v in got.headers.items()}
        Webhook(secret).verify(got.body, headers)
        msg_id = headers["webhook-id"]
        assert bodies.setdefault(msg_id, got.body) == got.body
        seen[msg_id] += 1
    return seen


def test_a_worker_killed_mid_burst_loses_nothing(db: DeliveryDb, tmp_path: Path) -> None:
    partner = make_partner(db.deps)
    with Receiver(delay=0.02) as receiver:
        endpoint, secret = make_endpoint(db.deps, partner, receiver.url)
        events = make_events(db.deps, partner, [endpoint], 300)
        first = Worker(db, tmp_path / "worker1.log")
        try:
            wait_for(lambda: len(receiver.received) >= 60, timeout=120)
            first.kill()
        finally:
            first.stop()
        assert first.proc.returncode == -signal.SIGKILL
        left = statuses(db.deps)
        assert left["pending"] > 0, "the burst ended before the kill"
        second = Worker(db, tmp_path / "worker2.log")
        try:
            # Leases the killed worker held run out after LEASE_SECONDS; then they go too.
            wait_for(lambda: statuses(db.deps) == {"delivered": 300}, timeout=180, every=0.5)
        finally:
            assert second.stop() == 0  # SIGTERM ends it cleanly
    seen = _verified(receiver, secret)
    assert set(seen) == {f"msg_{e.hex}" for e in events}  # every event, nothing else


def test_two_workers_never_send_one_delivery_at_once(db: DeliveryDb, tmp_path: Path) -> None:
    partner = make_partner(db.deps)
    with Receiver(delay=0.01) as one, Receiver(delay=0.01) as two:
        endpoints = [make_endpoint(db.deps, partner, r.url) for r in (one, two)]
        make_events(db.deps, partner, [e for e, _ in endpoints], 150)
        workers = [Worker(db, tmp_path / f"worker{i}.log") for i in range(2)]
        try:
            wait_for(lambda: statuses(db.deps) == {"delivered": 300}, timeout=180, every=0.5)
        finally:
            codes = [w.stop() for w in workers]
    assert codes == [0, 0]
    for receiver, (_endpoint, secret) in zip((one, two), endpoints, strict=True):
        assert receiver.max_in_flight_per_id == 1
        seen = _verified(receiver, secret)
        assert len(seen) == 150 and set(seen.values()) == {1}  # each exactly once
