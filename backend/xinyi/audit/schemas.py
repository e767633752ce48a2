from __future__ import annotations

from marshmallow import Schema, fields, validate

from xinyi.audit.service import ACTOR_TYPES
from xinyi.schemas import PageMeta, StrictSchema

_HEX_HASH = "SHA-256, 64 lowercase hex digits"


class ActorOut(Schema):
    type = fields.String(required=True, validate=validate.OneOf(ACTOR_TYPES))
    name = fields.String(required=True)


class QueryOut(Schema):
    """One read of the citizen's data by someone else (查询记录)."""

    id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("sealed", "pending")),
                           metadata={"description": "`pending` until the sealer has given "
                                     "the entry its place (seconds): it then has `seq`, "
                                     "`prev_hash`, `hash` and `leaf_index`"})
    seq = fields.Integer(required=True, allow_none=True, metadata={
        "description": "Position in the citizen's tamper-evident chain (null while pending)"})
    at = fields.DateTime(required=True)
    who = fields.Nested(ActorOut, required=True)
    action = fields.String(required=True)
    scope = fields.String(required=True)
    consent_id = fields.UUID(allow_none=True)
    purpose = fields.String(required=True)
    actor_id = fields.String(required=True, metadata={
        "description": "The reader's id as this entry recorded it (an API client's or a staff "
                       "account's id); the entry's hash covers it"})
    prev_hash = fields.String(required=True, allow_none=True, metadata={
        "description": f"The hash of the entry before this one ({_HEX_HASH}; 64 zeros for "
                       "the first entry)"})
    hash = fields.String(required=True, allow_none=True, metadata={
        "description": f"This entry's hash ({_HEX_HASH}); docs/access-log.md says how to "
                       "recompute it"})
    leaf_index = fields.Integer(required=True, allow_none=True, metadata={
        "description": "The entry's leaf in the log-wide Merkle tree (null while pending)"})


class ChainHeadOut(Schema):
    """The last entry of the citizen's chain, to check a copy of the log against."""

    subject = fields.String(required=True, metadata={
        "description": "The chain's subject as the hash formula uses it (hex): an opaque "
                       "keyed index, not the ID number"})
    seq = fields.Integer(required=True, metadata={
        "description": "The last entry's seq (0 while the log is empty)"})
    hash = fields.String(required=True, metadata={
        "description": f"The last entry's hash ({_HEX_HASH}; 64 zeros while the log is "
                       "empty)"})


class QueryPage(Schema):
    """A page of the citizen's access log, with the head of the chain it belongs to."""

    items = fields.List(fields.Nested(QueryOut), required=True)
    meta = fields.Nested(PageMeta, required=True)
    chain = fields.Nested(ChainHeadOut, required=True)



class TreeHeadOut(Schema):
    """A signed tree head of the log-wide Merkle tree (RFC 9162 §2.1 hashing)."""

    tree_size = fields.Integer(required=True, metadata={"description": "Leaves in the tree"})
    root_hash = fields.String(required=True, metadata={"description": f"MTH ({_HEX_HASH})"})
    timestamp = fields.Integer(required=True, metadata={
        "description": "When it was signed, milliseconds since 1970-01-01 UTC"})
    kid = fields.String(required=True, metadata={"description": "The audit key that signed"})
    signature = fields.String(required=True, metadata={
        "description": "Ed25519 signature (hex) over the compact JSON "
                       "`{\"root_hash\":…,\"timestamp\":…,\"tree_size\":…}` (keys sorted)"})


class SignedTreeHeadOut(TreeHeadOut):
    public_jwk = fields.Dict(required=True, metadata={
        "description": "The audit key `kid` as a public JWK (OKP, Ed25519)"})


class TreeHeadPage(Schema):
    items = fields.List(fields.Nested(TreeHeadOut), required=True)
    meta = fields.Nested(PageMeta, required=True)


class ConsistencyArgs(StrictSchema):
    from_ = fields.Integer(required=True, data_key="from", validate=validate.Range(min=1),
                           metadata={"description": "The older signed tree size"})
    to = fields.Integer(required=True, validate=validate.Range(min=1),
                        metadata={"description": "The newer signed tree size"})


class ConsistencyOut(Schema):
    from_ = fields.Nested(TreeHeadOut, required=True, data_key="from", attribute="from")
    to = fields.Nested(TreeHeadOut, required=True)
    proof = fields.List(fields.String(), required=True, metadata={
        "description": "RFC 9162 §2.1.4 consistency proof, hex hashes"})


class EntryProofOut(Schema):
    """The inclusion proof of one entry of the citizen's log (RFC 9162 §2.1.3)."""

    entry_id = fields.UUID(required=True)
    seq = fields.Integer(required=True)
    leaf_index = fields.Integer(required=True)
    tree_size = fields.Integer(required=True)
    prev_hash = fields.String(required=True)
    hash = fields.String(required=True)
    entry = fields.String(required=True, metadata={
        "description": "The entry's canonical JSON: the leaf is SHA-256(0x00 ‖ prev_hash "
                       "bytes ‖ UTF-8 of this)"})
    audit_path = fields.List(fields.String(), required=True)
    tree_head = fields.Nested(TreeHeadOut, required=True)


