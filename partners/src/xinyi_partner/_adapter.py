"""What every kind's kit shares: the HTTP client of ``/v1/adapters/<kind>/…``, the common
answer, and typed webhook events with a dispatcher.

Only the standard library is used for HTTP (as :mod:`xinyi_partner.discovery`), so the kit
adds no dependency. Every write sends an ``Idempotency-Key``: one you pass, or a fresh one
the client makes; a network failure is retried once with the same key, so a write is never
done twice.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar, Final, TypeVar
from urllib.parse import urlsplit

from .webhook import verify_webhook

__all__ = ["AdapterAnswer", "AdapterClient", "ApiError", "EventDispatcher", "SessionEvent",
           "UnknownEvent"]

MAX_ANSWER_BYTES: Final = 1024 * 1024
SEEN_IDS: Final = 10_000  # webhook-ids remembered to drop redeliveries


class ApiError(Exception):
    """The server refused the call (RFC 9457 problem details): ``status``, the stable
    ``code``, ``detail`` and the ``errors`` naming fields. None holds the credential."""

    def __init__(self, status: int, code: str, detail: str,
                 errors: list[dict[str, Any]] | None = None) -> None:
        self.status, self.code, self.detail, self.errors = status, code, detail, errors or []
        super().__init__(f"{status} {code}: {detail}")


def parse_time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class AdapterAnswer:
    """The answer every kind shares. ``session_id`` is None when nothing was waived
    (standard terms, a used-up cap): serve on ``charge_normally_fen`` as usual."""

    id: str
    kind: str
    session_id: str | None
    decision: str  # eligible | standard_terms
    state: str
    status: str  # open | closed: the record itself
    amount_fen: int
    waived_fen: int
    charge_normally_fen: int
    amount_owed_fen: int | None
    due_at: datetime | None
    reference: str
    created_at: datetime | None
    closed_at: datetime | None
    next_step: str | None
    next_step_at: datetime | None

    _TIMES: ClassVar[frozenset[str]] = frozenset(
        {"due_at", "created_at", "closed_at", "next_step_at"})

    @classmethod
    def common(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """The common fields of an answer, typed."""
        names = [f.name for f in fields(AdapterAnswer)]
        return {n: parse_time(data.get(n)) if n in cls._TIMES else data.get(n) for n in names}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AdapterAnswer:
        return AdapterAnswer(**cls.common(data))


class AdapterClient:
    """``/v1/adapters/<kind>`` of one deployment, with one partner API key (``xyk_…``)."""

    kind: ClassVar[str] = ""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http(s) URL")
        self._base = base_url.rstrip("/") + f"/v1/adapters/{self.kind}"
        self._key = api_key
        self._timeout = timeout

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None,
                 idempotency_key: str | None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        # S310: the scheme was checked in __init__.
        request = urllib.request.Request(self._base + path, data=data, headers=headers,  # noqa: S310
                                         method=method)
        for attempt in (1, 2):
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                    raw = response.read(MAX_ANSWER_BYTES)
                    return dict(json.loads(raw))
            except urllib.error.HTTPError as error:
                raise _api_error(error) from None
            except OSError:
                # The answer may have been lost after the server acted: the same
                # Idempotency-Key makes the retry safe (a GET is safe anyway).
                if attempt == 2 or (method != "GET" and idempotency_key is None):
                    raise
        raise AssertionError("unreachable")

    def _post(self, path: str, body: Mapping[str, Any],
              idempotency_key: str | None) -> dict[str, Any]:
        return self._request("POST", path, body, idempotency_key or str(uuid.uuid4()))

    def _get(self, path: str) -> dict[str, Any]:
        return self._request("GET", path, None, None)


def _api_error(error: urllib.error.HTTPError) -> ApiError:
    try:
        problem = json.loads(error.read(MAX_ANSWER_BYTES))
    except (ValueError, OSError):
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    return ApiError(error.code, str(problem.get("code", "http_error")),
                    str(problem.get("detail", error.reason)), problem.get("errors"))


def iso(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("pass an aware datetime (with its time zone)")
    return value.isoformat()


# ---- webhook events ----

@dataclass(frozen=True)
class SessionEvent:
    """A benefit session's event, in its kind's words (``library.loan_overdue``…) or the
    generic ``benefit_session.*``. ``data`` keeps the whole message's data."""

    TYPE: ClassVar[str] = ""

    type: str
    message_id: str  # the webhook-id: the same on every retry and replay
    seq: int | None  # your feed's sequence number (a gap: read GET /v1/partner/events)
    timestamp: datetime | None
    session_id: str | None
    state: str | None
    reference: str | None
    amount_fen: int | None
    waived_fen: int | None
    amount_owed_fen: int | None
    due_at: datetime | None
    grace_until: datetime | None
    record_id: str | None
    data: Mapping[str, Any]

    @classmethod
    def parse(cls, message: Mapping[str, Any], message_id: str) -> SessionEvent:
        data = message.get("data")
        data = data if isinstance(data, Mapping) else {}
        seq = message.get("seq")
        return cls(
            type=str(message.get("type", "")), message_id=message_id,
            seq=seq if isinstance(seq, int) else None,
            timestamp=parse_time(message.get("timestamp")),
            session_id=data.get("session_id"), state=data.get("state"),
            reference=data.get("reference"), amount_fen=data.get("amount_fen"),
            waived_fen=data.get("waived_fen"), amount_owed_fen=data.get("amount_owed_fen"),
            due_at=parse_time(data.get("due_at")), grace_until=parse_time(data.get("grace_until")),
            record_id=data.get("record_id"), data=dict(data))


