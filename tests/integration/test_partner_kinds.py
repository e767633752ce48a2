"""One vocabulary of partner kinds (xinyi.partner_kinds): the kinds the admin API accepts are
the kinds the benefit rules name, so every benefit has a partner that can verify it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from tests.factories import SENSITIVE_VALUES, api_client_headers, citizen_headers, staff_headers
from xinyi.partner_kinds import PARTNER_KINDS
from xinyi.scoring.models import BenefitRuleRow


def fresh_credential(client: FlaskClient, citizen: dict[str, str]) -> str:
    resp = client.post("/v1/me/credentials", json={"count": 1}, headers=citizen)
    assert resp.status_code == 201, resp.get_json()
    payload: str = resp.get_json()["items"][0]["qr_payload"]
    SENSITIVE_VALUES.add(payload)
    return payload


def test_every_benefit_is_verified_by_a_partner_of_a_kind_the_admin_api_accepts(
        app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    citizen = citizen_headers(client)
    benefits: list[dict[str, Any]] = client.get("/v1/benefits").get_json()["items"]
    assert len(benefits) == 7
    for benefit in benefits:
        # api_client_headers asserts the admin API's 201: a kind it refuses fails here.
        partner, _ = api_client_headers(client, operator, "partners",
                                        kind=benefit["partner_kind"])
        resp = client.post("/v1/partner/verifications", headers=partner, json={
            "credential": fresh_credential(client, citizen), "benefit": benefit["code"]})
        assert resp.status_code == 200, (benefit["code"], resp.get_json())
        assert resp.get_json()["decision"] in ("eligible", "standard_terms")
        assert resp.get_json()["benefit"]["code"] == benefit["code"]


def test_the_admin_api_names_the_kinds_it_accepts(app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    resp = client.post("/v1/admin/partners", json={"name": "某景区", "kind": "scenic_spot"},
                       headers=operator)
    assert resp.status_code == 422 and resp.get_json()["code"] == "validation_error"
    [error] = resp.get_json()["errors"]
    assert error["field"] == "kind" and all(k in error["messages"][0] for k in PARTNER_KINDS)


def test_the_database_refuses_a_benefit_rule_for_a_kind_outside_the_vocabulary(
        app: Flask) -> None:
    with app.extensions["xinyi"].db.session() as session, pytest.raises(IntegrityError):
        session.execute(update(BenefitRuleRow).where(BenefitRuleRow.code == "scenic.discount")
                        .values(partner_kind="scenic_spot"))


def test_the_database_accepts_every_kind_of_the_vocabulary(app: Flask) -> None:
    """A kind added to xinyi.partner_kinds without a migration of the CHECK fails here."""
    with app.extensions["xinyi"].db.session() as session:
        for kind in PARTNER_KINDS:
            session.execute(update(BenefitRuleRow)
                            .where(BenefitRuleRow.code == "scenic.discount")
                            .values(partner_kind=kind))
