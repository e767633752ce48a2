"""Role × route matrix: who may call what, written down once and checked against the code.

Every rule in the URL map must have an entry here (a new route fails until someone decides who
may call it), every entry must still exist, each view's declared access must equal its entry,
and every principal is actually sent to every route: refused principals get the uniform 401
(anonymous) or 403 (authenticated), allowed ones get past the gate.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import (
    api_client_headers,
    citizen_headers,
    make_settings,
    staff_headers,
)
from xinyi.app import create_app
from xinyi.auth import service as auth_service
from xinyi.errors import Unauthorized
from xinyi.web import ACCESS_ATTR

PUBLIC = "public"
PRINCIPALS = ("anonymous", "citizen", "operator", "reviewer", "auditor", "partner", "org",
              "provider")
STAFF = frozenset({"operator", "reviewer", "auditor"})
OPERATOR = frozenset({"operator"})
OPERATOR_OR_AUDITOR = frozenset({"operator", "auditor"})
PARTNER = frozenset({"partner"})
_ADAPTER = re.compile(r"^/v1/adapters/(?P<kind>[a-z]+)/")
REVIEWER = frozenset({"reviewer"})

# "METHOD /rule" exactly as Flask spells the rule → PUBLIC or the principals allowed.
MATRIX: dict[str, str | frozenset[str]] = {
    # Documentation: served by flask-smorest, so these two carry no access declaration.
    "GET /openapi.json": PUBLIC,
    "GET /docs": PUBLIC,
    "GET /docs/assets/<path:filename>": PUBLIC,
    # Operations.
    "GET /healthz": PUBLIC,
    "GET /readyz": PUBLIC,
    "GET /metrics": PUBLIC,
    # Login.
    "POST /v1/auth/register": PUBLIC,
    "POST /v1/auth/login": PUBLIC,
    "POST /v1/auth/refresh": PUBLIC,
    "POST /v1/auth/logout": frozenset({"citizen"}) | STAFF,
    # Public reference data and the credential verification key.
    "GET /v1/catalog": PUBLIC,
    "GET /v1/benefits": PUBLIC,
    "GET /v1/partners": PUBLIC,
    "GET /.well-known/jwks.json": PUBLIC,
    "GET /.well-known/xinyi-configuration": PUBLIC,
    # The access log's signed tree heads and consistency proofs (no personal data).
    "GET /v1/transparency/tree-head": PUBLIC,
    "GET /v1/transparency/tree-heads": PUBLIC,
    "GET /v1/transparency/consistency": PUBLIC,
    # The citizen's own data.
    "GET /v1/me": frozenset({"citizen"}),
    "DELETE /v1/me": frozenset({"citizen"}),
    "GET /v1/me/credit": frozenset({"citizen"}),
    "GET /v1/me/records": frozenset({"citizen"}),
    "GET /v1/me/queries": frozenset({"citizen"}),
    "GET /v1/me/queries/<uuid:entry_id>/proof": frozenset({"citizen"}),
    "POST /v1/me/credentials": frozenset({"citizen"}),
    "GET /v1/me/credentials/<string:credential_id>/qr.png": frozenset({"citizen"}),
    "GET /v1/me/credentials/<string:credential_id>/qr.svg": frozenset({"citizen"}),
    "GET /v1/me/consents": frozenset({"citizen"}),
    "POST /v1/me/consents": frozenset({"citizen"}),
    "GET /v1/me/notifications": frozenset({"citizen"}),
    "POST /v1/me/notifications/<uuid:notification_id>/read": frozenset({"citizen"}),
    "POST /v1/me/consents/<uuid:consent_id>/revoke": frozenset({"citizen"}),
    "POST /v1/me/consents:revoke-all": frozenset({"citizen"}),
    "GET /v1/me/consent-requests": frozenset({"citizen"}),
    "POST /v1/me/consent-requests/<uuid:request_id>/approve": frozenset({"citizen"}),
    "POST /v1/me/consent-requests/<uuid:request_id>/deny": frozenset({"citizen"}),
    # Partners: verification, consent requests and consented reports.
    "POST /v1/partner/verifications": frozenset({"partner"}),
    "POST /v1/partner/verifications:offline": frozenset({"partner"}),
    "POST /v1/partner/consent-requests": frozenset({"partner"}),
    "GET /v1/partner/consent-requests/<uuid:request_id>": frozenset({"partner"}),
    "GET /v1/partner/reports/<string:subject>": frozenset({"partner"}),
    # Partners: webhook endpoints and the event feed; the catalogue of event types is public.
    "POST /v1/partner/webhook-endpoints": frozenset({"partner"}),
    "GET /v1/partner/webhook-endpoints": frozenset({"partner"}),
    "GET /v1/partner/webhook-endpoints/<uuid:endpoint_id>": frozenset({"partner"}),
    "PATCH /v1/partner/webhook-endpoints/<uuid:endpoint_id>": frozenset({"partner"}),
    "DELETE /v1/partner/webhook-endpoints/<uuid:endpoint_id>": frozenset({"partner"}),
    "POST /v1/partner/webhook-endpoints/<uuid:endpoint_id>/rotate-secret": frozenset({"partner"}),
    "POST /v1/partner/webhook-endpoints/<uuid:endpoint_id>/test": frozenset({"partner"}),
    "POST /v1/partner/webhook-endpoints/<uuid:endpoint_id>/recover": frozenset({"partner"}),
    "GET /v1/partner/webhook-deliveries": frozenset({"partner"}),
    "POST /v1/partner/webhook-deliveries/<uuid:delivery_id>/replay": frozenset({"partner"}),
    "GET /v1/admin/webhook-dead-letters": frozenset({"operator"}),
    "GET /v1/partner/events": frozenset({"partner"}),
    "GET /v1/webhook-event-types": PUBLIC,
    # Partner-kind adapters: a partner of that kind (the matrix sends each kind's partner).
    "POST /v1/adapters/library/loans": PARTNER,
    "GET /v1/adapters/library/loans/<uuid:record_id>": PARTNER,
    "POST /v1/adapters/library/loans/<uuid:record_id>/returns": PARTNER,
    "POST /v1/adapters/library/loans/<uuid:record_id>/lost": PARTNER,
    "POST /v1/adapters/library/loans/<uuid:record_id>/settle": PARTNER,
    "POST /v1/adapters/bike/rides": PARTNER,
    "GET /v1/adapters/bike/rides/<uuid:record_id>": PARTNER,
    "POST /v1/adapters/bike/rides/<uuid:record_id>/lock": PARTNER,
    "POST /v1/adapters/bike/rides/<uuid:record_id>/settle": PARTNER,
    "POST /v1/adapters/hospital/encounters": PARTNER,
    "GET /v1/adapters/hospital/encounters/<uuid:record_id>": PARTNER,
    "POST /v1/adapters/hospital/encounters/<uuid:record_id>/bills": PARTNER,
    "POST /v1/adapters/hospital/encounters/<uuid:record_id>/settle": PARTNER,
    "POST /v1/adapters/hotel/stays": PARTNER,
    "GET /v1/adapters/hotel/stays/<uuid:record_id>": PARTNER,
    "POST /v1/adapters/hotel/stays/<uuid:record_id>/checkout": PARTNER,
    "POST /v1/adapters/hotel/stays/<uuid:record_id>/settle": PARTNER,
    "POST /v1/adapters/scenic/entries": PARTNER,
    "GET /v1/adapters/scenic/entries/<uuid:record_id>": PARTNER,
    # Data providers.
    "POST /v1/provider/records:batch": frozenset({"provider"}),
    "GET /v1/provider/records/<uuid:record_id>": frozenset({"provider"}),
    "PATCH /v1/provider/records/<uuid:record_id>": frozenset({"provider"}),
    "DELETE /v1/provider/records/<uuid:record_id>": frozenset({"provider"}),
    # Administration of API-key principals and accounts.
    "POST /v1/admin/partners": OPERATOR,
    "GET /v1/admin/partners": OPERATOR_OR_AUDITOR,
    "GET /v1/admin/partners/<uuid:client_id>": OPERATOR_OR_AUDITOR,
    "POST /v1/admin/partners/<uuid:client_id>/keys": OPERATOR,
    "DELETE /v1/admin/partners/<uuid:client_id>/keys/<string:key_id>": OPERATOR,
    "PUT /v1/admin/partners/<uuid:client_id>/status": OPERATOR,
    "POST /v1/admin/orgs": OPERATOR,
    "GET /v1/admin/orgs": OPERATOR_OR_AUDITOR,
    "GET /v1/admin/orgs/<uuid:client_id>": OPERATOR_OR_AUDITOR,
    "POST /v1/admin/orgs/<uuid:client_id>/keys": OPERATOR,
    "DELETE /v1/admin/orgs/<uuid:client_id>/keys/<string:key_id>": OPERATOR,
    "PUT /v1/admin/orgs/<uuid:client_id>/status": OPERATOR,
    "POST /v1/admin/providers": OPERATOR,
    "GET /v1/admin/providers": OPERATOR_OR_AUDITOR,
    "GET /v1/admin/providers/<uuid:client_id>": OPERATOR_OR_AUDITOR,
    "POST /v1/admin/providers/<uuid:client_id>/keys": OPERATOR,
    "DELETE /v1/admin/providers/<uuid:client_id>/keys/<string:key_id>": OPERATOR,
    "PUT /v1/admin/providers/<uuid:client_id>/status": OPERATOR,
    "PUT /v1/admin/providers/<uuid:client_id>/catalogue": OPERATOR,
    "PUT /v1/admin/accounts/<uuid:account_id>/status": OPERATOR,
    "GET /v1/admin/catalogue": STAFF,
    "POST /v1/admin/catalogue": OPERATOR,
    "PATCH /v1/admin/catalogue/<string:code>": OPERATOR,
    "GET /v1/admin/lists": STAFF,
    "GET /v1/admin/stats": STAFF,
    "GET /v1/admin/districts": STAFF,
    "PUT /v1/admin/districts/<string:code>": OPERATOR,
    "GET /v1/admin/benefit-rules": OPERATOR_OR_AUDITOR,
    "PATCH /v1/admin/benefit-rules/<string:code>": OPERATOR,
    "GET /v1/me/benefit-sessions": frozenset({"citizen"}),
    "POST /v1/partner/benefit-sessions": frozenset({"partner"}),
    "GET /v1/partner/benefit-sessions/<uuid:session_id>": frozenset({"partner"}),
    "POST /v1/partner/benefit-sessions/<uuid:session_id>/close": frozenset({"partner"}),
    "POST /v1/partner/benefit-sessions/<uuid:session_id>/extend": frozenset({"partner"}),
    "POST /v1/partner/benefit-sessions/<uuid:session_id>/cancel": frozenset({"partner"}),
    "POST /v1/partner/benefit-sessions/<uuid:session_id>/settle": frozenset({"partner"}),
    # Volunteer organisations: volunteers and service hours.
    "POST /v1/org/volunteers": frozenset({"org"}),
    "GET /v1/org/volunteers": frozenset({"org"}),
    "DELETE /v1/org/volunteers/<uuid:volunteer_id>": frozenset({"org"}),
    "POST /v1/org/service-records": frozenset({"org"}),
    "GET /v1/org/service-records": frozenset({"org"}),
    "POST /v1/org/service-records/<uuid:record_id>/retract": frozenset({"org"}),
    # The citizen's hours, repairs, objections and evidence.
    "GET /v1/me/volunteer-organisations": frozenset({"citizen"}),
    "DELETE /v1/me/volunteer-organisations/<uuid:org_id>": frozenset({"citizen"}),
    "GET /v1/me/service-hours": frozenset({"citizen"}),
    "POST /v1/me/repairs": frozenset({"citizen"}),
    "GET /v1/me/repairs": frozenset({"citizen"}),
    "GET /v1/me/repairs/<uuid:repair_id>": frozenset({"citizen"}),
    "GET /v1/me/repairs/<uuid:repair_id>/decision.pdf": frozenset({"citizen"}),
    "POST /v1/me/disputes": frozenset({"citizen"}),
    "GET /v1/me/disputes": frozenset({"citizen"}),
    "GET /v1/me/disputes/<uuid:dispute_id>": frozenset({"citizen"}),
    "POST /v1/me/attachments": frozenset({"citizen"}),
    "GET /v1/me/attachments/<uuid:attachment_id>": frozenset({"citizen"}),
    # Reviewers decide repairs and objections; providers resolve objections to their records.
    "GET /v1/admin/repairs": REVIEWER,
    "GET /v1/admin/repairs/<uuid:repair_id>": REVIEWER,
    "POST /v1/admin/repairs/<uuid:repair_id>/decide": REVIEWER,
    "GET /v1/admin/disputes": REVIEWER,
    "POST /v1/admin/disputes/<uuid:dispute_id>/resolve": REVIEWER,
    "GET /v1/admin/attachments/<uuid:attachment_id>": REVIEWER,
    "GET /v1/provider/disputes": frozenset({"provider"}),
    "POST /v1/provider/disputes/<uuid:dispute_id>/resolve": frozenset({"provider"}),
    "GET /v1/provider/attachments/<uuid:attachment_id>": frozenset({"provider"}),
    # Credit commitments (信用承诺): published texts, the citizen's, providers' look-up.
    "GET /v1/commitment-texts": PUBLIC,
    "POST /v1/admin/commitment-texts": OPERATOR,
    "POST /v1/me/commitments": frozenset({"citizen"}),
    "GET /v1/me/commitments": frozenset({"citizen"}),
    "POST /v1/me/commitments/<uuid:commitment_id>/revoke": frozenset({"citizen"}),
    "GET /v1/provider/commitments": frozenset({"provider"}),
    "POST /v1/provider/commitments/<uuid:commitment_id>/breach": frozenset({"provider"}),
    # Reports of dishonest behaviour (有奖举报): filed by citizens, triaged by reviewers, read
    # (without the reporter) by the provider a report is forwarded to.
    "POST /v1/me/reports": frozenset({"citizen"}),
    "GET /v1/me/reports": frozenset({"citizen"}),
    "GET /v1/admin/reports": REVIEWER,
    "POST /v1/admin/reports/<uuid:report_id>/decide": REVIEWER,
    "GET /v1/provider/reports": frozenset({"provider"}),
    # The working-day calendar and staff alerts.
    "GET /v1/admin/calendar": STAFF,
    "GET /v1/admin/calendar/<int:year>": STAFF,
    "PUT /v1/admin/calendar/<int:year>": OPERATOR,
    # Automated decisions about the citizen and their human review.
    "GET /v1/me/decisions": frozenset({"citizen"}),
    "GET /v1/me/decisions/<string:decision_id>": frozenset({"citizen"}),
    "POST /v1/me/decisions/<string:decision_id>/review": frozenset({"citizen"}),
    "GET /v1/me/reviews": frozenset({"citizen"}),
    "GET /v1/admin/reviews": REVIEWER,
    "POST /v1/admin/reviews/<uuid:review_id>/decide": REVIEWER,
    "GET /v1/admin/alerts": frozenset({"operator", "reviewer"}),
    "POST /v1/admin/alerts/<uuid:alert_id>/acknowledge": frozenset({"operator", "reviewer"}),
    # The citizen's export of everything held about them, and its published schema.
    "GET /v1/me/export": frozenset({"citizen"}),
    "POST /v1/me/exports": frozenset({"citizen"}),
    "GET /v1/me/exports/<uuid:export_id>": frozenset({"citizen"}),
    "GET /v1/me/exports/<uuid:export_id>/download": frozenset({"citizen"}),
    "GET /v1/export-schema": PUBLIC,
}

# Served by flask-smorest itself, and the Swagger UI's files: the only views allowed to
# declare nothing.
DOCS = frozenset({"GET /openapi.json", "GET /docs", "GET /docs/assets/<path:filename>"})

_PARAM = re.compile(r"<(?:(?P<conv>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")


def routes(app: Flask) -> Iterator[tuple[str, str, str, str]]:
    """(key, method, rule, endpoint) for every routable method except HEAD and OPTIONS."""
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield f"{method} {rule.rule}", method, rule.rule, rule.endpoint


def fill(rule: str) -> str:
    """The rule with each path parameter replaced by a random value its converter accepts."""

    def value(match: re.Match[str]) -> str:
        conv, args = match.group("conv"), match.group("args")
        if conv == "uuid":
            return str(uuid.uuid4())
        if conv == "int":
            return str(secrets.randbelow(10**6) + 1)
        if conv == "float":
            return f"{secrets.randbelow(10**6) + 1}.5"
        if conv == "any" and args:
            return args.split(",")[0].strip().strip("'\"")
        return "x" + secrets.token_hex(6)

    return _PARAM.sub(value, rule)


def expected_access(entry: str | frozenset[str]) -> frozenset[str] | None:
    return frozenset({"anyone"}) if entry == PUBLIC else frozenset(entry)


@pytest.fixture(scope="module")
def routed_app() -> Flask:
    """Just the URL map and views: no database is touched by the static checks."""
    return create_app(make_settings("sqlite://", None))


def test_every_route_is_in_the_matrix(routed_app: Flask) -> None:
    missing = sorted(key for key, *_ in routes(routed_app) if key not in MATRIX)
    assert not missing, f"add it to the matrix: {missing}"


def test_matrix_has_no_routes_that_no_longer_exist(routed_app: Flask) -> None:
    live = {key for key, *_ in routes(routed_app)}
    stale = sorted(set(MATRIX) - live)
    assert not stale, f"these matrix entries name routes that no longer exist: {stale}"


def test_matrix_entries_name_only_known_principals() -> None:
    for key, entry in MATRIX.items():
        assert entry == PUBLIC or (entry and entry <= set(PRINCIPALS) - {"anonymous"}), key


def test_declared_access_of_every_view_equals_the_matrix(routed_app: Flask) -> None:
    disagree = []
    for key, _method, _rule, endpoint in routes(routed_app):
        if key not in MATRIX:
            continue  # reported by test_every_route_is_in_the_matrix
        declared = getattr(routed_app.view_functions[endpoint], ACCESS_ATTR, None)
        if key in DOCS:
            if declared not in (None, frozenset({"anyone"})):
                disagree.append(f"{key}: docs endpoint declares {sorted(declared)}")
            continue
        if declared is None:
            disagree.append(f"{key}: the view declares neither @requires nor @public")
        elif declared != expected_access(MATRIX[key]):
            disagree.append(f"{key}: code says {sorted(declared)}, "
                            f"matrix says {sorted(expected_access(MATRIX[key]) or [])}")
    assert not disagree, "\n".join(disagree)


class Principals:
    """One credential of each kind; one that stops authenticating (logout) is made afresh."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app, self.client = app, client
        self.deps = app.extensions["xinyi"]
        self.operator_for_setup = staff_headers(app, client, "operator")
        self._headers: dict[str, dict[str, str]] = {}
        for name in PRINCIPALS:
            self._headers[name] = self._make(name)

    def _make(self, name: str) -> dict[str, str]:
        if name == "anonymous":
            return {}
        if name == "citizen":
            return citizen_headers(self.client)
        if name in STAFF:
            return staff_headers(self.app, self.client, name)
        name, _, kind = name.partition(":")
        collection = {"partner": "partners", "org": "orgs", "provider": "providers"}[name]
        headers, _ = api_client_headers(self.client, self.operator_for_setup, collection,
                                        kind=kind or "library")
        return headers

    def headers(self, name: str, rule: str = "") -> dict[str, str]:
        adapter = _ADAPTER.match(rule)
        if name == "partner" and adapter:
            # A kind's adapter serves partners of that kind (others: partner_kind_mismatch).
            name = f"partner:{adapter['kind']}"
            if name not in self._headers:
                self._headers[name] = self._make(name)
        current = self._headers[name]
        if current and not self._authenticates(current["Authorization"]):
            current = self._headers[name] = self._make(name)
        return current

    def _authenticates(self, authorization: str) -> bool:
        with self.deps.db.session() as session:
            try:
                auth_service.authenticate(session, self.deps, authorization)
            except Unauthorized:
                return False
        return True


def test_each_principal_gets_exactly_the_access_the_matrix_grants(
        app: Flask, client: FlaskClient) -> None:
    principals = Principals(app, client)
    wrong: list[str] = []
    for key, method, rule, _endpoint in routes(app):
        entry = MATRIX.get(key)
        if entry is None:
            continue  # reported by test_every_route_is_in_the_matrix
        url = fill(rule)
        for who in PRINCIPALS:
            resp = client.open(url, method=method, json={},
                               headers=principals.headers(who, rule))
            status = resp.status_code
            body: dict[str, Any] = (resp.get_json(silent=True) or {}) if status >= 400 else {}
            seen = f"{key} as {who}: {status} {body.get('code', '')}"
            if status >= 500:
                wrong.append(f"{seen} (server error)")
            elif entry == PUBLIC or who in entry:
                if status in (401, 403):
                    wrong.append(f"{seen} (allowed, but refused)")
            elif who == "anonymous":
                if (status, body.get("code")) != (401, "unauthorized"):
                    wrong.append(f"{seen} (expected 401 unauthorized)")
            elif (status, body.get("code")) != (403, "forbidden"):
                wrong.append(f"{seen} (expected 403 forbidden)")
    assert not wrong, "\n".join(wrong)
