"""The dispatcher: outbox events → each partner's feed (:class:`PartnerEvent`) → deliveries.

One batch is one unit of work: read the oldest unpublished outbox events, decide who hears
of each, write one feed event per partner (its next ``seq``) and one delivery per matching
endpoint, register the data-carrying ones in the citizen's access log, and mark the outbox
events published. Everything is set-based per batch (a bulk import writes its ``list.entered``
events by the hundred thousand): a fixed number of queries per batch, whatever it holds,
plus one access-log append per (data event, partner) — rare, since only partners holding a
consent receive those.

One dispatcher runs at a time: on PostgreSQL the batch takes a transaction-scoped advisory
lock (another dispatcher finds it taken and stops); SQLite has one process. Should two ever
overlap, the unique ``(partner_id, outbox_event_id)`` and ``(partner_id, seq)`` refuse the
second write and its whole batch rolls back: nothing is ever written twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from xinyi.audit import service as audit
from xinyi.consents.service import ConsentWindow, consent_windows
from xinyi.dbutil import insert_for
from xinyi.deps import Deps
from xinyi.outbox import service as outbox
from xinyi.subjects.service import pseudonym
from xinyi.webhooks import catalogue
from xinyi.webhooks.models import PartnerEvent, WebhookDelivery, WebhookEndpoint, WebhookWatch

log = logging.getLogger(__name__)

BATCH = 1000
# pg_try_advisory_xact_lock key: "xywhdisp" as a signed 64-bit integer.
LOCK_KEY = int.from_bytes(b"xywhdisp", "big", signed=True)
LIST_NOTICE = "名单变动通知 (list change notice: the partner was told the entry opened)"
# Topics whose delivery is not "every matching endpoint of the partner".
ONLY_ENDPOINT = "webhook.test"  # to the endpoint named in the payload, whatever its filter
OTHER_ENDPOINTS = "endpoint.disabled"  # to the partner's endpoints but the one named


@dataclass(frozen=True)
class _Recipient:
    partner_id: uuid.UUID
    window: ConsentWindow | None  # the consent it hears under; None: the event is its own


def _locked(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(LOCK_KEY))))


def _recipients(event: outbox.Pending, entry: catalogue.EventType,
                windows: dict[bytes, list[ConsentWindow]],
                watchers: dict[str, list[uuid.UUID]],
                subscribers: dict[str, list[uuid.UUID]]) -> list[_Recipient]:
    if event.partner_id is not None:
        return [_Recipient(event.partner_id, None)]
    if event.subject_bidx is None:
        if entry.broadcast:
            return [_Recipient(p, None) for p in subscribers.get(entry.name, ())]
        return []
    chosen: dict[uuid.UUID, ConsentWindow] = {}
    for window in windows.get(event.subject_bidx, ()):
        if window.live_at(event.created_at):
            best = chosen.get(window.partner_id)
            if best is None or window.ends_at > best.ends_at:
                chosen[window.partner_id] = window
    out = [_Recipient(p, w) for p, w in sorted(chosen.items(), key=lambda kv: kv[0].bytes)]
    if entry.watch is not None and entry.watch[0] == "close":
        key = catalogue.watch_key(entry, event.payload)
        out += [_Recipient(p, None) for p in watchers.get(key or "", ()) if p not in chosen]
    return out


def _subscribers(session: Session, names: Iterable[str]) -> dict[str, list[uuid.UUID]]:
    """For each broadcast type, the partners with a live endpoint that names it."""
    wanted = set(names)
    out: dict[str, set[uuid.UUID]] = {}
    if wanted:
        for partner_id, types in session.execute(
                select(WebhookEndpoint.partner_id, WebhookEndpoint.event_types)
                .where(WebhookEndpoint.deleted_at.is_(None))):
            for name in wanted.intersection(types or ()):
                out.setdefault(name, set()).add(partner_id)
    return {name: sorted(ids, key=lambda p: p.bytes) for name, ids in out.items()}


def _watchers(session: Session, keys: Iterable[str]) -> dict[str, list[uuid.UUID]]:
    wanted = sorted(set(keys))
    out: dict[str, list[uuid.UUID]] = {}
    if wanted:
        for about, partner_id in session.execute(
                select(WebhookWatch.about, WebhookWatch.partner_id)
                .where(WebhookWatch.about.in_(wanted))
                .order_by(WebhookWatch.about, WebhookWatch.partner_id)):
            out.setdefault(about, []).append(partner_id)
    return out


def _already(session: Session, ids: list[uuid.UUID]) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """(partner, outbox event) pairs already in a feed: an event handed back to the outbox
    (its ``published_at`` cleared by hand) reaches only those that did not get it."""
    if not ids:
        return set()
    return {(p, o) for p, o in session.execute(
        select(PartnerEvent.partner_id, PartnerEvent.outbox_event_id)
        .where(PartnerEvent.outbox_event_id.in_(ids))) if o is not None}


def _next_seqs(session: Session, partners: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    ids = sorted(set(partners), key=lambda p: p.bytes)
    last = {partner: top for partner, top in session.execute(
        select(PartnerEvent.partner_id, func.max(PartnerEvent.seq))
        .where(PartnerEvent.partner_id.in_(ids)).group_by(PartnerEvent.partner_id))}
    return {p: int(last.get(p) or 0) for p in ids}


def _endpoints(session: Session,
               partners: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[WebhookEndpoint]]:
    ids = sorted(set(partners), key=lambda p: p.bytes)
    out: dict[uuid.UUID, list[WebhookEndpoint]] = {}
    if ids:
        for endpoint in session.scalars(
                select(WebhookEndpoint).where(WebhookEndpoint.partner_id.in_(ids),
                                              WebhookEndpoint.deleted_at.is_(None))
                .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)):
            out.setdefault(endpoint.partner_id, []).append(endpoint)
    return out


def _targets(endpoints: list[WebhookEndpoint], entry: catalogue.EventType,
             payload: dict[str, Any]) -> list[WebhookEndpoint]:
    named = str(payload.get("endpoint_id", ""))
    if entry.topic == ONLY_ENDPOINT:
        return [e for e in endpoints if str(e.id) == named]
    chosen = [e for e in endpoints if not e.event_types or entry.name in e.event_types]
    if entry.topic == OTHER_ENDPOINTS:
        chosen = [e for e in chosen if str(e.id) != named]
    return chosen


class _Names:
    """The partners' names for access-log entries, read once per batch."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._known: dict[uuid.UUID, tuple[str, str]] = {}

    def __call__(self, partner_id: uuid.UUID) -> tuple[str, str]:
        if partner_id not in self._known:
            self._known[partner_id] = audit.partner_actor(self._session, partner_id)
        return self._known[partner_id]


