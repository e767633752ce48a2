"""The sections of a citizen's export: one line per kind of data, each from its domain's
public service. A new domain adds its line here and its section to ``export.schema.json``
(the schema test fails until both agree)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from xinyi.attachments import service as attachments
from xinyi.audit import checkpoints
from xinyi.audit import service as audit
from xinyi.benefits import service as benefits
from xinyi.citizens import service as citizens
from xinyi.commitments import service as commitments
from xinyi.consents import service as consents
from xinyi.credentials import service as credentials
from xinyi.decisions import service as decisions
from xinyi.deps import Deps
from xinyi.disputes import service as disputes
from xinyi.notifications import service as notifications
from xinyi.records import service as records
from xinyi.repairs import service as repairs
from xinyi.reports import service as reports
from xinyi.scoring import service as scoring
from xinyi.volunteering import service as volunteering

# (session, deps, account id, subject blind index) → a JSON object or a list of them.
SectionFn = Callable[[Session, Deps, uuid.UUID, bytes], Any]

SECTIONS: list[tuple[str, SectionFn]] = [
    ("profile", citizens.export_profile),
    ("records", records.export_records),
    ("list_entries", records.export_list_entries),
    ("score_history", scoring.export_scores),
    ("score_changes", scoring.export_score_changes),
    ("consents", consents.export_consents),
    ("consent_requests", consents.export_consent_requests),
    ("access_log", audit.export_access_log),
    ("access_log_proof", checkpoints.export_chain_proof),
    ("credentials", credentials.export_credentials),
    ("verifications", credentials.export_verifications),
    ("benefit_sessions", benefits.export_sessions),
    ("service_hours", volunteering.export_service_records),
    ("volunteer_registrations", volunteering.export_volunteer_registrations),
    ("repairs", repairs.export_repairs),
    ("disputes", disputes.export_disputes),
    ("decision_reviews", decisions.export_reviews),
    ("commitments", commitments.export_commitments),
    ("reports_filed", reports.export_reports_filed),
    ("attachments", attachments.export_attachments),
    ("notifications", notifications.export_notifications),
]
