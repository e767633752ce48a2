"""The webhook delivery loop against real PostgreSQL and Redis and a real HTTP receiver on
127.0.0.1: signatures the official library verifies, the retry schedule on a controlled
clock, 410, Retry-After, redirects, auto-disable, pause and resume without loss, the SSRF
check at send time, and fairness between a dead and a healthy endpoint."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from tests.webhook_support import (
    Clock,
    DeliveryDb,
    Receiver,
    attempts,
    delivery_database,
    make_endpoint,
    make_events,
    make_partner,
    statuses,
)
from xinyi.outbox.models import OutboxEvent
from xinyi.uow import run_in_unit
from xinyi.webhooks import delivery as delivery_module
from xinyi.webhooks import loop as webhook_loop
from xinyi.webhooks import ssrf
from xinyi.webhooks.delivery import (
    DEAD_LETTERS,
    MAX_ATTEMPTS,
    RETRY_DELAYS_S,
    lease_due,
    retry_delay,
)
from xinyi.webhooks.endpoints import set_enabled
from xinyi.webhooks.loop import DeliveryLoop
from xinyi.webhooks.models import WebhookDelivery, WebhookEndpoint
from xinyi.webhooks.sending import HttpSender


@pytest.fixture(scope="module")
def ddb() -> Iterator[DeliveryDb]:
    with delivery_database("wh") as found:
        yield found


@pytest.fixture
def db(ddb: DeliveryDb) -> Iterator[DeliveryDb]:
    ddb.truncate()
    ddb.deps.clock = Clock()
    yield ddb
    ddb.truncate()


def _loop(db: DeliveryDb, **kwargs: Any) -> DeliveryLoop:
    return DeliveryLoop(db.deps, **kwargs)


def _drain(db: DeliveryDb, **kwargs: Any) -> int:
    loop = _loop(db, **kwargs)
    try:
        return loop.run_until_idle(timeout=60)
    finally:
        loop.close()


def _delivery(db: DeliveryDb, event_id: uuid.UUID) -> WebhookDelivery:
    with db.deps.db.session() as s:
        return s.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == event_id)
                         ).one()


def _endpoint(db: DeliveryDb, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    with db.deps.db.session() as s:
        found = s.get(WebhookEndpoint, endpoint_id)
        assert found is not None
        return found


def test_a_delivery_is_signed_so_the_official_library_verifies_it(db: DeliveryDb) -> None:
    partner = make_partner(db.deps)
    with Receiver() as receiver:
        endpoint, secret = make_endpoint(db.deps, partner, receiver.url)
        [event] = make_events(db.deps, partner, [endpoint], 1)
        assert _drain(db) == 1
    [got] = receiver.received
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["webhook-id"] == f"msg_{event.hex}"
    assert len(headers["webhook-signature"].split(" ")) == 1
    payload = Webhook(secret).verify(got.body, headers)
    assert payload["type"] == "webhook.test" and payload["seq"] == 1
    assert payload["id"] == f"msg_{event.hex}"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(got.body, headers)
    d = _delivery(db, event)
    assert (d.status, d.attempts, d.last_status_code, d.leased_until) == (
        "delivered", 1, 204, None)
    [attempt] = attempts(db.deps, d.id)
    assert (attempt.number, attempt.status_code, attempt.error) == (1, 204, None)
    assert attempt.duration_ms >= 0


def test_during_a_rotation_either_secret_verifies(db: DeliveryDb) -> None:
    partner = make_partner(db.deps)
    old = "whsec_" + "b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZA=="
    clock = db.deps.clock
    assert isinstance(clock, Clock)
    with Receiver() as receiver:
        endpoint, new = make_endpoint(db.deps, partner, receiver.url, previous_secret=old,
                                      previous_until=clock.now + timedelta(hours=24))
        make_events(db.deps, partner, [endpoint], 1)
        _drain(db)
        clock.advance(hours=25)  # the rotation is over: the old secret no longer signs
        make_events(db.deps, partner, [endpoint], 1, now=clock.now)
        _drain(db)
    during, after = receiver.received
    headers = {k.lower(): v for k, v in during.headers.items()}
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(during.body, headers)["seq"] == 1
    assert Webhook(old).verify(during.body, headers)["seq"] == 1
    headers = {k.lower(): v for k, v in after.headers.items()}
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert Webhook(new).verify(after.body, headers)["seq"] == 2
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, headers)


def test_the_schedule_runs_to_a_dead_letter_with_the_same_webhook_id(db: DeliveryDb) -> None:
    partner = make_partner(db.deps)
    clock = db.deps.clock
    assert isinstance(clock, Clock)
    dead_before = DEAD_LETTERS._value.get()
    with Receiver(behaviour=lambda _r, _n: (500, {}, b"x" * 5000)) as receiver:
        endpoint, _ = make_endpoint(db.deps, partner, receiver.url)
        [event] = make_events(db.deps, partner, [endpoint], 1, now=clock.now)
        _drain(db)
        for attempt_no, base in enumerate(RETRY_DELAYS_S, start=2):
            d = _delivery(db, event)
            assert d.status == "pending" and d.attempts == attempt_no - 1
            wait = (d.next_attempt_at - clock.now).total_seconds()
            assert 0.8 * base - 0.01 <= wait <= 1.2 * base + 0.01, (attempt_no, wait)
            clock.advance(seconds=wait - 1)
            assert _drain(db) == 0  # not yet due
            clock.advance(seconds=1)
            assert _drain(db) == 1
    d = _delivery(db, event)
    assert (d.status, d.attempts, d.next_attempt_at) == ("dead", MAX_ATTEMPTS, None)
    assert DEAD_LETTERS._value.get() == dead_before + 1
    assert set(receiver.ids()) == {f"msg_{event.hex}"} and len(receiver.ids()) == MAX_ATTEMPTS
    kept = attempts(db.deps, d.id)
    assert [a.number for a in kept] == list(range(1, MAX_ATTEMPTS + 1))
    assert all(a.status_code == 500 and len(a.response_body) == 2048 for a in kept)
    assert _endpoint(db, endpoint).failing_since is not None


def test_retry_delay_jitter_stays_within_twenty_percent() -> None:
    rng = random.Random(7)
    for made, base in enumerate(RETRY_DELAYS_S, start=1):
        waits = [retry_delay(made, rng=rng) for _ in range(200)]
        seconds = [w.total_seconds() for w in waits if w is not None]
        assert len(seconds) == 200
        assert min(seconds) >= 0.8 * base and max(seconds) <= 1.2 * base
        assert max(seconds) - min(seconds) > 0.2 * base  # it does jitter
    assert retry_delay(MAX_ATTEMPTS) is None
    assert retry_delay(1, retry_after_s=120.0) == timedelta(seconds=120)


def test_a_receiver_down_then_back_gets_everything(db: DeliveryDb) -> None:
    partner = make_partner(db.deps)
    clock = db.deps.clock
    assert isinstance(clock, Clock)
    receiver = Receiver()  # not started: connections are refused
    endpoint, _ = make_endpoint(db.deps, partner, receiver.url)
    events = make_events(db.deps, partner, [endpoint], 20, now=clock.now)
    _drain(db)
    assert statuses(db.deps) == {"pending": 20}
    assert {a.error for a in attempts(db.deps)} == {"connect"}
    clock.advance(seconds=4)
    assert _drain(db) == 0  # the 5 s (±20 %) retry is not due yet
    with receiver:
        clock.advance(seconds=3)  # past 5 s + 20 %
        assert _drain(db) == 20
    assert statuses(db.deps) == {"delivered": 20}
    assert sorted(receiver.ids()) == sorted(f"msg_{e.hex}" for e in events)
    assert _endpoint(db, endpoint).failing_since is None


def test_410_disables_the_endpoint_and_pauses_the_rest(db: DeliveryDb) -> None:
    partner = make_partner(db.deps)
    with Receiver(behaviour=lambda _r, _n: (410, {}, b"gone")) as receiver:
        endpoint, _ = make_endpoint(db.deps, partner, receiver.url)
        make_events(db.deps, partner, [endpoint], 5)
        _drain(db, per_endpoint=1)
    ep = _endpoint(db, endpoint)
    assert (ep.enabled, ep.disabled_reason) == (False, "gone")
    assert len(receiver.received) == 1
    assert statuses(db.deps) == {"paused": 5}
    with db.deps.db.session() as s:
        [event] = s.scalars(select(OutboxEvent)).all()
    assert (event.topic, event.partner_id) == ("endpoint.disabled", partner)
    assert event.payload["endpoint_id"] == str(endpoint) and event.payload["reason"] == "gone"
    assert event.subject_bidx is None


def test_an_endpoint_failing_for_five_days_is_disabled(db: DeliveryDb) -> None:
    partner = make_partner(db.deps)
    clock = db.deps.clock
    assert isinstance(clock, Clock)
    with Receiver(behaviour=lambda _r, _n: (503, {}, b"")) as receiver:
        endpoint, _ = make_endpoint(db.deps, partner, receiver.url)
        make_events(db.deps, partner, [endpoint], 1, now=clock.now)
        _drain(db)
        clock.advance(days=4, hours=23)
        make_events(db.deps, partner, [endpoint], 1, now=clock.now)
        _drain(db)
        assert _endpoint(db, endpoint).enabled
        clock.advance(hours=2)
        make_events(db.deps, partner, [endpoint], 1, now=clock.now)
        _drain(db)
    ep = _endpoint(db, endpoint)
    assert (ep.enabled, ep.disabled_reason) == (False, "failing")
    assert statuses(db.deps)["paused"] == 3
    with db.deps.db.session() as s:
        assert [e.topic for e in s.scalars(select(OutboxEvent))] == ["endpoint.disabled"]


def test_a_success_resets_the_failing_run(db: DeliveryDb) -> None:
    partner = make_partner(db.deps)
    clock = db.deps.clock
    assert isinstance(clock, Clock)

    def behaviour(request: Any, _n: int) -> tuple[int, dict[str, str], bytes]:
        return (204 if json.loads(request.get_data())["seq"] == 2 else 500), {}, b""

    with Receiver(behaviour=behaviour) as receiver:
        endpoint, _ = make_endpoint(db.deps, partner, receiver.url)
        started = clock.now
        for _ in range(3):  # day 0: fails; day 3: the success; day 6: fails again
            make_events(db.deps, partner, [endpoint], 1, now=clock.now)
            _drain(db, per_endpoint=1)
            if _ < 2:
                clock.advance(days=3)
    ep = _endpoint(db, endpoint)
    assert ep.enabled
    assert ep.failing_since is not None and ep.failing_since >= started + timedelta(days=6)


def test_disable_and_re_enable_loses_nothing_and_keeps_event_order(db: DeliveryDb) -> None:
    partner = make_partner(db.deps)
    clock = db.deps.clock
    assert isinstance(clock, Clock)
    with Receiver() as receiver:
        endpoint, _ = make_endpoint(db.deps, partner, receiver.url)
        first = make_events(db.deps, partner, [endpoint], 3, now=clock.now)
        _drain(db, per_endpoint=1)

        def disable(session: Any) -> None:
            ep = session.get(WebhookEndpoint, endpoint)
            delivery_module.disable_endpoint(session, ep, "failing", now=clock.now)

        run_in_unit(db.deps.db.sessions, disable)
        # Events arriving while the endpoint is disabled are kept, paused.
        later = make_events(db.deps, partner, [endpoint], 12, now=clock.now, status="paused")
        clock.advance(hours=1)
        assert _drain(db) == 0
        assert statuses(db.deps) == {"delivered": 3, "paused": 12}

        def enable(session: Any) -> None:
            set_enabled(session, session.get(WebhookEndpoint, endpoint), True, clock.now)

        run_in_unit(db.deps.db.sessions, enable)
        leased = run_in_unit(db.deps.db.sessions, lambda s: lease_due(
            s, db.deps, now=clock.now, limit=100, per_endpoint=100))
        assert [j.msg_id for j in leased] == [f"msg_{e.hex}" for e in later]  # event order
        run_in_unit(db.deps.db.sessions, lambda s: delivery_module.release(s, leased))
        _drain(db, per_endpoint=1)
    assert statuses(db.deps) == {"delivered": 15}
    assert receiver.ids() == [f"msg_{e.hex}" for e in first + later]


def test_retry_after_is_honoured_and_capped(db: DeliveryDb) -> None:
    partner = make_partner(db.deps)
    clock = db.deps.clock
    assert isinstance(clock, Clock)
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    answers = iter([(429, {"Retry-After": "120"}), (503, {"Retry-After": soon}),
                    (503, {"Retry-After": "86400"}), (503, {"Retry-After": "nonsense"})])

    def behaviour(_r: Any, _n: int) -> tuple[int, dict[str, str], bytes]:
        status, headers = next(answers)
        return status, headers, b""

    with Receiver(behaviour=behaviour) as receiver:
        endpoint, _ = make_endpoint(db.deps, partner, receiver.url)
        [event] = make_events(db.deps, partner, [endpoint], 1, now=clock.now)
        waits = []
        for _ in range(4):
            _drain(db)
            d = _delivery(db, event)
            waits.append((d.next_attempt_at - clock.now).total_seconds())
            clock.advance(seconds=waits[-1])
    assert waits[0] == 120
    assert 80 <= waits[1] <= 91
    assert waits[2] == 3600  # capped at one hour
    assert 0.8 * RETRY_DELAYS_S[3] <= waits[3] <= 1.2 * RETRY_DELAYS_S[3]  # the schedule
    assert len(receiver.received) == 4


def test_a_redirect_is_not_followed(db: DeliveryDb) -> None:
    partner = make_partner(db.deps)
    with Receiver(behaviour=lambda r, _n: (302, {"Location": "/elsewhere"}, b"")) as receiver:
        endpoint, _ = make_endpoint(db.deps, partner, receiver.url)
        [event] = make_events(db.deps, partner, [endpoint], 1)
        _drain(db)
    assert [r.headers.get("Webhook-Id") for r in receiver.received] == [f"msg_{event.hex}"]
    d = _delivery(db, event)
    assert d.status == "pending" and d.last_status_code == 302
    [attempt] = attempts(db.deps, d.id)
    assert (attempt.status_code, attempt.error) == (302, "redirect")


@pytest.mark.parametrize("host", ["localhost", "hooks.example.test"])
def test_a_name_resolving_to_loopback_is_refused_at_send_time(
        db: DeliveryDb, monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(name: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        # The name passed the registration check, then its DNS now answers 127.0.0.1.
        return real("127.0.0.1" if name == host else name, port, *args, **kwargs)

    monkeypatch.setattr(ssrf.socket, "getaddrinfo", getaddrinfo)
    partner = make_partner(db.deps)
    with Receiver() as receiver:
        endpoint, _ = make_endpoint(db.deps, partner, f"http://{host}:{receiver.port}/hook")
        [event] = make_events(db.deps, partner, [endpoint], 1)
        strict = db.settings.with_overrides(webhook_allow_private=False)
        monkeypatch.setattr(db.deps, "settings", strict)
        _drain(db)
    assert receiver.received == []
    d = _delivery(db, event)
    assert d.status == "pending" and d.last_status_code is None
    [attempt] = attempts(db.deps, d.id)
    assert (attempt.status_code, attempt.error) == (None, "refused_address")


def test_a_dead_endpoint_with_500_events_does_not_delay_a_healthy_one(db: DeliveryDb) -> None:
    partner = make_partner(db.deps)
    with Receiver(delay=0.5, behaviour=lambda _r, _n: (500, {}, b"")) as slow, Receiver() as ok:
        dead, _ = make_endpoint(db.deps, partner, slow.url)
        healthy, _ = make_endpoint(db.deps, partner, ok.url)
        make_events(db.deps, partner, [dead], 500)
        make_events(db.deps, partner, [healthy], 100)
        loop = _loop(db, concurrency=16, per_endpoint=4)
        try:
            while statuses(db.deps, healthy).get("delivered", 0) < 100:
                loop.step()
                loop._wake.wait(0.02)
            dead_left = statuses(db.deps, dead)
        finally:
            loop.close()
    # The healthy endpoint got all of its 100 while the dead one has barely started (4 slow
    # requests at a time): most of the dead one's deliveries have not even had an attempt.
    assert len(ok.received) == 100
    with db.deps.db.session() as s:
        untried = s.scalar(select(WebhookDelivery.id).where(
            WebhookDelivery.endpoint_id == dead, WebhookDelivery.attempts == 0).limit(1))
    assert untried is not None
    assert dead_left["pending"] == 500
    assert slow.max_in_flight <= 4


def test_deliveries_go_on_when_redis_is_down(db: DeliveryDb) -> None:
    partner = make_partner(db.deps)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    deps = db.fresh_deps(redis_url=f"redis://127.0.0.1:{closed_port}/0")
    deps.clock = db.deps.clock
    try:
        with Receiver() as receiver:
            endpoint, _ = make_endpoint(deps, partner, receiver.url, rate_limit_per_s=5)
            make_events(deps, partner, [endpoint], 12)
            loop = DeliveryLoop(deps)
            try:
                assert loop.run_until_idle(timeout=30) == 12
                assert not loop.limits.shared  # it fell back to the in-process limit
            finally:
                loop.close()
        assert statuses(deps) == {"delivered": 12}
        assert len(receiver.received) == 12
        # The in-process limit still holds each endpoint to its rate: 12 at 5/s take > 2 s.
        times = sorted(r.at for r in receiver.received)
        assert times[-1] - times[0] > 1.0
    finally:
        deps.db.engine.dispose()


def test_the_rate_limit_is_shared_through_redis(db: DeliveryDb) -> None:
    partner = make_partner(db.deps)
    endpoint, _ = make_endpoint(db.deps, partner, "http://127.0.0.1:9/hook", rate_limit_per_s=3)
    one, two = _loop(db), _loop(db)
    try:
        # Two workers each asking ten times within well under a second: three in all (the
        # window starts at the first hit), not three each.
        allowed = [loop.limits.allow(endpoint, 3) for loop in (one, two) * 10]
    finally:
        one.close()
        two.close()
    assert one.limits.shared
    assert allowed.count(True) == 3


def test_the_body_is_the_partner_event(db: DeliveryDb) -> None:
    partner = make_partner(db.deps)
    with Receiver() as receiver:
        endpoint, _ = make_endpoint(db.deps, partner, receiver.url)
        make_events(db.deps, partner, [endpoint], 2, event_type="consent.granted")
        _drain(db, per_endpoint=1)
    bodies = [json.loads(r.body) for r in receiver.received]
    assert [(b["type"], b["seq"], b["data"]) for b in bodies] == [
        ("consent.granted", 1, {"n": 1}), ("consent.granted", 2, {"n": 2})]


def test_a_batch_of_attempts_is_recorded_as_one_at_a_time_would(db: DeliveryDb) -> None:
    """The recorder writes many finished attempts in one unit: each is kept, a stale lease
    moves nothing, and an endpoint's failures and successes apply in the order they started."""
    from xinyi.webhooks.delivery import Finished, record_attempts
    from xinyi.webhooks.sending import Outcome

    partner = make_partner(db.deps)
    clock = db.deps.clock
    assert isinstance(clock, Clock)
    healthy, _ = make_endpoint(db.deps, partner, "http://127.0.0.1:1/a")
    flaky, _ = make_endpoint(db.deps, partner, "http://127.0.0.1:1/b")
    make_events(db.deps, partner, [healthy, flaky], 3, now=clock.now)
    jobs = run_in_unit(db.deps.db.sessions, lambda s: lease_due(
        s, db.deps, now=clock.now, limit=100, per_endpoint=100))
    assert len(jobs) == 6
    on = {ep: [j for j in jobs if j.endpoint_id == ep] for ep in (healthy, flaky)}
    ok, failed = Outcome(204, 3), Outcome(500, 4, "boom")
    at = [clock.now + timedelta(milliseconds=i) for i in range(6)]
    stale = on[healthy][2]
    batch = [
        Finished(on[healthy][0], ok, at[0]),
        Finished(on[healthy][1], ok, at[1]),
        # another worker's lease replaced ours: the token we hold no longer matches
        Finished(dataclasses.replace(stale, lease=stale.lease - timedelta(seconds=1)), ok,
                 at[2]),
        # flaky: a success, then a failure that started later, listed out of order
        Finished(on[flaky][1], failed, at[4]),
        Finished(on[flaky][0], ok, at[3]),
        Finished(on[flaky][2], failed, at[5]),
    ]
    got = run_in_unit(db.deps.db.sessions, lambda s: record_attempts(
        s, db.deps, batch, now=clock.now))
    assert got == ["delivered", "delivered", "stale", "pending", "delivered", "pending"]
    assert len(attempts(db.deps)) == 6  # every attempt is kept, the stale one too
    assert statuses(db.deps, healthy) == {"delivered": 2, "pending": 1}
    assert statuses(db.deps, flaky) == {"delivered": 1, "pending": 2}
    with db.deps.db.session() as s:
        left = s.get(WebhookDelivery, stale.delivery_id)
        assert left is not None
        assert (left.attempts, left.leased_until) == (0, stale.lease)  # untouched
        retried = s.get(WebhookDelivery, on[flaky][1].delivery_id)
        assert retried is not None and retried.attempts == 1
        assert retried.next_attempt_at is not None and retried.next_attempt_at > clock.now
    # The failure that started after the success opens the failing run, at its own start.
    assert _endpoint(db, flaky).failing_since == at[4]
    assert _endpoint(db, healthy).failing_since is None


