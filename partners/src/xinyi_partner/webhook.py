"""Check the signature of a xinyi+ webhook delivery (Standard Webhooks 1.0, DESIGN.md §6).

Every delivery carries three headers::

    webhook-id:         msg_...             (the same on every retry and on a manual replay)
    webhook-timestamp:  1735689600          (Unix seconds)
    webhook-signature:  v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"> [v1,<...> ...]

The HMAC key is the endpoint secret ``whsec_<base64>``. While a secret is being rotated the
header carries one signature per live secret, separated by spaces; one match is enough.
The HMAC itself is computed by the official ``standardwebhooks`` library; this module adds
strict header parsing, a configurable tolerance and an injectable clock.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, NoReturn

from standardwebhooks import Webhook

from .errors import WebhookError

__all__ = ["SECRET_PREFIX", "verify_webhook"]

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (the prefix, not a secret)
_TIMESTAMP: Final = re.compile(r"0|[1-9][0-9]{0,14}")
_MAX_SIGNATURES: Final = 16
_MAX_ID_LENGTH: Final = 256
_MIN_SECRET_BYTES: Final = 24  # DESIGN.md §6: whsec_<base64 of at least 24 bytes>


def _reject_constant(value: str) -> NoReturn:
    raise ValueError(f"{value} is not valid JSON")


def _webhook_for(secret: str) -> Webhook:
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise WebhookError(
            "secret_invalid", f"the endpoint secret must start with {SECRET_PREFIX!r}"
        )
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookError("secret_invalid", "the endpoint secret is not base64") from None
    if not raw:
        raise WebhookError("secret_invalid", "the endpoint secret is empty")
    if len(raw) < _MIN_SECRET_BYTES:
        raise WebhookError(
            "secret_invalid", f"the endpoint secret is shorter than {_MIN_SECRET_BYTES} bytes"
        )
    return Webhook(raw)


def _signatures(header: str) -> list[bytes]:
    """The ``v1`` signatures in a ``webhook-signature`` header; other versions are ignored."""
    found: list[bytes] = []
    for entry in header.split()[:_MAX_SIGNATURES]:
        version, sep, encoded = entry.partition(",")
        if version != "v1" or not sep:
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str,
    *,
    tolerance_seconds: int = 300,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Verify a webhook delivery and return its parsed JSON body.

    ``headers`` is any mapping of the request headers (names are matched case-insensitively,
    e.g. Flask's ``request.headers``); ``body`` is the raw request body exactly as received —
    never a re-serialised copy. The timestamp must be within ``tolerance_seconds`` of ``now``
    (default: the current time). Raises :class:`WebhookError` on any failure.

    Deliveries are at-least-once: deduplicate on the ``webhook-id`` header.
    """
    if isinstance(tolerance_seconds, bool) or not isinstance(tolerance_seconds, int):
        raise TypeError("tolerance_seconds must be an int")
    if tolerance_seconds < 0:
        raise ValueError("tolerance_seconds must not be negative")
    webhook = _webhook_for(secret)

    lowered = {str(name).lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signature = lowered.get("webhook-signature")
    if not (
        isinstance(msg_id, str)
        and msg_id
        and isinstance(timestamp, str)
        and timestamp
        and isinstance(signature, str)
        and signature
    ):
        raise WebhookError(
            "headers_missing", "webhook-id, webhook-timestamp and webhook-signature are required"
        )
    if len(msg_id) > _MAX_ID_LENGTH:
        raise WebhookError("headers_missing", "webhook-id is too long")

    timestamp = timestamp.strip()
    if _TIMESTAMP.fullmatch(timestamp) is None:
        raise WebhookError("timestamp_invalid", "webhook-timestamp must be Unix seconds")
    sent_at = int(timestamp)
    if now is None:
        now_ts = datetime.now(UTC).timestamp()
    elif now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    else:
        now_ts = now.timestamp()
    if sent_at < now_ts - tolerance_seconds:
        raise WebhookError("timestamp_too_old", "the delivery is older than the tolerance")
    if sent_at > now_ts + tolerance_seconds:
        raise WebhookError("timestamp_too_new", "the delivery timestamp is in the future")

    if isinstance(body, bytes | bytearray | memoryview):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookError("body_invalid", "the body is not UTF-8") from None
    elif isinstance(body, str):
        text = body
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise WebhookError("body_invalid", "the body is not Unicode text") from None
    else:
        raise TypeError("body must be bytes or str")

    try:
        expected_header = webhook.sign(msg_id, datetime.fromtimestamp(sent_at, UTC), text)
        expected = base64.b64decode(expected_header.partition(",")[2])
    except (OverflowError, OSError, ValueError):
        raise WebhookError("timestamp_invalid", "webhook-timestamp is out of range") from None
    # Compare against every candidate so the time taken does not depend on which one matches.
    matched = False
    for candidate in _signatures(signature):
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookError("signature_invalid", "no webhook-signature matches the secret")

    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise WebhookError("body_invalid", "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise WebhookError("body_invalid", "the body is not a JSON object")
    return payload
