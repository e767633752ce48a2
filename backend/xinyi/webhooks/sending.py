"""Sending one webhook: Standard Webhooks 1.0 headers and signature, over httpx, to an
address the SSRF guard checked.

The name is resolved once per attempt (:func:`xinyi.webhooks.ssrf.resolve_checked`); the
request goes to that address while the ``Host`` header and TLS (SNI and certificate
verification) keep the name, so an answer that changes after the check (DNS rebinding) is never
used. Redirects are not followed (a 3xx is a failure). At most 2 KiB of the answer is read.

Nothing here logs: the caller records the :class:`Outcome` (status, duration, first 2 KiB,
an error word), which never holds the secret, the body or the URL.
"""

from __future__ import annotations

import email.utils
import logging
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv6Address

import httpx
from standardwebhooks import Webhook

from xinyi.webhooks.ssrf import (
    IPAddress,
    Target,
    UnresolvableHost,
    UnsafeUrl,
    parse_url,
    resolve_checked,
)

# httpx logs every request's full URL at INFO: a receiver's URL may carry a token in its
# query, which must never reach a log.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

CONNECT_TIMEOUT_S = 5.0
TOTAL_TIMEOUT_S = 15.0
KEPT_BODY_BYTES = 2048
RETRY_AFTER_CAP_S = 3600
USER_AGENT = "xinyi-webhooks/1"


def signature_header(secrets: list[str], msg_id: str, timestamp: datetime, body: bytes) -> str:
    """``webhook-signature``: one ``v1,<base64>`` per live secret, space-separated (two during
    a rotation), computed by the official ``standardwebhooks`` library."""
    text = body.decode("utf-8")
    return " ".join(Webhook(secret).sign(msg_id, timestamp, text) for secret in secrets)


def signed_headers(secrets: list[str], msg_id: str, timestamp: datetime,
                   body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
    }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt met. ``status_code`` None: no answer (``error`` says why)."""

    status_code: int | None
    duration_ms: int
    body: str = ""
    error: str | None = None
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds or as an HTTP date, capped at one hour; None if absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return max(0.0, min(seconds, float(RETRY_AFTER_CAP_S)))


class HttpSender:
    """Sends signed bodies. Thread-safe: one httpx client per (scheme, host, port), each with
    a small pool, so one receiver's slow connections never hold another's.

    No more requests enter a client than it has connections (a semaphore per client): with
    more threads queued in one httpcore pool than it has connections, httpcore 1.0.9 can close
    a connection it has already handed to a queued request (encode/httpcore#1110), which
    fails that request (``Bad file descriptor``) or leaves it hanging until its timeout."""

    def __init__(self, *, allow_private: bool, require_https: bool,
                 max_connections_per_host: int = 4, max_hosts: int = 512,
                 verify: ssl.SSLContext | bool = True) -> None:
        self.allow_private = allow_private
        self.require_https = require_https
        self._max_connections = max_connections_per_host
        self._max_hosts = max_hosts
        self._verify = verify
        self._clients: OrderedDict[tuple[str, str, int],
                                   tuple[httpx.Client, threading.BoundedSemaphore]] = OrderedDict()
        self._lock = threading.Lock()

    def _client(self, target: Target) -> tuple[httpx.Client, threading.BoundedSemaphore]:
        key = (target.scheme, target.host, target.port)
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                found = (httpx.Client(
                    follow_redirects=False, trust_env=False, verify=self._verify,
                    timeout=httpx.Timeout(TOTAL_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                    limits=httpx.Limits(max_connections=self._max_connections,
                                        max_keepalive_connections=self._max_connections)),
                    threading.BoundedSemaphore(self._max_connections))
                self._clients[key] = found
                while len(self._clients) > self._max_hosts:
                    _key, (old, _slots) = self._clients.popitem(last=False)
                    old.close()
            else:
                self._clients.move_to_end(key)
            return found

    def close(self) -> None:
        with self._lock:
            for client, _slots in self._clients.values():
                client.close()
            self._clients.clear()

    def send(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        started = time.monotonic()

        def done(error: str | None = None, status: int | None = None, text: str = "",
                 retry_after: float | None = None) -> Outcome:
            return Outcome(status, int((time.monotonic() - started) * 1000), text, error,
                           retry_after)

        try:
            target = parse_url(url, require_https=self.require_https)
            addresses = resolve_checked(target.host, target.port,
                                        allow_private=self.allow_private)
        except UnresolvableHost:
            return done("dns")
        except UnsafeUrl:
            return done("refused_address")
        try:
            return self._post(target, addresses[0], headers, body, started, done)
        except httpx.ConnectTimeout:
            return done("connect_timeout")
        except httpx.TimeoutException:
            return done("timeout")
        except httpx.ConnectError as exc:
            text = str(exc)
            return done("tls" if "SSL" in text or "certificate" in text.lower() else "connect")
        except (httpx.RemoteProtocolError, httpx.LocalProtocolError):
            return done("protocol")
        except httpx.HTTPError:
            return done("network")

    def _post(self, target: Target, address: IPAddress, headers: dict[str, str], body: bytes,
              started: float, done: Callable[..., Outcome]) -> Outcome:
        host = f"[{address}]" if isinstance(address, IPv6Address) else str(address)
        url = f"{target.scheme}://{host}:{target.port}{target.target}"
        extensions: dict[str, object] = {}
        if target.scheme == "https" and target.literal is None:
            extensions["sni_hostname"] = target.host
        request_headers = {**headers, "host": target.host_header}
        client, slots = self._client(target)
        # Waiting for a connection counts in the attempt's 15 s, as httpx's pool wait does.
        if not slots.acquire(timeout=max(0.0, TOTAL_TIMEOUT_S - (time.monotonic() - started))):
            return done("timeout")
        try:
            remaining = max(0.5, TOTAL_TIMEOUT_S - (time.monotonic() - started))
            return self._exchange(client, url, body, request_headers, extensions, remaining,
                                  started, done)
        finally:
            slots.release()

    def _exchange(self, client: httpx.Client, url: str, body: bytes, headers: dict[str, str],
                  extensions: dict[str, object], remaining: float, started: float,
                  done: Callable[..., Outcome]) -> Outcome:
        with client.stream("POST", url, content=body, headers=headers, extensions=extensions,
                           timeout=httpx.Timeout(remaining, connect=CONNECT_TIMEOUT_S),
                           ) as response:
            kept = bytearray()
            for chunk in response.iter_raw():
                kept += chunk
                if len(kept) >= KEPT_BODY_BYTES:
                    break
                if time.monotonic() - started > TOTAL_TIMEOUT_S:
                    return done("timeout", response.status_code)
            text = bytes(kept[:KEPT_BODY_BYTES]).decode("utf-8", errors="replace")
            status = response.status_code
            retry_after = (parse_retry_after(response.headers.get("retry-after"),
                                             datetime.now(UTC))
                           if status in (429, 503) else None)
            error = "redirect" if 300 <= status < 400 else None
            return done(error, status, text, retry_after)