class _KeepAlive(BaseHTTPRequestHandler):
    """Answers 204 and keeps the connection open (HTTP/1.1), as a real receiver does."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):  # the client closed a kept connection
            super().handle()

    def log_message(self, *_args: Any) -> None:
        pass


def test_many_threads_on_one_host_share_its_connections_without_failures() -> None:
    """More sending threads than one host has connections: every request succeeds. (httpcore
    1.0.9 alone can close a connection it has handed to a queued request, which fails that
    request or leaves it hanging to its timeout; the sender never queues more requests in a
    host's pool than it has connections.)"""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    sender = HttpSender(allow_private=True, require_https=False, max_connections_per_host=2)
    try:
        with ThreadPoolExecutor(24) as pool:
            outcomes = list(pool.map(
                lambda _i: sender.send(url, {"content-type": "application/json"}, b"{}"),
                range(3000)))
    finally:
        sender.close()
        server.shutdown()
        server.server_close()
    failed = Counter(o.error for o in outcomes if not o.ok)
    assert failed == Counter()
    assert {o.status_code for o in outcomes} == {204}


def test_rate_limit_permits_never_exceed_the_rate_within_a_window(
        db: DeliveryDb, monkeypatch: pytest.MonkeyPatch) -> None:
    partner = make_partner(db.deps)
    endpoint, _ = make_endpoint(db.deps, partner, "http://127.0.0.1:9/hook", rate_limit_per_s=20)
    one, two = _loop(db), _loop(db)
    # The local permits' clock stands still, so none expires unused however slow the machine
    # is: every permit comes from a grant of the shared one-second window in Redis.
    frozen = time.monotonic()
    monkeypatch.setattr(webhook_loop, "time", SimpleNamespace(monotonic=lambda: frozen))
    try:
        # Permits come from Redis a few at a time (a fifth of the rate); two workers asking
        # fifty times each get twenty in a window, never more.
        started = time.perf_counter()
        allowed = [loop.limits.take(endpoint, 20) for loop in (one, two) * 50]
        elapsed = time.perf_counter() - started
    finally:
        one.close()
        two.close()
    assert one.limits.shared
    windows = int(elapsed) + 1  # Redis windows the calls can have spanned
    assert allowed.count(True) <= 20 * windows
    if elapsed < 0.9:  # one window: exactly the rate
        assert allowed.count(True) == 20
