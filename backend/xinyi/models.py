"""Every table's model, imported once so Alembic sees the whole schema."""

from __future__ import annotations

from xinyi import idempotency
from xinyi.adapters import models as adapter_models
from xinyi.alerts import models as alert_models
from xinyi.attachments import models as attachment_models
from xinyi.audit import models as audit_models
from xinyi.auth import models as auth_models
from xinyi.benefits import models as benefit_models
from xinyi.citizens import models as citizen_models
from xinyi.commitments import models as commitment_models
from xinyi.consents import models as consent_models
from xinyi.credentials import models as credential_models
from xinyi.db import Base
from xinyi.decisions import models as decision_models
from xinyi.disputes import models as dispute_models
from xinyi.exports import models as export_models
from xinyi.notifications import models as notification_models
from xinyi.outbox import models as outbox_models
from xinyi.records import models as record_models
from xinyi.repairs import models as repair_models
from xinyi.reports import models as report_models
from xinyi.scoring import models as scoring_models
from xinyi.signing import models as signing_models
from xinyi.stats import models as stats_models
from xinyi.subjects import models as subject_models
from xinyi.volunteering import models as volunteering_models
from xinyi.webhooks import models as webhook_models
from xinyi.workdays import models as workday_models

metadata = Base.metadata
__all__ = ["adapter_models", "alert_models", "attachment_models", "audit_models", "auth_models",
           "benefit_models", "citizen_models", "commitment_models", "consent_models",
           "credential_models", "decision_models", "dispute_models", "export_models",
           "idempotency", "metadata",
           "notification_models", "outbox_models", "record_models", "repair_models",
           "report_models",
           "scoring_models", "signing_models", "stats_models", "subject_models",
           "volunteering_models", "webhook_models", "workday_models"]
