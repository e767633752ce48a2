"""The event catalogue: every public event type, its version and the schema of its ``data``.

The dispatcher turns an internal outbox topic into a public type with this table, and the
same table documents the types (``GET /v1/webhook-event-types``, the OpenAPI ``webhooks``
section, partners/README.md). It is a plain declarative tuple, so that a new domain adds its
types by appending entries — nothing else changes:

* ``name``: the public type (``benefit_session.opened``); ``version``: bumped when ``data``
  changes incompatibly (receivers see it in every message);
* ``schema``: a marshmallow schema of ``data``. The dispatcher *dumps* the internal payload
  through it, so only the fields declared here ever leave (an internal field cannot leak);
  declare ``subject`` on a type about a citizen: the dispatcher fills it with the receiving
  partner's pseudonym;
* ``topic``: the internal outbox topic it comes from, and ``match``: payload values that
  select this type when one topic maps to several (``list.entered`` with ``list == "red"``
  is ``list.red_added``). A type with ``topic=None`` is written by the webhooks domain itself;
* ``carries_data``: the event tells a partner something about a citizen (tier, list status,
  a record): it is a read, registered in the citizen's access log like a report read;
* ``watch``: ``("open" | "close", "list:{record_id}")``. A partner told that an entry opened
  is told when it closes, even if its consent has since ended.

Who receives an event is decided by the outbox row, not here: ``partner_id`` (the one
partner it concerns) or ``subject_bidx`` (partners with a live consent for the citizen);
a ``broadcast`` type with neither goes to every partner whose endpoint names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from marshmallow import Schema, fields

from xinyi.adapters.events import CATALOGUE as KIND_EVENTS
from xinyi.benefits.events import EVENT_TYPES as SESSION_EVENTS

TIERS = ("AAA", "AA", "A", "B", "C")


class _Data(Schema):
    """Base of every ``data`` schema (dump only: these describe what we send)."""


class _SubjectData(_Data):
    subject = fields.String(required=True, metadata={
        "description": "Your pseudonym for the citizen (`ps_…`), as in verifications"})


class TestData(_Data):
    endpoint_id = fields.UUID(required=True, metadata={
        "description": "The endpoint this test was sent to (it alone receives it)"})


class EndpointDisabledData(_Data):
    endpoint_id = fields.UUID(required=True, metadata={"description": "The disabled endpoint"})
    reason = fields.String(required=True, metadata={
        "description": "`gone` (it answered 410) or `failing` (every attempt failed for 5 "
                       "days); its events are kept and sent once it is enabled again"})
    disabled_at = fields.String(required=True, metadata={"format": "date-time"})


class ConsentGrantedData(_SubjectData):
    consent_id = fields.UUID(required=True)
    scope = fields.String(required=True)
    granted_at = fields.String(required=True, metadata={"format": "date-time"})
    expires_at = fields.String(required=True, metadata={"format": "date-time"})
    request_id = fields.UUID(allow_none=True, metadata={
        "description": "Your consent request it answers; null for a direct grant"})


class ConsentRevokedData(_SubjectData):
    consent_id = fields.UUID(required=True)
    scope = fields.String(required=True)
    revoked_at = fields.String(required=True, metadata={"format": "date-time"})


class TierChangedData(_SubjectData):
    from_ = fields.String(required=True, data_key="from", attribute="from", metadata={
        "enum": list(TIERS), "description": "The tier before the change"})
    to = fields.String(required=True, metadata={"enum": list(TIERS)})


class ListAddedData(_SubjectData):
    record_id = fields.UUID(required=True, metadata={
        "description": "The record behind the entry; its removal names the same id"})
    catalogue_code = fields.String(required=True)


class ListRemovedData(ListAddedData):
    reason = fields.String(required=True, metadata={
        "description": "`expired` (display period over), `repaired`, `corrected`, "
                       "`withdrawn` (by the data provider)"})


class RecordData(_SubjectData):
    record_id = fields.UUID(required=True)
    catalogue_code = fields.String(required=True)


class TreeHeadData(_Data):
    tree_size = fields.Integer(required=True, metadata={
        "description": "Access-log entries in the tree"})
    root_hash = fields.String(required=True, metadata={
        "description": "The tree's RFC 9162 root (SHA-256, hex)"})
    timestamp = fields.Integer(required=True, metadata={
        "description": "When it was signed, milliseconds since 1970-01-01 UTC"})
    kid = fields.String(required=True, metadata={
        "description": "The audit key that signed (its JWK: GET /v1/transparency/tree-head)"})
    signature = fields.String(required=True, metadata={
        "description": "Ed25519 (hex) over the compact JSON {root_hash, timestamp, "
                       "tree_size}, keys sorted; `xinyi_partner.verify_tree_head` checks it"})


@dataclass(frozen=True)
class EventType:
    name: str
    version: int
    schema: type[Schema]
    description: str
    topic: str | None
    match: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    carries_data: bool = False
    watch: tuple[str, str] | None = None
    # About no citizen and no one partner: every partner with an endpoint that names this
    # type in its ``event_types`` receives it.
    broadcast: bool = False


_LIST = "list:{record_id}"

EVENT_TYPES: tuple[EventType, ...] = (
    EventType("webhook.test", 1, TestData,
              "Sent by `POST /v1/partner/webhook-endpoints/{id}/test` to that endpoint only.",
              topic="webhook.test"),
    EventType("endpoint.disabled", 1, EndpointDisabledData,
              "One of your endpoints was disabled; sent to your other endpoints.",
              topic="endpoint.disabled"),
    EventType("consent.granted", 1, ConsentGrantedData,
              "A citizen granted you a consent (from your request or directly).",
              topic="consent.granted"),
    EventType("consent.revoked", 1, ConsentRevokedData,
              "A citizen revoked a consent they had granted you.", topic="consent.revoked"),
    EventType("citizen.tier_changed", 1, TierChangedData,
              "The credit tier of a citizen you hold a live consent for changed.",
              topic="citizen.tier_changed", carries_data=True),
    EventType("list.red_added", 1, ListAddedData,
              "A citizen you hold a live consent for entered the red list (守信红名单).",
              topic="list.entered", match=MappingProxyType({"list": "red"}),
              carries_data=True, watch=("open", _LIST)),
    EventType("list.red_removed", 1, ListRemovedData,
              "A red-list entry you were told of ended.",
              topic="list.left", match=MappingProxyType({"list": "red"}),
              carries_data=True, watch=("close", _LIST)),
    EventType("list.black_added", 1, ListAddedData,
              "Early warning: a citizen you hold a live consent for entered the black list "
              "(失信黑名单, always with a legal basis).",
              topic="list.entered", match=MappingProxyType({"list": "black"}),
              carries_data=True, watch=("open", _LIST)),
    EventType("list.black_removed", 1, ListRemovedData,
              "A black-list entry you were told of ended (sent even if your consent ended).",
              topic="list.left", match=MappingProxyType({"list": "black"}),
              carries_data=True, watch=("close", _LIST)),
    EventType("record.corrected", 1, RecordData,
              "A data provider corrected a record of a citizen you hold a live consent for "
              "(更正).", topic="record.corrected", carries_data=True),
    EventType("record.repaired", 1, RecordData,
              "A record of a citizen you hold a live consent for was repaired (信用修复): "
              "it is archived and no longer counts.", topic="record.repaired",
              carries_data=True),
    EventType("transparency.tree_head", 1, TreeHeadData,
              "Hourly, the latest signed head of the access log's Merkle tree (no personal "
              "data), to every partner whose endpoint names this type: keep it, and check "
              "later heads against it with `GET /v1/transparency/consistency` "
              "(docs/access-log.md).", topic="transparency.tree_head", broadcast=True),
)



def _session_types() -> tuple[EventType, ...]:
    """The benefit sessions' types: each partner kind's own words first (selected by the
    session's ``kind``), then the generic ``benefit_session.*`` for every other kind."""
    kinds = tuple(EventType(e.name, e.version, e.schema, e.description, topic=e.topic,
                            match=MappingProxyType(dict(e.match))) for e in KIND_EVENTS)
    generic = tuple(EventType(e.name, e.version, e.schema, e.description, topic=e.topic)
                    for e in SESSION_EVENTS)
    return kinds + generic


EVENT_TYPES = EVENT_TYPES + _session_types()

BY_NAME: Mapping[str, EventType] = MappingProxyType({t.name: t for t in EVENT_TYPES})


def _by_topic() -> dict[str, list[EventType]]:
    out: dict[str, list[EventType]] = {}
    for entry in EVENT_TYPES:
        if entry.topic is not None:
            out.setdefault(entry.topic, []).append(entry)
    return out


_BY_TOPIC = _by_topic()


def for_topic(topic: str, payload: Mapping[str, Any]) -> EventType | None:
    """The public type of an internal event; None: internal only (no partner hears of it)."""
    for entry in _BY_TOPIC.get(topic, ()):
        if all(payload.get(k) == v for k, v in entry.match.items()):
            return entry
    return None


_DUMPERS: dict[str, Schema] = {}


def public_data(entry: EventType, payload: Mapping[str, Any],
                subject: str | None) -> dict[str, Any]:
    """The ``data`` a partner receives: only the fields the type declares, plus its pseudonym
    for the citizen when the type has a subject."""
    dumper = _DUMPERS.get(entry.name)
    if dumper is None:
        dumper = _DUMPERS[entry.name] = entry.schema()
    source = dict(payload)
    if subject is not None:
        source["subject"] = subject
    data: dict[str, Any] = dumper.dump(source)
    return data


def has_subject(entry: EventType) -> bool:
    return "subject" in entry.schema._declared_fields


def watch_key(entry: EventType, payload: Mapping[str, Any]) -> str | None:
    if entry.watch is None:
        return None
    return entry.watch[1].format_map(dict(payload))


def unknown_types(names: list[str]) -> list[str]:
    return [n for n in names if n not in BY_NAME]
