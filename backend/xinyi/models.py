"""Every table's model, imported once so Alembic sees the whole schema."""

from __future__ import annotations

from xinyi import idempotency
from xinyi.adapters import models as adapter_models
from xinyi.audit import models as audit_models
from xinyi.auth import models as auth_models
from xinyi.benefits import models as benefit_models
from xinyi.citizens import models as citizen_models
from xinyi.consents import models as consent_models
from xinyi.credentials import models as credential_models
from xinyi.db import Base
from xinyi.notifications import models as notification_models
from xinyi.outbox import models as outbox_models
from xinyi.records import models as record_models
from xinyi.scoring import models as scoring_models
from xinyi.signing import models as signing_models
from xinyi.subjects import models as subject_models
from xinyi.webhooks import models as webhook_models

metadata = Base.metadata
__all__ = ["adapter_models", "audit_models", "auth_models", "benefit_models", "citizen_models",
           "consent_models", "credential_models", "idempotency", "metadata", "notification_models",
           "outbox_models", "record_models", "scoring_models", "signing_models",
           "subject_models", "webhook_models"]
