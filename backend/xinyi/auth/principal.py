"""Who is calling: the result of authentication, passed to services as a plain value."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

# Principal kinds as used by access rules; staff roles stand in for "staff".
CITIZEN = "citizen"
OPERATOR = "operator"
REVIEWER = "reviewer"
AUDITOR = "auditor"
PARTNER = "partner"
ORG = "org"
PROVIDER = "provider"
ALL_KINDS = (CITIZEN, OPERATOR, REVIEWER, AUDITOR, PARTNER, ORG, PROVIDER)
STAFF = (OPERATOR, REVIEWER, AUDITOR)


@dataclass(frozen=True)
class Principal:
    kind: str
    id: uuid.UUID
    session_id: uuid.UUID | None = None
    key_id: str | None = None
    client_kind: str | None = None
    client_name: str | None = None
