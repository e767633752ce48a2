"""WebhookReceiver: verifies, answers at once, deduplicates on webhook-id, hands events to the
handler in seq order and catches up from the event feed on a gap."""

from __future__ import annotations

import base64
import io
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from wsgiref.util import setup_testing_defaults

from standardwebhooks import Webhook
from xinyi_partner import FeedClient, MemoryDedupe, WebhookReceiver

API_KEY = "xyk_test_" + secrets.token_hex(8)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def message(seq: int, type_: str = "consent.granted") -> dict[str, Any]:
    return {"id": f"msg_{seq:032x}", "seq": seq, "type": type_, "version": 1,
            "timestamp": "2026-12-01T08:00:00+00:00", "data": {"n": seq}}


def post(app: Any, secret: str, event: dict[str, Any], *, tamper: bool = False,
         ) -> tuple[str, bytes]:
    body = json.dumps(event).encode()
    now = datetime.now(UTC)
    headers = {"HTTP_WEBHOOK_ID": event["id"], "HTTP_WEBHOOK_TIMESTAMP": str(int(now.timestamp())),
               "HTTP_WEBHOOK_SIGNATURE": Webhook(secret).sign(event["id"], now, body.decode())}
    if tamper:
        body = body.replace(b"consent", b"CONSENT")
    environ: dict[str, Any] = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
                               "CONTENT_TYPE": "application/json", **headers}
    setup_testing_defaults(environ)
    environ["wsgi.input"] = io.BytesIO(body)
    status: list[str] = []
    out = b"".join(app(environ, lambda s, _h: status.append(s)))
    return status[0], out


@contextmanager
def feed_server(events: list[dict[str, Any]]) -> Iterator[tuple[str, list[str]]]:
    """A stand-in ``GET /v1/partner/events`` that pages through ``events``."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            ok = (parts.path == "/v1/partner/events"
                  and self.headers.get("Authorization") == f"Bearer {API_KEY}")
            query = parse_qs(parts.query)
            after, limit = int(query["after"][0]), int(query["limit"][0])
            asked.append(f"after={after}")
            items = [e for e in events if e["seq"] > after][:limit]
            body = json.dumps({"items": items, "next_after": items[-1]["seq"] if items
                               else after}).encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_a_signed_event_is_answered_and_handled_once() -> None:
    secret, handled = new_secret(), []
    receiver = WebhookReceiver(secret, handled.append)
    try:
        assert post(receiver, secret, message(1))[0].startswith("204")
        assert post(receiver, secret, message(1))[0].startswith("204")  # a retry
        assert receiver.wait_idle()
    finally:
        receiver.close()
    assert [e["seq"] for e in handled] == [1]


def test_a_forged_or_unsigned_event_is_refused_and_not_handled() -> None:
    secret, handled = new_secret(), []
    receiver = WebhookReceiver(secret, handled.append)
    try:
        status, body = post(receiver, secret, message(1), tamper=True)
        assert status.startswith("400") and json.loads(body) == {"error": "signature_invalid"}
        status, body = post(receiver, new_secret(), message(2))
        assert status.startswith("400")
        assert receiver.wait_idle()
    finally:
        receiver.close()
    assert handled == []


def test_either_secret_is_accepted_while_switching() -> None:
    old, new, handled = new_secret(), new_secret(), []
    receiver = WebhookReceiver(new, handled.append, secrets=[old])
    try:
        assert post(receiver, old, message(1))[0].startswith("204")
        assert post(receiver, new, message(2))[0].startswith("204")
        assert receiver.wait_idle()
    finally:
        receiver.close()
    assert [e["seq"] for e in handled] == [1, 2]


def test_the_answer_does_not_wait_for_a_slow_handler() -> None:
    secret, release, handled = new_secret(), threading.Event(), []

    def slow(event: dict[str, Any]) -> None:
        release.wait(10)
        handled.append(event)

    receiver = WebhookReceiver(secret, slow)
    try:
        assert post(receiver, secret, message(1))[0].startswith("204")
        assert handled == []  # answered while the handler still waits
        release.set()
        assert receiver.wait_idle()
    finally:
        receiver.close()
    assert len(handled) == 1


def test_a_seq_gap_is_filled_from_the_feed_in_order() -> None:
    secret, handled = new_secret(), []
    events = [message(n) for n in range(1, 8)]
    with feed_server(events) as (url, asked):
        receiver = WebhookReceiver(secret, handled.append,
                                   feed=FeedClient(url, API_KEY, page_size=2))
        try:
            post(receiver, secret, events[0])
            post(receiver, secret, events[5])  # 2..5 are late: fetched from the feed
            post(receiver, secret, events[2])  # a late retry of 3: already handled
            post(receiver, secret, events[6])
            assert receiver.wait_idle()
        finally:
            receiver.close()
    assert [e["seq"] for e in handled] == [1, 2, 3, 4, 5, 6, 7]
    assert asked[0] == "after=1"
    assert receiver.last_seq == 7


def test_a_failing_handler_gets_the_event_again_on_a_retry() -> None:
    secret, calls = new_secret(), []

    def flaky(event: dict[str, Any]) -> None:
        calls.append(event["seq"])
        if len(calls) == 1:
            raise RuntimeError("database busy")

    receiver = WebhookReceiver(secret, flaky)
    try:
        post(receiver, secret, message(1))
        assert receiver.wait_idle()
        post(receiver, secret, message(1))  # xinyi+ retries or the partner replays
        assert receiver.wait_idle()
    finally:
        receiver.close()
    assert calls == [1, 1] and receiver.failures == 1


def test_the_dedupe_store_is_bounded() -> None:
    store = MemoryDedupe(capacity=2)
    assert store.claim("a") and store.claim("b") and not store.claim("a")
    assert store.claim("c")  # "a" falls out
    assert store.claim("a")
