"""Field errors raised by services have the shape of a schema's refusal."""

from __future__ import annotations

from xinyi.errors import ValidationFailed


class UnknownThing(ValidationFailed):
    code = "unknown_thing"
    title = "No thing has this id"


def test_at_names_the_field_and_location() -> None:
    error = UnknownThing.at("Idempotency-Key", "already used", location="headers")
    assert isinstance(error, UnknownThing)
    assert error.to_problem() == {
        "type": "https://xinyi.example.gov.cn/problems/unknown_thing",
        "title": "No thing has this id", "status": 422, "code": "unknown_thing",
        "detail": "No thing has this id",
        "errors": [{"field": "Idempotency-Key", "location": "headers",
                    "messages": ["already used"]}]}


def test_at_takes_several_pairs_each_its_own_entry() -> None:
    error = ValidationFailed.at("points", "must be positive", ("severity", "must be null"),
                                ("points", "again"), detail="inconsistent")
    assert error.detail == "inconsistent"
    assert error.errors == [
        {"field": "points", "location": "json", "messages": ["must be positive"]},
        {"field": "severity", "location": "json", "messages": ["must be null"]},
        {"field": "points", "location": "json", "messages": ["again"]}]


def test_credential_refusals_are_one_hierarchy_of_domain_errors() -> None:
    from xinyi.credentials import errors, tokens
    from xinyi.errors import Conflict, DomainError

    # What tokens.verify raises is what the API answers with: no translation in between.
    assert tokens.CredentialError is errors.CredentialError
    assert issubclass(errors.CredentialError, DomainError)
    answers = {cls: (cls.status, cls.code) for cls in (
        errors.CredentialError, errors.CredentialInvalid, errors.CredentialUnknownKey,
        errors.CredentialExpired, errors.CredentialNotYetValid, errors.CredentialUsed)}
    assert answers == {
        errors.CredentialError: (422, "credential_invalid"),
        errors.CredentialInvalid: (422, "credential_invalid"),
        errors.CredentialUnknownKey: (422, "credential_invalid"),
        errors.CredentialExpired: (422, "credential_expired"),
        errors.CredentialNotYetValid: (422, "credential_not_yet_valid"),
        errors.CredentialUsed: (409, "credential_used")}
    assert all(issubclass(cls, errors.CredentialError) for cls in answers)
    assert issubclass(errors.VerificationInProgress, Conflict)
    assert errors.VerificationInProgress().headers == {"Retry-After": "1"}
