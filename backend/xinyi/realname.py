"""Real-name verification (实名核验) behind a port; :func:`make_verifier` picks the
implementation named by ``XINYI_REALNAME_VERIFIER``.

``dev``
    Development only: any structurally valid ID number with a non-empty name passes.

``http``
    Asks a real-name service over HTTP: a government or commercial 实名核验 endpoint, or a
    small adapter in front of one that speaks this contract.

    Request (one per attempt)::

        POST <XINYI_REALNAME_URL>
        Authorization: Bearer <XINYI_REALNAME_API_KEY>
        Content-Type: application/json; charset=utf-8
        Accept: application/json
        X-Request-Id: <the registration's request id>
        {"id_number": "11010519491231002X", "name": "张三"}

    Response: status 200, a JSON object whose ``result`` is ``"match"`` (the name belongs to
    the ID number) or ``"mismatch"`` (it does not, or the number is unknown). A mismatch is a
    definite answer: the registration is refused with 422 ``realname_mismatch``.

    Anything else is a failure, and a failure never lets a registration through (fail
    closed): after the attempts below the registration is refused with 503
    ``realname_verifier_unavailable`` and ``Retry-After``, and nothing is written.

    * Each attempt has ``XINYI_REALNAME_TIMEOUT_SECONDS`` (default 3) to connect and as long
      for each read.
    * Timeouts, connection errors, 5xx and 429 are tried again, ``XINYI_REALNAME_RETRIES``
      more times (default 2), after 0.2 s, 0.4 s, … Other statuses (a 3xx is not followed, a
      4xx means our request or key is wrong) and a 200 without a known ``result`` are not.
    * Circuit breaker: after ``XINYI_REALNAME_BREAKER_FAILURES`` (default 5) verifications
      in a row have failed, it opens for ``XINYI_REALNAME_BREAKER_SECONDS`` (default 30):
      registrations are refused at once, sparing a service that is down. Then one
      registration tries it (half open): success closes the breaker, failure opens it again.
      Each process has its own breaker.

    The ID number and the name go only into the request body: never into a log line, an
    error, the URL or a header. Logs name the attempt, the reason and the HTTP status only.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import ssl
import threading
import time
from collections.abc import Callable
from typing import Final, Protocol
from urllib.parse import urlsplit

from xinyi.errors import DomainError
from xinyi.logs import request_id
from xinyi.pii import IdNumber


class VerifierSettings(Protocol):
    """What the verifiers read of the settings (``xinyi.config.Settings`` has them all); a
    protocol, so that this port does not import the settings that check it."""

    @property
    def is_production(self) -> bool: ...

    @property
    def realname_verifier(self) -> str: ...

    @property
    def realname_url(self) -> str: ...

    @property
    def realname_api_key(self) -> str: ...

    @property
    def realname_timeout_seconds(self) -> float: ...

    @property
    def realname_retries(self) -> int: ...

    @property
    def realname_breaker_failures(self) -> int: ...

    @property
    def realname_breaker_seconds(self) -> float: ...

log = logging.getLogger(__name__)

KINDS: Final = ("dev", "http")
MAX_RESPONSE_BYTES: Final = 64 * 1024
BACKOFF_SECONDS: Final = 0.2
_RETRIED_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


class RealNameVerifier(Protocol):
    def verify(self, id_number: IdNumber, name: str) -> bool:
        """Whether the name belongs to the ID number; raises :class:`RealNameUnavailable`
        when that cannot be known now."""
        ...


class RealNameUnavailable(DomainError):
    """The real-name service cannot answer: the registration is refused, never accepted
    unchecked, and may simply be retried later."""

    status = 503
    code = "realname_verifier_unavailable"
    title = "Real-name verification is unavailable, try again later"

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)})


class DevRealNameVerifier:
    """Development only: any structurally valid ID number with a non-empty name passes."""

    def verify(self, id_number: IdNumber, name: str) -> bool:
        return bool(name.strip())


class CircuitBreaker:
    """Opens after ``threshold`` failures in a row, for ``open_seconds``; then lets one call
    through (half open) whose outcome closes or reopens it. Thread-safe."""

    def __init__(self, threshold: int, open_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold, self.open_seconds, self._clock = threshold, open_seconds, clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False  # the one call of the half-open state is under way

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half_open" if self._clock() - self._opened_at >= self.open_seconds else "open"

    def allow(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return True
            if self._clock() - self._opened_at < self.open_seconds or self._trial:
                return False
            self._trial = True
            return True

    def retry_after(self) -> int:
        """Whole seconds until the breaker lets a call through again (at least 1)."""
        with self._lock:
            if self._opened_at is None:
                return 1
            left = self.open_seconds - (self._clock() - self._opened_at)
            return max(1, math.ceil(left))

    def succeeded(self) -> None:
        with self._lock:
            self._failures, self._opened_at, self._trial = 0, None, False

    def failed(self) -> bool:
        """Count a failure; True if the breaker (re)opened because of it."""
        with self._lock:
            self._failures += 1
            reopen = self._trial or (self._opened_at is None
                                     and self._failures >= self.threshold)
            self._trial = False
            if reopen:
                self._opened_at = self._clock()
            return reopen


class _Failure(Exception):
    """One attempt failed; ``retry`` says whether another attempt may succeed."""

    def __init__(self, reason: str, *, retry: bool, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry, self.status = reason, retry, status


class HttpRealNameVerifier:
    """The ``http`` verifier: the contract is in this module's docstring."""

    def __init__(self, url: str, api_key: str, *, timeout_seconds: float = 3.0,
                 retries: int = 2, breaker: CircuitBreaker | None = None,
                 backoff_seconds: float = BACKOFF_SECONDS,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("XINYI_REALNAME_URL must be an http(s) URL")
        if parts.username or parts.password:
            raise ValueError("XINYI_REALNAME_URL must not hold credentials: use "
                             "XINYI_REALNAME_API_KEY")
        if not api_key:
            raise ValueError("XINYI_REALNAME_API_KEY is required by the http real-name verifier")
        if not 0 < timeout_seconds <= 30:
            raise ValueError("XINYI_REALNAME_TIMEOUT_SECONDS must be more than 0 and at most 30")
        if not 0 <= retries <= 5:
            raise ValueError("XINYI_REALNAME_RETRIES must be between 0 and 5")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._api_key = api_key
        self.timeout_seconds, self.retries = timeout_seconds, retries
        self.breaker = breaker or CircuitBreaker(5, 30.0)
        self._backoff, self._sleep = backoff_seconds, sleep
        self._tls = ssl.create_default_context() if self._https else None

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return f"HttpRealNameVerifier(host={self._host!r})"

    @classmethod
    def from_settings(cls, settings: VerifierSettings) -> HttpRealNameVerifier:
        if not settings.realname_url:
            raise ValueError("XINYI_REALNAME_URL is required by the http real-name verifier")
        if settings.is_production and urlsplit(settings.realname_url).scheme != "https":
            raise ValueError("XINYI_REALNAME_URL must be an https URL in production")
        if settings.realname_breaker_failures < 1 or settings.realname_breaker_seconds <= 0:
            raise ValueError("XINYI_REALNAME_BREAKER_FAILURES must be at least 1 and "
                             "XINYI_REALNAME_BREAKER_SECONDS more than 0")
        return cls(settings.realname_url, settings.realname_api_key,
                   timeout_seconds=settings.realname_timeout_seconds,
                   retries=settings.realname_retries,
                   breaker=CircuitBreaker(settings.realname_breaker_failures,
                                          settings.realname_breaker_seconds))

    def verify(self, id_number: IdNumber, name: str) -> bool:
        if not self.breaker.allow():
            log.warning("real-name verifier skipped: circuit open",
                        extra={"event": "realname_circuit_open"})
            raise RealNameUnavailable(self.breaker.retry_after())
        body = json.dumps({"id_number": id_number.value, "name": name},
                          ensure_ascii=False).encode("utf-8")
        for attempt in range(1, self.retries + 2):
            try:
                matched = self._attempt(body)
            except _Failure as failure:
                log.warning("real-name verifier attempt failed", extra={
                    "event": "realname_attempt_failed", "attempt": attempt,
                    "reason": failure.reason, "status": failure.status})
                if failure.retry and attempt <= self.retries:
                    self._sleep(self._backoff * 2 ** (attempt - 1))
                    continue
                break
            self.breaker.succeeded()
            return matched
        if self.breaker.failed():
            log.error("real-name verifier circuit opened", extra={
                "event": "realname_circuit_opened", "seconds": self.breaker.open_seconds})
        raise RealNameUnavailable(self.breaker.retry_after() if self.breaker.state == "open"
                                  else 5)

    def _attempt(self, body: bytes) -> bool:
        status, answer = self._post(body)
        if status != 200:
            raise _Failure("status", retry=status in _RETRIED_STATUSES, status=status)
        try:
            result = json.loads(answer).get("result")
        except (ValueError, AttributeError, RecursionError):
            result = None
        if result not in ("match", "mismatch"):
            raise _Failure("unexpected_answer", retry=False, status=status)
        return bool(result == "match")

    def _post(self, body: bytes) -> tuple[int, bytes]:
        connection: http.client.HTTPConnection = (
            http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout_seconds,
                                        context=self._tls) if self._https
            else http.client.HTTPConnection(self._host, self._port,
                                            timeout=self.timeout_seconds))
        headers = {"Authorization": f"Bearer {self._api_key}",
                   "Content-Type": "application/json; charset=utf-8",
                   "Accept": "application/json"}
        if rid := request_id.get():
            headers["X-Request-Id"] = rid
        try:
            connection.request("POST", self._path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read(MAX_RESPONSE_BYTES + 1)
        except TimeoutError:
            raise _Failure("timeout", retry=True) from None
        except (OSError, http.client.HTTPException):
            raise _Failure("connection", retry=True) from None
        finally:
            connection.close()
        if len(answer) > MAX_RESPONSE_BYTES:
            raise _Failure("answer_too_large", retry=False, status=response.status)
        return response.status, answer


def make_verifier(settings: VerifierSettings) -> RealNameVerifier:
    """The verifier ``XINYI_REALNAME_VERIFIER`` names; ValueError names a setting to fix
    (never its value)."""
    if settings.realname_verifier == "dev":
        return DevRealNameVerifier()
    if settings.realname_verifier == "http":
        return HttpRealNameVerifier.from_settings(settings)
    raise ValueError(f"XINYI_REALNAME_VERIFIER names no known verifier ({', '.join(KINDS)})")
