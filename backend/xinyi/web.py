"""Flask glue shared by every blueprint: the request's session, principal and access rules.

Every view declares who may call it with :func:`requires` or :func:`public`; the role × route
test reads the URL map and fails for a route that declares neither.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

import flask
from flask import current_app, g, request
from flask_smorest.arguments import ArgumentsMixin
from sqlalchemy.orm import Session
from webargs.flaskparser import FlaskParser

from xinyi.auth import service as auth_service
from xinyi.auth.principal import Principal
from xinyi.deps import Deps
from xinyi.errors import DomainError, Forbidden
from xinyi.uow import UnitOfWork

F = TypeVar("F", bound=Callable[..., Any])
ACCESS_ATTR = "_xinyi_access"


class _Parser(FlaskParser):
    """JSON nested too deeply or with a number too long for the decoder is malformed input
    (400), not a 500; unknown query parameters are an error like unknown body fields (the
    schema's ``unknown``)."""

    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {  # noqa: RUF012 - webargs API
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}

    def _raw_load_json(self, req: flask.Request) -> Any:
        if req.content_length is None and req.max_content_length is not None:
            # A body without a length (chunked) is read up to the limit and cut there: a read
            # past it tells a body too large (413) from one that is not JSON.
            req.get_data(cache=True)
            req.stream.read(1)
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            raise json.JSONDecodeError("JSON nested too deeply", "-", 0) from None
        except json.JSONDecodeError:
            raise
        except ValueError:
            # An integer literal past Python's int-conversion limit (4300 digits).
            raise json.JSONDecodeError("JSON number too long", "-", 0) from None


# Every blueprint's @arguments binds this parser when its module is imported, and every
# routes module imports this one first (for ``requires``/``public``).
ArgumentsMixin.ARGUMENTS_PARSER = _Parser()


def deps() -> Deps:
    return cast(Deps, current_app.extensions["xinyi"])


def unit() -> UnitOfWork:
    """The request's unit of work, opened by :func:`requires` or :func:`public`."""
    current = g.get("uow")
    if current is None:
        raise RuntimeError("no unit of work: the view lacks @requires or @public")
    return cast(UnitOfWork, current)


def db() -> Session:
    return unit().session


def _in_unit(func: F) -> F:
    """Run the view in a unit of work of its own: committed when the view returns, rolled back
    when it raises, except for a refusal that keeps its work (``DomainError.keeps_work``, e.g. a
    login family revoked on refresh-token reuse)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with UnitOfWork(deps().db.sessions) as work:
            g.uow = work
            try:
                result = func(*args, **kwargs)
                work.commit()
            except DomainError as exc:
                if exc.keeps_work:
                    work.commit()
                raise
            finally:
                g.pop("uow", None)
            return result

    return cast(F, wrapper)


def principal() -> Principal:
    return cast(Principal, g.principal)


def client_address() -> str:
    return request.remote_addr or "unknown"


def _security_doc(func: Any, schemes: list[str]) -> None:
    apidoc = func.__dict__.setdefault("_apidoc", {})
    manual = apidoc.setdefault("manual_doc", {})
    manual["security"] = [{name: []} for name in schemes]


def requires(*kinds: str) -> Callable[[F], F]:
    """Only these principal kinds: ``citizen``, a staff role, ``partner``, ``org``, ``provider``."""

    allowed = frozenset(kinds)

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            who = auth_service.authenticate(db(), deps(), request.headers.get("Authorization"))
            if who.kind not in allowed:
                raise Forbidden()
            g.principal = who
            return func(*args, **kwargs)

        guarded = _in_unit(wrapper)
        setattr(guarded, ACCESS_ATTR, allowed)
        uses_keys = bool(allowed & {"partner", "org", "provider"})
        uses_jwt = bool(allowed - {"partner", "org", "provider"})
        _security_doc(guarded, [s for s, on in (("bearerJWT", uses_jwt),
                                                 ("apiKey", uses_keys)) if on])
        return cast(F, guarded)

    return decorate


def public(func: F) -> F:
    wrapped = _in_unit(func)
    setattr(wrapped, ACCESS_ATTR, frozenset({"anyone"}))
    return wrapped
