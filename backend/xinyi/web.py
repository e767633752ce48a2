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
import marshmallow as ma
from flask import current_app, g, request
from flask_smorest.arguments import ArgumentsMixin
from marshmallow import missing
from sqlalchemy.orm import Session
from webargs.flaskparser import FlaskParser, is_json_request

from xinyi.auth import service as auth_service
from xinyi.auth.principal import Principal
from xinyi.deps import Deps
from xinyi.errors import DomainError, Forbidden, MalformedJson, NotJson
from xinyi.uow import UnitOfWork

F = TypeVar("F", bound=Callable[..., Any])
ACCESS_ATTR = "_xinyi_access"


class _Parser(FlaskParser):
    """A JSON body that does not parse is a 400 saying where (never echoing the body); JSON
    nested too deeply or with a number too long for the decoder too, not a 500. A body sent
    without a JSON content type is a 415 saying so, not "missing" for every field. Unknown
    query parameters are an error like unknown body fields (the schema's ``unknown``)."""

    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {  # noqa: RUF012 - webargs API
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}

    def __init__(self) -> None:
        super().__init__()
        self._schemas: dict[type[ma.Schema], ma.Schema] = {}

    def _get_schema(self, argmap: Any, req: flask.Request) -> ma.Schema:
        """One instance per schema class for the process, where webargs would build one per
        request (a tenth of a cheap request's CPU). Sharing is safe: marshmallow 4 schemas
        keep no state between loads (no ``context``), and ours set nothing on ``self``."""
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            schema = self._schemas.get(argmap)
            if schema is None:
                schema = self._schemas.setdefault(argmap, argmap())
            return schema
        return super()._get_schema(argmap, req)

    def _raw_load_json(self, req: flask.Request) -> Any:
        if req.content_length is None and req.max_content_length is not None:
            # A body without a length (chunked) is read up to the limit and cut there: a read
            # past it tells a body too large (413) from one that is not JSON.
            req.get_data(cache=True)
            req.stream.read(1)
        body = req.get_data(cache=True)
        if not body:  # no body at all: the schema's defaults or its "missing" apply
            return missing
        if not is_json_request(req):
            raise NotJson()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJson(f"The body is not UTF-8: byte {exc.start + 1} cannot be "
                                "decoded") from None
        try:
            return json.loads(text)
        except RecursionError:
            raise MalformedJson("The JSON is nested too deeply") from None
        except json.JSONDecodeError as exc:
            # The decoder's messages are fixed phrases ("Expecting value"); none quotes input.
            raise MalformedJson(f"The body is not valid JSON: {exc.msg} at line {exc.lineno}, "
                                f"column {exc.colno}") from None
        except ValueError:
            # An integer literal past Python's int-conversion limit (4300 digits).
            raise MalformedJson("A number in the JSON body is too long") from None


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
        with UnitOfWork(deps().db.sessions) as uow:
            g.uow = uow
            try:
                result = func(*args, **kwargs)
                uow.commit()
            except DomainError as exc:
                if exc.keeps_work:
                    uow.commit()
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
