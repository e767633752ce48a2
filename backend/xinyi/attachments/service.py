"""Upload evidence, reference it from a case, and read it back: only its owner, a reviewer
and the provider of the record a case referencing it is about may read it. Reads by others
than the owner go into the owner's access log."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from xinyi.attachments.models import Attachment, AttachmentLink
from xinyi.audit import service as audit
from xinyi.auth.principal import Principal
from xinyi.citizens.service import citizen_bidx
from xinyi.deps import Deps
from xinyi.errors import DomainError, NotFound, ValidationFailed
from xinyi.jsonable import row

MAX_BYTES = 2 * 1024 * 1024
MAX_PER_CASE = 5
# The multipart envelope around the file (boundaries, part headers) on top of its bytes.
UPLOAD_OVERHEAD = 16 * 1024


class AttachmentTooLarge(DomainError):
    status = 413
    code = "attachment_too_large"
    title = "An attachment is at most 2 MiB"


class AttachmentTypeRefused(DomainError):
    status = 415
    code = "attachment_type_not_allowed"
    title = "Attachments are PNG, JPEG or PDF files (judged by their content)"


class UnknownAttachment(ValidationFailed):
    code = "unknown_attachment"
    title = "An attachment id is not one of your attachments"


def sniff(content: bytes) -> str | None:
    """The media type by the file's own signature (magic bytes), whatever its name says."""
    if content.startswith(b"\x89PNG\r\n\x1a\n") and content[12:16] == b"IHDR":
        return "image/png"
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"%PDF-") and b"%%EOF" in content[-1024:]:
        return "application/pdf"
    return None


@dataclass(frozen=True)
class AttachmentView:
    id: uuid.UUID
    media_type: str
    size: int
    sha256: str
    created_at: datetime


def _view(a: Attachment) -> AttachmentView:
    return AttachmentView(a.id, a.media_type, a.size, a.sha256.hex(), a.created_at)


def upload(session: Session, deps: Deps, account_id: uuid.UUID, content: bytes) -> AttachmentView:
    if len(content) > MAX_BYTES:
        raise AttachmentTooLarge()
    if not content:
        raise ValidationFailed.at("file", "the file is empty", location="files",
                                  detail="file: the file is empty")
    media_type = sniff(content)
    if media_type is None:
        raise AttachmentTypeRefused()
    attachment = Attachment(id=uuid.uuid4(), owner_bidx=citizen_bidx(session, account_id),
                            media_type=media_type, size=len(content),
                            sha256=hashlib.sha256(content).digest(), content=content,
                            created_at=deps.clock())
    session.add(attachment)
    session.flush()
    return _view(attachment)


def check_owned(session: Session, owner_bidx: bytes, ids: Sequence[uuid.UUID],
                field: str = "attachment_ids") -> list[uuid.UUID]:
    """The ids, each once, if every one is the owner's attachment; else a 422 naming the field."""
    wanted = list(dict.fromkeys(ids))
    if len(wanted) > MAX_PER_CASE:
        raise ValidationFailed.at(field, f"at most {MAX_PER_CASE} attachments",
                                  detail=f"{field}: at most {MAX_PER_CASE} attachments")
    if not wanted:
        return []
    found = set(session.scalars(select(Attachment.id).where(
        Attachment.id.in_(wanted), Attachment.owner_bidx == owner_bidx)))
    if found != set(wanted):
        raise UnknownAttachment.at(field, "not one of your attachments",
                                   detail=f"{field}: not one of your attachments")
    return wanted


def link(session: Session, ids: Sequence[uuid.UUID], *, case_kind: str, case_id: uuid.UUID,
         provider_id: uuid.UUID | None) -> None:
    """Reference these attachments from a case; ``provider_id`` is the provider that may
    read them besides reviewers (None: reviewers only)."""
    for attachment_id in ids:
        session.add(AttachmentLink(case_kind=case_kind, case_id=case_id,
                                   attachment_id=attachment_id, provider_id=provider_id))
    session.flush()


def linked(session: Session, case_kind: str, case_id: uuid.UUID) -> list[AttachmentView]:
    rows = session.scalars(select(Attachment).join(
        AttachmentLink, AttachmentLink.attachment_id == Attachment.id).where(
        AttachmentLink.case_kind == case_kind, AttachmentLink.case_id == case_id)
        .order_by(Attachment.created_at, Attachment.id))
    return [_view(a) for a in rows]


@dataclass(frozen=True)
class AttachmentContent:
    media_type: str
    content: bytes


def read(session: Session, deps: Deps, reader: Principal,
         attachment_id: uuid.UUID) -> AttachmentContent:
    """The file, for its owner, a reviewer (if a case references it) or the provider of the
    record a case referencing it is about. Anyone else gets the 404 of a missing file."""
    attachment = session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound("No attachment you may read has this id")
    now = deps.clock()
    if reader.kind == "citizen":
        allowed = citizen_bidx(session, reader.id) == attachment.owner_bidx
    else:
        links = select(AttachmentLink.case_id).where(
            AttachmentLink.attachment_id == attachment_id)
        if reader.kind == "provider":
            links = links.where(AttachmentLink.provider_id == reader.id)
        allowed = reader.kind in ("reviewer", "provider") and \
            session.scalar(links.limit(1)) is not None
        if allowed and reader.kind == "reviewer":
            audit.staff_read(session, [attachment.owner_bidx], staff_id=reader.id,
                             role=reader.kind, action="attachment", scope="evidence",
                             purpose="信用修复与异议审核 (repair and objection review)", now=now)
        elif allowed:
            audit.append(session, audit.Access(
                subject_bidx=attachment.owner_bidx, actor_type="provider",
                actor_id=str(reader.id), actor_name=reader.client_name or "unknown",
                action="attachment", scope="evidence",
                purpose="异议核查 (objection check)"), now=now)
    if not allowed:
        raise NotFound("No attachment you may read has this id")
    return AttachmentContent(attachment.media_type, attachment.content)


def export_attachments(session: Session, deps: Deps, account_id: uuid.UUID,
                       bidx: bytes) -> list[dict[str, Any]]:
    """What the citizen uploaded, described (type, size, SHA-256, the cases citing it): the
    content itself stays at ``GET /v1/me/attachments/{id}``."""
    found = list(session.scalars(select(Attachment).where(Attachment.owner_bidx == bidx)
                                 .order_by(Attachment.created_at, Attachment.id)))
    links: dict[uuid.UUID, list[dict[str, Any]]] = {a.id: [] for a in found}
    if found:
        for link in session.scalars(select(AttachmentLink)
                                    .where(AttachmentLink.attachment_id.in_(list(links)))
                                    .order_by(AttachmentLink.case_kind, AttachmentLink.case_id)):
            links[link.attachment_id].append(row(link, "case_kind", "case_id"))
    return [row(a, "id", "media_type", "size", "sha256", "created_at", cases=links[a.id])
            for a in found]
def forget_unlinked(session: Session, owner_bidx: bytes, *,
                    before: datetime | None = None) -> int:
    """Delete the uploads of a closed account that no case refers to (a repair or objection
    keeps its evidence); with ``before``, only those uploaded until then. Returns how many."""
    where = [Attachment.owner_bidx == owner_bidx,
             ~exists(select(AttachmentLink.attachment_id)
                     .where(AttachmentLink.attachment_id == Attachment.id))]
    if before is not None:
        where.append(Attachment.created_at <= before)
    result = session.execute(delete(Attachment).where(*where))
    return int(result.rowcount)  # type: ignore[attr-defined]
