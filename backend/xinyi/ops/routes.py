"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from xinyi.errors import DomainError
from xinyi.logs import failure
from xinyi.web import deps, public

log = logging.getLogger(__name__)
blp = Blueprint("ops", __name__, description="Operations")

REQUESTS = Counter("xinyi_http_requests", "HTTP requests", ["method", "endpoint", "status"])
LATENCY = Histogram("xinyi_http_request_seconds", "Request latency", ["method", "endpoint"],
                    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


class NotReady(DomainError):
    status = 503
    code = "not_ready"
    title = "A dependency is not reachable"


class StatusOut(Schema):
    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String())


@blp.route("/healthz", methods=["GET"])
@public
@blp.response(200, StatusOut)
def healthz() -> dict[str, Any]:
    """The process is up."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@public
@blp.response(200, StatusOut)
@blp.alt_response(503, schema=None, description="A dependency is down")
def readyz() -> dict[str, Any]:
    """The database and the key-value store answer."""
    checks: dict[str, str] = {}
    for name, probe in (("database", deps().db.ping), ("kv", deps().kv.ping)):
        try:
            probe()
            checks[name] = "ok"
        except Exception as err:
            # The type and where, never the message: a driver's error can quote a URL.
            log.error("readiness probe failed", extra={"event": "not_ready", "check": name,
                                                       **failure(err)})
            checks[name] = "down"
    if any(v != "ok" for v in checks.values()):
        raise NotReady(", ".join(f"{k} {v}" for k, v in checks.items()))
    return {"status": "ok", "checks": checks}


@blp.route("/metrics", methods=["GET"])
@public
@blp.response(200, content_type=CONTENT_TYPE_LATEST)
def metrics() -> Response:
    """Prometheus text exposition (all gunicorn workers when PROMETHEUS_MULTIPROC_DIR is set)."""
    registry: CollectorRegistry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
