"""The app factory: ``create_app(settings)`` builds everything; importing does nothing."""

from __future__ import annotations

import logging
import os
import secrets
import time
from typing import Any

from apispec import BasePlugin
from apispec.core import APISpec
from flask import Flask, Response, g, request
from flask_smorest import Api
from flask_smorest.spec import prepare_response
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix

from xinyi import __version__, apidocs
from xinyi.config import Settings, load_settings
from xinyi.deps import Deps
from xinyi.errors import PROBLEM_MIME, DomainError, field_errors, problem
from xinyi.logs import configure_logging, failure, request_id
from xinyi.schemas import ProblemSchema
from xinyi.wiring import build_deps

log = logging.getLogger(__name__)

TITLE = "xinyi+ (信易+) API"


class XinyiApi(Api):  # type: ignore[misc]
    """flask-smorest with errors documented and served as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        import http

        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MIME)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Error (RFC 9457 problem details)", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_MIME)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)

    def handle_http_exception(self, error: HTTPException) -> Response:
        return problem_response(http_problem(error))


class _SchemaExtras(BasePlugin):
    """Adds a schema's ``JSON_SCHEMA_EXTRA`` (see StrictSchema) to its component."""

    def schema_helper(self, name: str, definition: dict[str, Any],
                      **kwargs: Any) -> dict[str, Any] | None:
        schema = kwargs.get("schema")
        extra = getattr(schema if isinstance(schema, type) else type(schema),
                        "JSON_SCHEMA_EXTRA", None)
        return dict(extra) if extra else None