class UnknownEvent(SessionEvent):
    """A type this kit does not know (a newer deployment): kept, never an error."""


E = TypeVar("E", bound=SessionEvent)


def event_classes(*classes: type[SessionEvent]) -> dict[str, type[SessionEvent]]:
    return {c.TYPE: c for c in classes}


class EventDispatcher:
    """Verify a webhook delivery, turn it into a typed event and call your handlers.

    ``handle(headers, body)`` checks the Standard Webhooks signature with
    :func:`xinyi_partner.verify_webhook` (raising :class:`WebhookError`: answer 4xx), drops a
    redelivery of a ``webhook-id`` already handled, and calls every handler registered
    for the event's class (and for :class:`SessionEvent`, which receives all). A receiver
    that verifies by itself passes the parsed body to :meth:`handle_message`.
    """

    def __init__(self, secret: str, types: Mapping[str, type[SessionEvent]], *,
                 tolerance_seconds: int = 300) -> None:
        self._secret = secret
        self._types = dict(types)
        self._tolerance = tolerance_seconds
        self._handlers: dict[type[SessionEvent], list[Callable[[Any], None]]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def on(self, event_class: type[E]) -> Callable[[Callable[[E], None]], Callable[[E], None]]:
        """Decorator: ``@dispatcher.on(LoanOverdue)`` def remind(event): …"""

        def register(handler: Callable[[E], None]) -> Callable[[E], None]:
            self._handlers.setdefault(event_class, []).append(handler)
            return handler

        return register

    def handle(self, headers: Mapping[str, str], body: bytes | str, *,
               now: datetime | None = None) -> SessionEvent | None:
        message = verify_webhook(headers, body, self._secret,
                                 tolerance_seconds=self._tolerance, now=now)
        lowered = {str(k).lower(): v for k, v in headers.items()}
        return self.dispatch(message, str(lowered.get("webhook-id", "")))

    def handle_message(self, message: Mapping[str, Any]) -> None:
        """For a receiver that verified the delivery itself and hands over the parsed message
        (its ``id`` is the webhook-id), e.g. the SDK's ``WebhookReceiver(secret,
        events.handle_message)``."""
        self.dispatch(message, str(message.get("id", "")))

    def dispatch(self, message: Mapping[str, Any], message_id: str) -> SessionEvent | None:
        """A verified message's typed event, after its handlers ran; None for a redelivery."""
        with self._lock:
            if message_id in self._seen:
                return None
            self._seen[message_id] = None
            while len(self._seen) > SEEN_IDS:
                self._seen.popitem(last=False)
        event_class = self._types.get(str(message.get("type", "")), UnknownEvent)
        event = event_class.parse(message, message_id)
        try:
            for cls in (event_class, SessionEvent) if event_class is not SessionEvent else (
                    SessionEvent,):
                for handler in self._handlers.get(cls, []):
                    handler(event)
        except Exception:
            with self._lock:  # not handled: a redelivery must run the handlers again
                self._seen.pop(message_id, None)
            raise
        return event


# The generic types, sent when the deployment's catalogue has no word of the kind's own.
class BenefitSessionOpened(SessionEvent):
    TYPE = "benefit_session.opened"


class BenefitSessionClosed(SessionEvent):
    TYPE = "benefit_session.closed"


class BenefitSessionOverdue(SessionEvent):
    TYPE = "benefit_session.overdue"


class BenefitSessionDefaulted(SessionEvent):
    TYPE = "benefit_session.defaulted"


class BenefitSessionSettled(SessionEvent):
    TYPE = "benefit_session.settled"


class BenefitSessionRecorded(SessionEvent):
    TYPE = "benefit_session.recorded"


GENERIC_EVENTS: Final = event_classes(
    BenefitSessionOpened, BenefitSessionClosed, BenefitSessionOverdue,
    BenefitSessionDefaulted, BenefitSessionSettled, BenefitSessionRecorded)