def dispatch_batch(session: Session, deps: Deps, *, batch: int = BATCH) -> int | None:
    """Dispatch up to ``batch`` outbox events in the caller's unit; returns how many were
    handled (0: none was waiting), or None if another dispatcher holds the lock."""
    if not _locked(session):
        return None
    now = deps.clock()
    events = outbox.pending(session, limit=batch)
    if not events:
        return 0
    typed = [(e, catalogue.for_topic(e.topic, e.payload)) for e in events]
    public = [(e, t) for e, t in typed if t is not None]
    subjects = {e.subject_bidx for e, _ in public
                if e.partner_id is None and e.subject_bidx is not None}
    windows = (consent_windows(session, subjects, min(e.created_at for e, _ in public),
                               max(e.created_at for e, _ in public)) if subjects else {})
    closing = {catalogue.watch_key(t, e.payload) for e, t in public
               if t.watch is not None and t.watch[0] == "close" and e.partner_id is None}
    watchers = _watchers(session, (k for k in closing if k))
    subscribers = _subscribers(session, {t.name for e, t in public if t.broadcast
                                         and e.partner_id is None and e.subject_bidx is None})
    done = _already(session, [e.id for e, _ in public])
    plan = []
    for e, t in public:  # in order: a watch opened earlier in the batch counts at its close
        recipients = [r for r in _recipients(e, t, windows, watchers, subscribers)
                      if (r.partner_id, e.id) not in done]
        plan.append((e, t, recipients))
        key = catalogue.watch_key(t, e.payload)
        if key and t.watch is not None and e.partner_id is None:
            if t.watch[0] == "open":
                known = watchers.setdefault(key, [])
                known += [r.partner_id for r in recipients if r.partner_id not in known]
            else:
                watchers.pop(key, None)
    partners = {r.partner_id for _, _, rs in plan for r in rs}
    seqs = _next_seqs(session, partners)
    endpoints = _endpoints(session, partners)
    names = _Names(session)
    feed: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    opened: dict[tuple[uuid.UUID, str], bytes] = {}
    closed: set[str] = set()
    for event, entry, recipients in plan:
        about = catalogue.watch_key(entry, event.payload)
        for r in recipients:
            seqs[r.partner_id] += 1
            subject = (pseudonym(deps, r.partner_id, event.subject_bidx)
                       if event.subject_bidx is not None and catalogue.has_subject(entry)
                       else None)
            feed_id = uuid.uuid4()
            feed.append({"id": feed_id, "partner_id": r.partner_id, "seq": seqs[r.partner_id],
                         "type": entry.name, "version": entry.version,
                         "payload": catalogue.public_data(entry, event.payload, subject),
                         "about": about, "outbox_event_id": event.id,
                         "created_at": event.created_at})
            for endpoint in _targets(endpoints.get(r.partner_id, []), entry, event.payload):
                live = endpoint.enabled
                deliveries.append({
                    "id": uuid.uuid4(), "event_id": feed_id, "endpoint_id": endpoint.id,
                    "seq": seqs[r.partner_id], "status": "pending" if live else "paused",
                    "attempts": 0,
                    "next_attempt_at": now if live else None, "created_at": now})
            if entry.carries_data and event.subject_bidx is not None:
                actor_id, actor_name = names(r.partner_id)
                audit.append(session, audit.Access(
                    subject_bidx=event.subject_bidx, actor_type="partner", actor_id=actor_id,
                    actor_name=actor_name, action="webhook", scope=entry.name,
                    purpose=r.window.purpose if r.window else LIST_NOTICE,
                    consent_id=r.window.consent_id if r.window else None), now=now)
            if about and entry.watch is not None and entry.watch[0] == "open" \
                    and event.subject_bidx is not None:
                opened[(r.partner_id, about)] = event.subject_bidx
        if about and entry.watch is not None and entry.watch[0] == "close":
            closed.add(about)
            for pair in [k for k in opened if k[1] == about]:  # opened and closed in one batch
                del opened[pair]
    if feed:
        session.execute(insert(PartnerEvent.__table__), feed)  # type: ignore[arg-type]
    if deliveries:
        session.execute(insert(WebhookDelivery.__table__), deliveries)  # type: ignore[arg-type]
    if closed:
        session.execute(delete(WebhookWatch).where(WebhookWatch.about.in_(sorted(closed)))
                        .execution_options(synchronize_session=False))
    if opened:
        stmt: Any = insert_for(session, WebhookWatch.__table__)  # type: ignore[arg-type]
        session.execute(stmt.on_conflict_do_nothing(), [
            {"partner_id": p, "about": a, "subject_bidx": b, "created_at": now}
            for (p, a), b in opened.items()])
    outbox.mark_published(session, [e.id for e in events], now)
    session.flush()
    log.info("webhook events dispatched", extra={
        "event": "webhook_dispatch", "outbox_events": len(events), "feed_events": len(feed),
        "deliveries": len(deliveries)})
    return len(events)
