"""``/v1/adapters/<kind>/…``: one blueprint per kind, built from the registry.

Each route parses, hands the call to the kind's operation through :func:`base.write` (or
:func:`base.read`) and returns its answer; the rules live in the kind modules. Only API keys
of a partner of that kind may call a kind's routes (another kind: 403
``partner_kind_mismatch``).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from flask_smorest import Blueprint

from xinyi.adapters import base
from xinyi.adapters.registry import KINDS
from xinyi.credentials.schemas import IdempotencyHeaders
from xinyi.web import db, deps, principal, requires


def _call(headers: dict[str, Any] | None = None) -> base.Call:
    return base.Call(db(), deps(), principal(),
                     (headers or {}).get("idempotency_key"))


def _of_kind(spec: base.KindSpec, view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse a partner of another kind before its body is even read (403, not a 422 about
    fields of a kind it does not use)."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        base.check_kind(spec, principal())
        return view(*args, **kwargs)

    return checked


def _write_view(spec: base.KindSpec, op: base.Operation) -> Callable[..., Any]:
    if op.opens is not None:
        def opens(headers: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
            return base.write(_call(headers), spec, op, body)
        return opens

    def acts(headers: dict[str, Any], body: dict[str, Any],
             record_id: uuid.UUID) -> dict[str, Any]:
        return base.write(_call(headers), spec, op, body, record_id)
    return acts


def _blueprint(spec: base.KindSpec) -> Blueprint:
    blp = Blueprint(f"adapter_{spec.kind}", __name__,
                    url_prefix=f"/v1/adapters/{spec.kind}", description=spec.description)
    for op in spec.operations:
        view = _write_view(spec, op)
        view.__doc__ = (f"{op.summary}. Idempotency-Key: the same key and body get the "
                        "stored answer, the same key with another body a 422.")
        decorated = blp.response(op.status, spec.answer)(view)
        # A body of optional fields only may be left out (webargs reads none as {}).
        needed = any(f.required for f in op.body._declared_fields.values())
        decorated = blp.arguments(op.body, required=needed)(decorated)
        decorated = blp.arguments(IdempotencyHeaders, location="headers")(decorated)
        decorated = requires("partner")(_of_kind(spec, decorated))
        blp.route(f"/{spec.noun}{op.path}", methods=["POST"],
                  endpoint=f"{spec.noun}_{op.name}")(decorated)

    def get(record_id: uuid.UUID) -> dict[str, Any]:
        return base.read(_call(), spec, record_id)

    get.__doc__ = f"One of your {spec.noun}, with its session's current state."
    decorated = requires("partner")(_of_kind(spec, blp.response(200, spec.answer)(get)))
    blp.route(f"/{spec.noun}/<uuid:record_id>", methods=["GET"],
              endpoint=f"{spec.noun}_get")(decorated)
    return blp


def blueprints() -> list[Blueprint]:
    return [_blueprint(spec) for spec in KINDS.values()]
