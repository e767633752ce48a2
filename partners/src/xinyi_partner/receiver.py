"""A webhook receiver: verify, deduplicate, answer fast, hand each event to your handler once,
in ``seq`` order, catching up from the event feed when a ``seq`` is missing.

``WebhookReceiver`` is a WSGI application (mount it in Flask, Django, any WSGI server) that:

1. verifies the Standard Webhooks signature of the raw body (:func:`verify_webhook`) and
   refuses anything else with 400 — xinyi+ retries, so nothing is lost;
2. answers ``204`` at once and queues the event for a background thread, so a slow handler
   never makes xinyi+ time out and retry;
3. deduplicates on ``webhook-id`` (retries and replays repeat it), through a pluggable
   :class:`DedupeStore` (in memory by default: use your database in production);
4. notices a gap in ``seq`` (an event that is late, still being retried) and reads the missing
   events from ``GET /v1/partner/events?after=<last seq>`` with your API key, so your handler
   sees the events in order without waiting for the retries.

Your handler gets the parsed message (``type``, ``seq``, ``id``, ``data``, …). If it raises, the
event is forgotten by the dedupe store so a later retry, replay or catch-up hands it again.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from .errors import WebhookError
from .webhook import verify_webhook

__all__ = ["DedupeStore", "FeedClient", "MemoryDedupe", "WebhookReceiver"]

log = logging.getLogger("xinyi_partner.receiver")

Handler = Callable[[dict[str, Any]], object]
MAX_BODY_BYTES = 1024 * 1024


class DedupeStore(Protocol):
    """Remembers the ``webhook-id`` of handled events."""

    def claim(self, webhook_id: str) -> bool:
        """True the first time ``webhook_id`` is seen (it is now claimed), False after."""
        ...

    def forget(self, webhook_id: str) -> None:
        """Release a claim (the handler failed): the event may be handled again."""
        ...


class MemoryDedupe:
    """A bounded in-process :class:`DedupeStore`: the most recent ``capacity`` ids (forgotten
    on restart — use your database to survive one)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def claim(self, webhook_id: str) -> bool:
        with self._lock:
            if webhook_id in self._seen:
                return False
            self._seen[webhook_id] = None
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
            return True

    def forget(self, webhook_id: str) -> None:
        with self._lock:
            self._seen.pop(webhook_id, None)


class FeedClient:
    """Reads your event feed: ``GET {base_url}/v1/partner/events?after=&limit=``."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10.0,
                 page_size: int = 100) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.page_size = page_size

    def events_after(self, after: int, *, until: int | None = None) -> Iterable[dict[str, Any]]:
        """Every event with ``after < seq`` (and ``seq < until`` when given), in order."""
        while True:
            query = urllib.parse.urlencode({"after": after, "limit": self.page_size})
            request = urllib.request.Request(  # noqa: S310 - the deployment's https URL
                f"{self.base_url}/v1/partner/events?{query}",
                headers={"Authorization": f"Bearer {self._api_key}",
                         "Accept": "application/json"})
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                page = json.loads(response.read())
            items = page.get("items", [])
            for item in items:
                if until is not None and item["seq"] >= until:
                    return
                yield item
            if not items or page.get("next_after", after) <= after:
                return
            after = page["next_after"]


class WebhookReceiver:
    """``WebhookReceiver(secret, handler, feed=FeedClient(url, api_key))`` is a WSGI app.

    ``secrets``: more secrets to accept (while you switch after a rotation, xinyi+ signs with
    both, so one is enough). ``last_seq``: the last ``seq`` you handled before a restart (keep
    it with your data); ``None`` starts from the first event received.
    """

    def __init__(self, secret: str, handler: Handler, *, feed: FeedClient | None = None,
                 dedupe: DedupeStore | None = None, last_seq: int | None = None,
                 secrets: Iterable[str] = (), tolerance_seconds: int = 300) -> None:
        self._secrets = [secret, *secrets]
        self._handler = handler
        self._feed = feed
        self.dedupe: DedupeStore = dedupe or MemoryDedupe()
        self.last_seq = last_seq
        self._tolerance = tolerance_seconds
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._work, name="xinyi-webhooks", daemon=True)
        self._thread.start()

    # -- HTTP ------------------------------------------------------------------------------
    def _verify(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        error: WebhookError | None = None
        for secret in self._secrets:
            try:
                return verify_webhook(headers, body, secret,
                                      tolerance_seconds=self._tolerance)
            except WebhookError as exc:
                error = exc
                if exc.code != "signature_invalid":
                    break
        assert error is not None
        raise error

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        def answer(status: str, payload: dict[str, Any] | None = None) -> list[bytes]:
            body = json.dumps(payload).encode() if payload is not None else b""
            headers = [("Content-Length", str(len(body)))]
            if payload is not None:
                headers.append(("Content-Type", "application/json"))
            start_response(status, headers)
            return [body]

        if environ.get("REQUEST_METHOD") != "POST":
            return answer("405 Method Not Allowed", {"error": "method_not_allowed"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            return answer("413 Content Too Large", {"error": "body_too_large"})
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {key[5:].replace("_", "-").lower(): str(value)
                   for key, value in environ.items() if key.startswith("HTTP_")}
        try:
            event = self._verify(headers, body)
        except WebhookError as error:
            return answer("400 Bad Request", {"error": error.code})
        if not isinstance(event, dict):
            return answer("400 Bad Request", {"error": "body_invalid"})
        event.setdefault("id", headers.get("webhook-id"))
        self._submit(event)
        return answer("204 No Content")

    def flask_view(self) -> Callable[[], Any]:
        """A Flask view: ``app.add_url_rule("/xinyi/webhooks", view_func=receiver.flask_view(),
        methods=["POST"])``."""

        def view() -> Any:
            from flask import Response, request

            return Response.from_app(self, request.environ)

        view.__name__ = "xinyi_webhooks"
        return view

    # -- handling --------------------------------------------------------------------------
    def _submit(self, event: dict[str, Any]) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(event)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every received event has been handled (tests, a clean shutdown)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _work(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self._receive(event)
            except Exception:
                log.exception("xinyi webhook handling failed")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _receive(self, event: dict[str, Any]) -> None:
        seq = event.get("seq")
        if (isinstance(seq, int) and self.last_seq is not None and seq > self.last_seq + 1
                and self._feed is not None):
            try:
                for missed in self._feed.events_after(self.last_seq, until=seq):
                    self._handle(missed)
            except Exception as exc:  # the feed is down: the retries will bring them
                log.warning("xinyi event feed unreachable (%s); handling on", type(exc).__name__)
        self._handle(event)

    def _handle(self, event: dict[str, Any]) -> None:
        msg_id = str(event.get("id") or "")
        if not msg_id or not self.dedupe.claim(msg_id):
            return
        try:
            self._handler(event)
        except Exception:
            self.dedupe.forget(msg_id)
            self.failures += 1
            log.exception("xinyi webhook handler raised")
            return
        seq = event.get("seq")
        if isinstance(seq, int) and (self.last_seq is None or seq > self.last_seq):
            self.last_seq = seq