def http_problem(error: HTTPException) -> DomainError:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") or data.get("errors")
    code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
            413: "payload_too_large", 415: "unsupported_media_type",
            422: "validation_error"}.get(status, "http_error")
    if status == 400 and messages:
        code = "malformed_request"
    # werkzeug's own headers stay (Allow on a 405, RFC 9110 §15.5.6), not its HTML type.
    headers = {name: value for name, value in error.get_headers()
               if name.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    err = DomainError(error.description if status < 500 else "Internal error",
                      errors=field_errors(messages) if isinstance(messages, dict) else None,
                      headers=headers)
    err.status, err.code, err.title = status, code, error.name  # type: ignore[misc]
    if status == 422:
        err.detail = "Some fields are not valid: " + ", ".join(
            sorted({e["field"] for e in err.errors or []}))
    return err


def problem_response(err: DomainError) -> Response:
    import json

    body = problem(err.status, err.code, err.title, err.detail, err.errors)
    resp = Response(json.dumps(body, ensure_ascii=False), status=err.status,
                    mimetype=PROBLEM_MIME)
    for name, value in err.headers.items():
        resp.headers[name] = value
    return resp


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _install_hooks(app: Flask) -> None:
    from xinyi.ops.routes import LATENCY, REQUESTS

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        rid = incoming if incoming.isalnum() and len(incoming) <= 64 else secrets.token_hex(8)
        g.request_id = rid
        g.token = request_id.set(rid)
        g.started = time.perf_counter()

    @app.after_request
    def _finish(resp: Response) -> Response:
        h = resp.headers
        h["X-Request-Id"] = g.get("request_id", "")
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if request.path.startswith("/docs"):
            h.setdefault("Content-Security-Policy", apidocs.CONTENT_SECURITY_POLICY)
        else:
            h.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        # Personal data must never sit in a shared cache; public documents opt in explicitly.
        h.setdefault("Cache-Control", "no-store")
        if app.config["XINYI_SETTINGS"].is_production:
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        else:  # which worker process answered: tests of per-process caches need to know
            h["X-Xinyi-Worker"] = str(os.getpid())
        # Label values are bounded: the route's pattern (never the path, which holds ids) and
        # a known method (a client may send any token as one).
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        method = request.method if request.method in HTTP_METHODS else "other"
        REQUESTS.labels(method, endpoint, str(resp.status_code)).inc()
        if "started" in g:
            LATENCY.labels(method, endpoint).observe(time.perf_counter() - g.started)
        return resp

    @app.teardown_request
    def _teardown(exc: BaseException | None) -> None:
        token = g.pop("token", None)
        if token is not None:
            request_id.reset(token)

    @app.errorhandler(DomainError)
    def _domain(err: DomainError) -> Response:
        return problem_response(err)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        if isinstance(err, HTTPException):
            return problem_response(http_problem(err))
        # Type, causes and frames only (see logs.failure); the request id joins the record,
        # and the client gets it in X-Request-Id to quote.
        log.error("unhandled error %s", type(err).__name__,
                  extra={"event": "unhandled", **failure(err)})
        return problem_response(http_problem(InternalServerError()))


def create_app(settings: Settings | None = None, deps: Deps | None = None) -> Flask:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    app = Flask("xinyi", static_folder=None)
    app.config.update(
        XINYI_SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_TITLE=TITLE,
        API_VERSION=__version__,
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_SORT_KEYS=False,
        **apidocs.SETTINGS,
    )
    if settings.trust_proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trust_proxy_hops)  # type: ignore[method-assign]
    app.extensions["xinyi"] = deps or build_deps(settings)
    # Extra plugins run after marshmallow's, which builds the schema _SchemaExtras extends.
    api = XinyiApi(app, spec_kwargs={
        "extra_plugins": [_SchemaExtras()],
        "info": {"description": "Citizen honesty-card backend. Errors are RFC 9457 problem "
                               "details with a stable `code`."},
    })
    spec: APISpec = api.spec
    spec.components.security_scheme(
        "bearerJWT", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    spec.components.security_scheme(
        "apiKey", {"type": "http", "scheme": "bearer",
                   "description": "API key `xyk_<id>_<secret>` for partners, orgs, providers"})

    # Every routes module is imported before any blueprint is registered: citizens.routes
    # adds POST /v1/auth/register to auth_blp (citizens depends on auth, not the reverse).
    from xinyi.adapters.routes import blueprints as adapter_blueprints
    from xinyi.admin.routes import blp as admin_blp
    from xinyi.alerts.routes import blp as alerts_blp
    from xinyi.attachments import routes as attachments
    from xinyi.audit.routes import me_blp as queries_blp
    from xinyi.audit.routes import transparency_blp
    from xinyi.auth.routes import blp as auth_blp
    from xinyi.benefits import routes as benefits
    from xinyi.citizens.routes import blp as me_blp
    from xinyi.commitments import routes as commitments
    from xinyi.consents import routes as consents
    from xinyi.credentials import routes as credentials
    from xinyi.decisions import routes as decisions
    from xinyi.disputes import routes as disputes
    from xinyi.exports import routes as exports
    from xinyi.notifications.routes import blp as notifications_blp
    from xinyi.ops.routes import blp as ops_blp
    from xinyi.privacy import routes as privacy_routes  # noqa: F401 - DELETE /v1/me on me_blp
    from xinyi.records import routes as records
    from xinyi.repairs import routes as repairs
    from xinyi.reports import routes as reports
    from xinyi.scoring.routes import blp as scoring_blp
    from xinyi.stats.routes import blp as stats_blp
    from xinyi.volunteering import routes as volunteering
    from xinyi.webhooks import delivery_routes as webhook_deliveries
    from xinyi.webhooks import routes as webhooks
    from xinyi.webhooks.docs import webhooks_section
    from xinyi.workdays.routes import blp as calendar_blp

    for blp in (ops_blp, auth_blp, me_blp, records.me_blp, scoring_blp, records.catalog_blp,
                records.provider_blp, credentials.me_blp, credentials.partner_blp,
                credentials.jwks_blp, admin_blp, records.admin_blp, consents.me_blp,
                consents.partner_blp, consents.directory_blp, queries_blp, notifications_blp,
                benefits.partner_blp, benefits.me_blp, benefits.admin_blp,
                webhooks.partner_blp, webhooks.catalogue_blp, webhook_deliveries.partner_blp,
                webhook_deliveries.admin_blp, *adapter_blueprints(),
                volunteering.org_blp, volunteering.me_blp, repairs.me_blp, repairs.admin_blp,
                disputes.me_blp, disputes.provider_blp, disputes.admin_blp, attachments.me_blp,
                attachments.admin_blp, attachments.provider_blp, calendar_blp, alerts_blp,
                exports.me_blp, exports.schema_blp,
                commitments.texts_blp, commitments.me_blp, commitments.provider_blp,
                commitments.admin_blp, reports.me_blp, reports.admin_blp,
                reports.provider_blp, stats_blp, decisions.me_blp, decisions.admin_blp,
                transparency_blp):
        api.register_blueprint(blp)
    # OpenAPI 3.1 ``webhooks``: what partners receive, one entry per catalogue type.
    spec.options["webhooks"] = webhooks_section()
    apidocs.install(app)
    _install_hooks(app)
    return app
