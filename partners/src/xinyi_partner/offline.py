"""Register what was verified offline: a durable local queue and its uploader.

Every credential an :class:`~xinyi_partner.OfflineVerifier` accepts offline must still reach
the citizen's access log (查询使用登记): :meth:`OfflineVerifier.check` puts
``(jti, benefit, decision, verified_at)`` in an :class:`OfflineQueue`, a SQLite file (WAL,
synchronous writes) that survives a crash or a power cut, and
:meth:`OfflineQueue.upload_pending` sends it to ``POST /v1/partner/verifications:offline``
when the device is online, at most 500 items a call.

An item leaves the queue only once the server has answered it (every per-item answer is
final: ``recorded``, ``duplicate``, ``double_presentation``, ``unattributable``,
``invalid``). A network failure, a 5xx or a 429 keeps everything not yet answered for the next
attempt (:attr:`UploadResult.retry_after` says when, from the server's ``Retry-After``). A crash
between the server's answer and the deletion only means the items go again: the server
answers them ``duplicate``, and records nothing twice.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from ._adapter import ApiError

__all__ = ["MAX_UPLOAD_ITEMS", "OfflineItem", "OfflineQueue", "RetryLater", "UploadClient",
           "UploadResult"]

MAX_UPLOAD_ITEMS: Final = 500
UPLOAD_PATH: Final = "/v1/partner/verifications:offline"
MAX_ANSWER_BYTES: Final = 4 * 1024 * 1024
FINAL: Final = frozenset({"recorded", "duplicate", "double_presentation", "unattributable",
                          "invalid"})
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    jti TEXT NOT NULL UNIQUE,
    benefit TEXT NOT NULL,
    decision TEXT NOT NULL,
    verified_at TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class OfflineItem:
    """One verification made offline, as queued and as uploaded."""

    jti: str
    benefit: str
    decision: str  # eligible | standard_terms
    verified_at: datetime

    def to_json(self) -> dict[str, str]:
        return {"jti": self.jti, "benefit": self.benefit, "decision": self.decision,
                "verified_at": self.verified_at.astimezone(UTC).isoformat()}


@dataclass(frozen=True)
class UploadResult:
    """What one :meth:`OfflineQueue.upload_pending` did. ``retry_after`` (seconds) is set when
    it stopped early (network, 5xx, 429): call again then. ``flagged`` are the answers staff
    will look at (``double_presentation``, ``unattributable``, ``invalid``)."""

    sent: int = 0
    answered: Mapping[str, int] = field(default_factory=dict)
    remaining: int = 0
    retry_after: float | None = None
    error: str | None = None
    flagged: tuple[Mapping[str, Any], ...] = ()


class RetryLater(Exception):
    """The upload did not get through (network, 5xx, 429); nothing was lost."""

    def __init__(self, reason: str, retry_after: float | None) -> None:
        self.reason, self.retry_after = reason, retry_after
        super().__init__(reason)


class UploadClient:
    """``POST /v1/partner/verifications:offline`` of one deployment with a partner API key."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0,
                 default_retry_seconds: float = 60.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http(s) URL")
        self._url = base_url.rstrip("/") + UPLOAD_PATH
        self._key = api_key
        self.timeout = timeout
        self.default_retry_seconds = default_retry_seconds

    def upload(self, items: list[OfflineItem]) -> list[dict[str, Any]]:
        """The server's answer for each item, in order. Raises :class:`RetryLater` when it
        is worth trying again later, :class:`ApiError` for any other refusal."""
        if not 1 <= len(items) <= MAX_UPLOAD_ITEMS:
            raise ValueError(f"1 to {MAX_UPLOAD_ITEMS} items a call")
        body = json.dumps({"items": [i.to_json() for i in items]}).encode()
        # S310: the scheme was checked in __init__.
        request = urllib.request.Request(self._url, data=body, method="POST", headers={  # noqa: S310
            "Authorization": f"Bearer {self._key}", "Content-Type": "application/json",
            "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                answer = json.loads(response.read(MAX_ANSWER_BYTES))
        except urllib.error.HTTPError as error:
            if error.code == 429 or error.code >= 500:
                raise RetryLater(f"HTTP {error.code}", self._retry_after(
                    error.headers.get("Retry-After"))) from None
            raise _api_error(error) from None
        except (OSError, ValueError) as error:  # URLError, timeouts, a cut answer
            raise RetryLater(type(error).__name__, self.default_retry_seconds) from None
        answers = answer.get("items") if isinstance(answer, dict) else None
        if not isinstance(answers, list) or len(answers) != len(items):
            raise RetryLater("unexpected answer", self.default_retry_seconds)
        return answers

    def _retry_after(self, header: str | None) -> float:
        try:
            return max(0.0, float(header)) if header else self.default_retry_seconds
        except ValueError:
            return self.default_retry_seconds


def _api_error(error: urllib.error.HTTPError) -> ApiError:
    try:
        problem = json.loads(error.read(MAX_ANSWER_BYTES))
    except (OSError, ValueError):
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    return ApiError(error.code, str(problem.get("code", "http_error")),
                    str(problem.get("detail", "")), problem.get("errors"))


class OfflineQueue:
    """A durable queue of offline verifications in a SQLite file (WAL, synchronous FULL),
    safe to share between threads. A ``jti`` is queued once."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # committed means on disk
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> OfflineQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM pending").fetchone()[0])

    def add(self, item: OfflineItem) -> bool:
        """Queue ``item`` (durable when this returns); False if its jti is already queued."""
        if item.verified_at.tzinfo is None:
            raise ValueError("verified_at must be timezone-aware")
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO pending (jti, benefit, decision, verified_at) "
                "VALUES (?, ?, ?, ?)",
                (item.jti, item.benefit, item.decision,
                 item.verified_at.astimezone(UTC).isoformat()))
            return cursor.rowcount == 1

    def peek(self, limit: int = MAX_UPLOAD_ITEMS) -> list[OfflineItem]:
        """The oldest ``limit`` items, still queued."""
        with self._lock:
            rows = self._db.execute(
                "SELECT jti, benefit, decision, verified_at FROM pending ORDER BY seq LIMIT ?",
                (limit,)).fetchall()
        return [OfflineItem(r[0], r[1], r[2], datetime.fromisoformat(r[3])) for r in rows]

    def remove(self, jtis: Iterable[str]) -> None:
        """Drop these items (the server answered them), in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("DELETE FROM pending WHERE jti = ?", [(j,) for j in jtis])
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def upload_pending(self, client: UploadClient, *,
                       chunk_size: int = MAX_UPLOAD_ITEMS) -> UploadResult:
        """Send everything queued, oldest first, ``chunk_size`` (≤ 500) items a call; drop
        what the server answered. Stops at the first call that does not get through and
        says when to try again; an :class:`ApiError` (a bad API key, say) is raised, with
        the items kept."""
        if not 1 <= chunk_size <= MAX_UPLOAD_ITEMS:
            raise ValueError(f"chunk_size must be 1 to {MAX_UPLOAD_ITEMS}")
        sent, answered, flagged = 0, Counter[str](), []
        retry_after: float | None = None
        error: str | None = None
        while batch := self.peek(chunk_size):
            try:
                answers = client.upload(batch)
            except RetryLater as later:
                retry_after, error = later.retry_after, later.reason
                break
            sent += len(batch)
            done = []
            for item, answer in zip(batch, answers, strict=True):
                status = answer.get("status") if isinstance(answer, Mapping) else None
                if answer.get("jti") != item.jti or status not in FINAL:
                    continue  # not an answer to this item: keep it
                done.append(item.jti)
                answered[status] += 1
                if status in ("double_presentation", "unattributable", "invalid"):
                    flagged.append(answer)
            self.remove(done)
            if len(done) < len(batch):  # something unanswered: do not loop on it now
                error = "some items were not answered"
                retry_after = client.default_retry_seconds
                break
        return UploadResult(sent=sent, answered=dict(answered), remaining=len(self),
                            retry_after=retry_after, error=error, flagged=tuple(flagged))
