"""xinyi+ (信易+) partner SDK.

* :func:`verify_offline` — check a scanned ``XY1:`` QR credential with the public keys from
  ``GET /.well-known/jwks.json``, without calling the API.
* :class:`SeenJtiCache` — the local memory that makes a credential single-use offline.
* :func:`verify_webhook` — check the Standard Webhooks signature of a delivery.
"""

from .credential import VerifiedCredential, verify_offline
from .errors import CredentialError, WebhookError
from .seen import SeenJtiCache
from .webhook import verify_webhook

__all__ = [
    "CredentialError",
    "SeenJtiCache",
    "VerifiedCredential",
    "WebhookError",
    "verify_offline",
    "verify_webhook",
]

__version__ = "0.1.0"
