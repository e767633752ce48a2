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
    "RetryLater",
    "SeenJtiCache",
    "SessionEvent",
    "UploadClient",
    "UploadResult",
    "VerifiedCredential",
    "WebhookError",
    "WebhookReceiver",
    "discover",
    "verify_offline",
    "verify_webhook",
]

__version__ = "0.3.0"
