"""Discover a xinyi+ deployment and verify its credentials offline with fresh keys.

A deployment publishes ``GET /.well-known/xinyi-configuration``::

    {"issuer": "xy", "jwks_uri": "https://…/.well-known/jwks.json",
     "credential_algorithms": ["EdDSA"], "credential_prefix": "XY1:"}

:func:`discover` reads it; :meth:`OfflineVerifier.from_configuration` builds a verifier with
that issuer and keys. The verifier keeps its copy of the JWKS as fresh as the server's
``Cache-Control`` asks, refetches it once when a credential names an unknown key (keys
rotate), keeps using the last good copy while the network is down, and refuses everything
(``stale_keys``) once that copy is older than ``max_key_age_seconds``: a key withdrawn by the
deployment must stop being trusted some time.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from .credential import ALGORITHM, PREFIX, VerifiedCredential, verify_offline
from .errors import CredentialError, DiscoveryError
from .offline import OfflineItem, OfflineQueue
from .seen import SeenJtiCache

__all__ = ["CONFIGURATION_PATH", "Configuration", "OfflineDecision", "OfflineVerifier",
           "discover"]

CONFIGURATION_PATH: Final = "/.well-known/xinyi-configuration"
MAX_DOCUMENT_BYTES: Final = 256 * 1024  # a JWKS with a few keys is well under 4 KiB
DEFAULT_MAX_AGE_SECONDS: Final = 300  # when the JWKS answer says nothing
OFFLINE_RETRY_SECONDS: Final = 60  # how soon to try again after a failed refresh
_MAX_AGE: Final = re.compile(r"(?:^|[,\s])max-age=(\d{1,9})(?:$|[,\s])")


@dataclass(frozen=True)
class Configuration:
    """What ``GET /.well-known/xinyi-configuration`` says."""

    issuer: str
    jwks_uri: str
    credential_algorithms: tuple[str, ...]
    credential_prefix: str


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DiscoveryError(f"{url!r} is not an http(s) URL")


def _fetch_json(url: str, timeout: float) -> tuple[Any, str]:
    """The parsed JSON document at ``url`` and its Cache-Control header."""
    _check_url(url)
    # S310: the scheme is checked above (no file: or other URL reaches urlopen).
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read(MAX_DOCUMENT_BYTES + 1)
            cache_control = response.headers.get("Cache-Control", "")
    except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
        raise DiscoveryError(f"GET {url} failed: {exc}") from exc
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DiscoveryError(f"GET {url}: the answer is over {MAX_DOCUMENT_BYTES} bytes")
    try:
        return json.loads(raw), cache_control
    except (ValueError, RecursionError):
        raise DiscoveryError(f"GET {url}: the answer is not JSON") from None


def discover(base_url: str, *, timeout: float = 5) -> Configuration:
    """Read the configuration of the deployment at ``base_url`` (``https://api.…``).

    Raises :class:`DiscoveryError` if it cannot be fetched, or if it describes credentials
    this SDK cannot verify (another prefix or algorithm), or keys served over plain HTTP by a
    deployment reached over HTTPS.
    """
    url = base_url.rstrip("/") + CONFIGURATION_PATH
    document, _ = _fetch_json(url, timeout)
    if not isinstance(document, Mapping):
        raise DiscoveryError(f"GET {url}: the answer is not a JSON object")
    issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
    algorithms, prefix = document.get("credential_algorithms"), document.get("credential_prefix")
    if not (isinstance(issuer, str) and issuer and isinstance(jwks_uri, str)):
        raise DiscoveryError(f"GET {url}: 'issuer' and 'jwks_uri' must be strings")
    if not isinstance(algorithms, list) or ALGORITHM not in algorithms:
        raise DiscoveryError(f"GET {url}: the credentials are not signed with {ALGORITHM}")
    if prefix != PREFIX:
        raise DiscoveryError(f"GET {url}: the credentials do not start with {PREFIX!r}")
    _check_url(jwks_uri)
    if urlsplit(url).scheme == "https" and urlsplit(jwks_uri).scheme != "https":
        raise DiscoveryError(f"GET {url}: the keys must be served over https too")
    return Configuration(issuer=issuer, jwks_uri=jwks_uri,
                         credential_algorithms=tuple(str(a) for a in algorithms),
                         credential_prefix=prefix)


@dataclass(frozen=True)
class OfflineDecision:
    """:meth:`OfflineVerifier.check`'s answer: ``decision`` is ``eligible`` or
    ``standard_terms`` (serve as anyone without the card: never a refusal of service);
    ``error`` says why a credential was refused; ``queued`` that it waits for upload."""

    decision: str
    credential: VerifiedCredential | None = None
    error: CredentialError | None = None
    queued: bool = False


def _max_age(cache_control: str) -> int:
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return 0
    match = _MAX_AGE.search(lowered)
    return int(match.group(1)) if match else DEFAULT_MAX_AGE_SECONDS


class OfflineVerifier:
    """:func:`verify_offline` with the issuer, the keys and the replay memory handled.

    ``jwks_uri`` and ``issuer`` come from the deployment's configuration (use
    :meth:`from_configuration`). ``cache_path``, if given, keeps the last good JWKS on disk
    with the time it was fetched, so a restart without network can still verify. The
    verifier is safe to share between threads.
    """

    def __init__(
        self,
        jwks_uri: str,
        *,
        issuer: str,
        seen: SeenJtiCache | None = None,
        leeway_seconds: int = 60,
        max_key_age_seconds: float = 24 * 3600,
        min_refresh_seconds: float = 30,
        cache_path: str | os.PathLike[str] | None = None,
        timeout: float = 5,
        clock: Callable[[], float] = time.time,
        queue: OfflineQueue | None = None,
    ) -> None:
        _check_url(jwks_uri)
        if not isinstance(issuer, str) or not issuer:
            raise ValueError("issuer must be a non-empty string")
        self.jwks_uri, self.issuer = jwks_uri, issuer
        self.seen = SeenJtiCache() if seen is None else seen
        self.leeway_seconds = leeway_seconds
        self.max_key_age_seconds = max_key_age_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self.timeout = timeout
        self._clock = clock
        self.queue = queue
        self._lock = threading.Lock()
        self._jwks: Mapping[str, Any] | None = None
        self._fetched_at = float("-inf")  # when the copy in use was fetched (clock time)
        self._fresh_until = float("-inf")
        self._tried_at = float("-inf")  # the last fetch attempt, successful or not
        self._load_cached()

    @classmethod
    def from_configuration(cls, base_url: str, **options: Any) -> OfflineVerifier:
        """The verifier for the deployment at ``base_url``: reads its configuration (issuer,
        keys' URL), then its keys. ``options`` are those of the constructor.

        Without network, a verifier with a ``cache_path`` starts from what that file kept
        (the issuer, the keys' URL and the keys); one without raises :class:`DiscoveryError`.
        """
        try:
            configuration = discover(base_url, timeout=options.get("timeout", 5))
            jwks_uri, issuer = configuration.jwks_uri, configuration.issuer
        except DiscoveryError:
            cached = _read_cache(options.get("cache_path"))
            if cached is None:
                raise
            jwks_uri, issuer = cached["jwks_uri"], cached["issuer"]
        verifier = cls(jwks_uri, issuer=issuer, **options)
        with verifier._lock:
            verifier._fetch(required=verifier._jwks is None)
        return verifier

    @property
    def keys_age_seconds(self) -> float:
        """How old the copy of the keys in use is (infinite before the first fetch)."""
        return self._clock() - self._fetched_at

    def verify(self, qr_payload: str, *, now: datetime | None = None) -> VerifiedCredential:
        """Verify a scanned payload; raise :class:`CredentialError` (with its ``reason``)."""
        jwks = self._keys(refresh=False)
        try:
            return self._verify(qr_payload, jwks, now)
        except CredentialError as error:
            if error.code != "unknown_key":
                raise
        return self._verify(qr_payload, self._keys(refresh=True), now)

    def check(self, qr_payload: str, benefit: str, *,
              now: datetime | None = None) -> OfflineDecision:
        """Decide whether the scanned card grants ``benefit`` (its short ``qr_code``, as the
        credential's ``ben`` claim lists it: ``"lb"``) and, with a :attr:`queue`, queue the
        verification for upload (:meth:`OfflineQueue.upload_pending`).

        It grants nothing on any refusal: a forged, expired or replayed card, and every card
        while the keys are older than ``max_key_age_seconds`` (24 h by default: a key the
        deployment withdrew must stop being trusted). A refused card is not queued (there is
        no verified ``jti`` to register)."""
        at = datetime.now(UTC) if now is None else now
        try:
            credential = self.verify(qr_payload, now=at)
        except CredentialError as error:
            return OfflineDecision("standard_terms", error=error)
        decision = "eligible" if benefit in credential.benefits else "standard_terms"
        queued = self.queue is not None and self.queue.add(
            OfflineItem(credential.jti, benefit, decision, at))
        return OfflineDecision(decision, credential=credential, queued=queued)

    def refresh(self) -> None:
        """Fetch the keys now; raises :class:`DiscoveryError` if that fails."""
        with self._lock:
            self._fetch(required=True)

    def _verify(self, qr_payload: str, jwks: Mapping[str, Any],
                now: datetime | None) -> VerifiedCredential:
        return verify_offline(qr_payload, jwks, seen=self.seen, now=now,
                              leeway_seconds=self.leeway_seconds, issuer=self.issuer)

    def _keys(self, *, refresh: bool) -> Mapping[str, Any]:
        with self._lock:
            now = self._clock()
            due = now >= self._fresh_until or (
                refresh and now - self._tried_at >= self.min_refresh_seconds)
            if due:
                self._fetch(required=False)
            if self._jwks is None:
                raise CredentialError("stale_keys", f"no keys yet: GET {self.jwks_uri} failed")
            if self._clock() - self._fetched_at > self.max_key_age_seconds:
                raise CredentialError(
                    "stale_keys", f"the keys were fetched over {self.max_key_age_seconds:g} s "
                    f"ago and GET {self.jwks_uri} fails")
            return self._jwks

    def _fetch(self, *, required: bool) -> None:
        """Replace the keys with the deployment's current ones (the lock is held). A failure
        keeps the last good copy and is tried again later, unless ``required``."""
        self._tried_at = self._clock()
        try:
            jwks, cache_control = _fetch_json(self.jwks_uri, self.timeout)
            if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
                raise DiscoveryError(f"GET {self.jwks_uri}: the answer has no 'keys' list")
        except DiscoveryError:
            if required:
                raise
            self._fresh_until = self._tried_at + OFFLINE_RETRY_SECONDS
            return
        self._jwks, self._fetched_at = jwks, self._tried_at
        self._fresh_until = self._tried_at + _max_age(cache_control)
        self._store_cached()

    def _load_cached(self) -> None:
        cached = _read_cache(self.cache_path)
        if cached is not None and (cached["jwks_uri"], cached["issuer"]) == (
                self.jwks_uri, self.issuer):
            self._jwks, self._fetched_at = cached["jwks"], cached["fetched_at"]

    def _store_cached(self) -> None:
        if self.cache_path is None:
            return
        text = json.dumps({"jwks_uri": self.jwks_uri, "issuer": self.issuer,
                           "fetched_at": self._fetched_at, "jwks": self._jwks})
        directory = self.cache_path.parent
        fd, aside = tempfile.mkstemp(prefix=".xinyi-jwks-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(aside, self.cache_path)  # whole or not at all
        except OSError:
            Path(aside).unlink(missing_ok=True)


def _read_cache(path: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """What a verifier's ``cache_path`` kept, or ``None``: an unreadable file is no cache."""
    if path is None:
        return None
    try:
        cached = json.loads(Path(path).read_text(encoding="utf-8"))
        fields = {"jwks_uri": str(cached["jwks_uri"]), "issuer": str(cached["issuer"]),
                  "fetched_at": float(cached["fetched_at"]), "jwks": cached["jwks"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(fields["jwks"], Mapping) or not isinstance(fields["jwks"].get("keys"), list):
        return None
    return fields
