"""RFC 9457 ``application/problem+json`` for every error, with a stable ``code``.

Services raise :class:`DomainError` subclasses; they never import Flask. One handler in the app
turns them, werkzeug's HTTP errors and webargs validation failures into problem documents.
Details never echo submitted values, so personal data cannot leak through an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

PROBLEM_MIME = "application/problem+json"
TYPE_BASE = "https://xinyi.example.gov.cn/problems/"


class DomainError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"
    # A refusal whose work must still be committed (what led to it is part of the record).
    keeps_work: ClassVar[bool] = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = dict(headers or {})

    def to_problem(self) -> dict[str, Any]:
        return problem(self.status, self.code, self.title, self.detail, self.errors)


def problem(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "code": code,
        "detail": detail or title,
    }
    if errors:
        body["errors"] = errors
    return body


def _field_error(field: str, location: str, messages: list[str]) -> dict[str, Any]:
    """One entry of a problem's ``errors`` (``ProblemFieldSchema``)."""
    return {"field": field, "location": location, "messages": messages}


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"
    title = "The request is not valid"

    @classmethod
    def at(cls, field: str, message: str, *more: tuple[str, str], location: str = "json",
           detail: str | None = None) -> Self:
        """The error naming what is wrong where, in the same ``[{field, location, messages}]``
        shape as a schema's refusal, so a client handles both alike. Each ``(field, message)``
        pair is one entry; ``detail`` defaults to the title."""
        return cls(detail, errors=[_field_error(f, location, [m])
                                   for f, m in [(field, message), *more]])


class MalformedJson(DomainError):
    """A body sent as JSON that does not parse. The detail says where (line and column), in
    the decoder's own fixed words; it never repeats the body."""

    status = 400
    code = "malformed_request"
    title = "The request body is not valid JSON"


class NotJson(DomainError):
    """A body sent without a JSON content type: without this, the schema would see no body
    and call every field missing."""

    status = 415
    code = "unsupported_media_type"
    title = "Send Content-Type: application/json"

    def __init__(self) -> None:
        super().__init__("This endpoint takes a JSON body: send Content-Type: application/json")


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    title = "Authentication is required"

    def __init__(self, detail: str | None = None) -> None:
        # The same body for every cause: an attacker learns nothing from which check failed.
        super().__init__(
            "Missing, invalid or expired credentials",
            headers={"WWW-Authenticate": 'Bearer realm="xinyi"'},
        )
        del detail


class InvalidLogin(DomainError):
    status = 401
    code = "invalid_credentials"
    title = "Phone number or password is wrong"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "This principal may not do that"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflicts with the current state"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    title = "Too many attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Try again in {retry_after} seconds", headers={"Retry-After": str(retry_after)}
        )
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    """A store the request needs (Redis) is unreachable. Nothing was done, so the whole
    request may be retried; refusing is the safe side (no rate limit means no login)."""

    status = 503
    code = "service_unavailable"
    title = "A service this request needs is unavailable, try again shortly"

    def __init__(self, retry_after: int = 5) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)})


_LOCATIONS = ("json", "query", "headers", "form", "files", "view_args")


def field_errors(messages: Mapping[str, Any], location: str | None = None) -> list[dict[str, Any]]:
    """Flatten marshmallow/webargs messages into ``[{field, location, messages}]``."""
    out: list[dict[str, Any]] = []

    def walk(node: Any, path: list[str], loc: str | None) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if loc is None and key in _LOCATIONS:
                    walk(value, path, str(key))
                else:
                    walk(value, [*path, str(key)], loc)
        elif isinstance(node, list) and all(isinstance(m, str) for m in node):
            out.append(_field_error(".".join(path) or "_body", loc or "json", list(node)))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, [*path, str(i)], loc)
        else:
            out.append(_field_error(".".join(path) or "_body", loc or "json", [str(node)]))

    walk(messages, [], location)
    return out
