"""xinyi+ (信易+) partner SDK.

* :class:`OfflineVerifier` — verify scanned ``XY1:`` QR credentials offline: it reads the
  deployment's ``/.well-known/xinyi-configuration`` (issuer, keys), keeps the keys fresh and
  remembers used credentials. Start here.
* :func:`discover` — read that configuration yourself.
* :func:`verify_offline` — the check itself, with keys you manage (``GET
  /.well-known/jwks.json``).
* :class:`SeenJtiCache` — the local memory that makes a credential single-use offline.
* :class:`OfflineQueue` — what was verified offline, kept on disk until
  :meth:`OfflineQueue.upload_pending` registers it (:class:`UploadClient`).
* :func:`verify_webhook` — check the Standard Webhooks signature of a delivery.
* :class:`WebhookReceiver` — a WSGI receiver: verify, deduplicate, answer fast, hand events to
  your handler in ``seq`` order, catching up from the event feed (:class:`FeedClient`).
* :mod:`xinyi_partner.transparency` — check the access log's signed tree heads and its
  inclusion and consistency proofs (RFC 9162): :func:`verify_tree_head`,
  :func:`verify_inclusion`, :func:`verify_consistency`.
* One module per partner kind — :mod:`xinyi_partner.library`, ``bike``, ``hospital``,
  ``hotel``, ``scenic``: a typed client of that kind's ``/v1/adapters/<kind>/…`` routes and
  typed webhook events with a dispatcher (:class:`ApiError` is every client's refusal).
"""

from ._adapter import ApiError, EventDispatcher, SessionEvent
from .credential import VerifiedCredential, verify_offline
from .discovery import Configuration, OfflineDecision, OfflineVerifier, discover
from .errors import CredentialError, DiscoveryError, WebhookError
from .offline import OfflineItem, OfflineQueue, RetryLater, UploadClient, UploadResult
from .receiver import DedupeStore, FeedClient, MemoryDedupe, WebhookReceiver
from .seen import SeenJtiCache
from .transparency import (
    ProofError,
    TreeHead,
    verify_consistency,
    verify_inclusion,
    verify_tree_head,
)
from .webhook import verify_webhook

__all__ = [
    "ApiError",
    "Configuration",
    "CredentialError",
    "DedupeStore",
    "DiscoveryError",
    "EventDispatcher",
    "FeedClient",
    "MemoryDedupe",
    "OfflineDecision",
    "OfflineItem",
    "OfflineQueue",
    "OfflineVerifier",
    "ProofError",
    "RetryLater",
    "SeenJtiCache",
    "SessionEvent",
    "TreeHead",
    "UploadClient",
    "UploadResult",
    "VerifiedCredential",
    "WebhookError",
    "WebhookReceiver",
    "discover",
    "verify_consistency",
    "verify_inclusion",
    "verify_offline",
    "verify_tree_head",
    "verify_webhook",
]

__version__ = "0.3.0"
