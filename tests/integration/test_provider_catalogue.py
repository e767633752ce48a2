"""Each data provider pushes only the catalogue items the credit office granted it.

A library's provider must not push ``exam.cheating``: the grant is named when the provider is
created (``["*"]`` grants every item, explicitly), changed with
``PUT /v1/admin/providers/{id}/catalogue``, and checked on every item of a batch, every
correction and every line of an import.
"""

from __future__ import annotations

import csv
import json
import logging
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text

from tests.factories import api_client_headers, count, staff_headers, valid_id_number
from tests.integration.test_records import push
from xinyi.auth.models import ApiClient, CatalogueGrant
from xinyi.cli import alembic_config
from xinyi.deps import Deps
from xinyi.records.importing import import_records
from xinyi.records.models import CreditRecord

LIBRARY_ITEMS = ("library.good_reader", "library.overdue_default")


def item(ref: str, code: str, id_number: str | None = None) -> dict[str, Any]:
    return {"ref": ref, "id_number": id_number or valid_id_number(),
            "catalogue_code": code, "summary": "测试记录",
            "occurred_at": (date.today() - timedelta(days=5)).isoformat()}


def library_provider(app: Flask, client: FlaskClient
                     ) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """(the provider's headers, its admin view, an operator's headers)."""
    operator = staff_headers(app, client, "operator")
    headers, created = api_client_headers(client, operator, "providers",
                                          catalogue_codes=LIBRARY_ITEMS)
    return headers, created, operator


# ---- granting -----------------------------------------------------------------------------

def test_the_admin_view_shows_what_a_provider_is_granted(app: Flask,
                                                         client: FlaskClient) -> None:
    _, created, operator = library_provider(app, client)
    assert created["catalogue_codes"] == sorted(LIBRARY_ITEMS)
    one = client.get(f"/v1/admin/providers/{created['id']}", headers=operator).get_json()
    assert one["catalogue_codes"] == sorted(LIBRARY_ITEMS)
    listing = client.get("/v1/admin/providers?page_size=100", headers=operator).get_json()
    assert {p["id"]: p["catalogue_codes"] for p in listing["items"]}[created["id"]] == sorted(
        LIBRARY_ITEMS)
    _, everything = api_client_headers(client, operator, "providers", catalogue_codes=("*",))
    assert everything["catalogue_codes"] == ["*"]
    _, partner = api_client_headers(client, operator, "partners")
    assert "catalogue_codes" not in partner


@pytest.mark.parametrize(("codes", "field", "detail"), [
    (None, "catalogue_codes", "Missing data"),
    ([], "catalogue_codes", None),
    (["library.good_reader", "exam.cheatin"], "catalogue_codes.1", "exam.cheatin"),
    (["*", "exam.cheating"], "catalogue_codes", "stands alone"),
    (["Not A Code"], "catalogue_codes.0", None),
])
def test_a_provider_without_a_valid_grant_is_refused_naming_what_is_wrong(
        app: Flask, client: FlaskClient, codes: list[str] | None, field: str,
        detail: str | None) -> None:
    operator = staff_headers(app, client, "operator")
    before = count(app, ApiClient)
    body: dict[str, Any] = {"name": "某数据源"}
    if codes is not None:
        body["catalogue_codes"] = codes
    resp = client.post("/v1/admin/providers", json=body, headers=operator)
    assert resp.status_code == 422, resp.get_json()
    problem = resp.get_json()
    assert problem["code"] == "validation_error"
    assert field in [e["field"] for e in problem["errors"]]
    if detail:
        assert detail in json.dumps(problem, ensure_ascii=False)
    assert count(app, ApiClient) == before and count(app, CatalogueGrant) == 0


def test_only_providers_take_a_catalogue_grant(app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    resp = client.post("/v1/admin/partners", headers=operator, json={
        "name": "某图书馆", "kind": "library", "catalogue_codes": ["*"]})
    assert resp.status_code == 422
    assert [e["field"] for e in resp.get_json()["errors"]] == ["catalogue_codes"]
    _, partner = api_client_headers(client, operator, "partners")
    resp = client.put(f"/v1/admin/providers/{partner['id']}/catalogue", headers=operator,
                      json={"catalogue_codes": ["*"]})
    assert resp.status_code == 404
    assert count(app, CatalogueGrant) == 0


# ---- pushing --------------------------------------------------------------------------------

def test_an_item_outside_the_grant_is_rejected_in_its_own_result(
        app: Flask, client: FlaskClient) -> None:
    headers, _, _ = library_provider(app, client)
    results = push(client, headers, item("ok-1", "library.overdue_default"),
                   item("bad-1", "exam.cheating"), item("bad-2", "no.such_item"))
    assert results[0]["status"] == "created"
    assert [r["status"] for r in results[1:]] == ["rejected", "rejected"]
    refused = results[1]["problem"]
    assert refused["code"] == "catalogue_item_not_authorised"
    assert refused["status"] == 422
    assert refused["errors"][0]["field"] == "catalogue_code"
    assert "not authorised" in refused["errors"][0]["messages"][0]
    assert results[2]["problem"]["code"] == "unknown_catalogue_code"  # unknown comes first
    assert count(app, CreditRecord) == 1


def test_a_correction_cannot_move_a_record_to_an_item_not_granted(
        app: Flask, client: FlaskClient) -> None:
    headers, _, _ = library_provider(app, client)
    (created,) = push(client, headers, item("c-1", "library.overdue_default"))
    resp = client.patch(f"/v1/provider/records/{created['id']}", headers=headers,
                        json={"catalogue_code": "exam.cheating"})
    assert resp.status_code == 422
    assert resp.get_json()["code"] == "catalogue_item_not_authorised"
    resp = client.patch(f"/v1/provider/records/{created['id']}", headers=headers,
                        json={"catalogue_code": "library.good_reader"})
    assert resp.status_code == 200, resp.get_json()


def test_changing_the_grant_takes_effect_at_once_and_is_logged_without_personal_data(
        app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    headers, created, operator = library_provider(app, client)
    url = f"/v1/admin/providers/{created['id']}/catalogue"
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="xinyi.auth.accounts"):
        resp = client.put(url, headers=operator, json={
            "catalogue_codes": ["exam.cheating", "library.good_reader"]})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["catalogue_codes"] == ["exam.cheating", "library.good_reader"]
    (changed,) = [r for r in caplog.records if getattr(r, "event", None)
                  == "provider_catalogue_changed"]
    assert changed.client_id == created["id"]  # type: ignore[attr-defined]
    assert changed.granted == ["exam.cheating"]  # type: ignore[attr-defined]
    assert changed.revoked == ["library.overdue_default"]  # type: ignore[attr-defined]
    assert created["name"] not in changed.getMessage() + str(changed.__dict__)

    results = push(client, headers, item("n-1", "exam.cheating"),
                   item("n-2", "library.overdue_default"))
    assert [r["status"] for r in results] == ["created", "rejected"]
    assert results[1]["problem"]["code"] == "catalogue_item_not_authorised"

    resp = client.put(url, headers=operator, json={"catalogue_codes": ["no.such_item"]})
    assert resp.status_code == 422
    assert "no.such_item" in resp.get_json()["detail"]
    assert client.get(f"/v1/admin/providers/{created['id']}", headers=operator).get_json()[
        "catalogue_codes"] == ["exam.cheating", "library.good_reader"]  # unchanged
    resp = client.put(url, headers=operator, json={"catalogue_codes": ["*"]})
    assert resp.get_json()["catalogue_codes"] == ["*"]
    assert push(client, headers, item("n-3", "court.dishonest_debtor"))[0]["status"] == "created"


def test_an_import_line_outside_the_grant_goes_to_the_reject_file(
        app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    _, created, _ = library_provider(app, client)
    provider_id = uuid.UUID(created["id"])
    path = tmp_path / "r.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, ["ref", "id_number", "catalogue_code", "occurred_at",
                                  "summary"])
        out.writeheader()
        out.writerow(item("i-1", "library.good_reader"))
        out.writerow(item("i-2", "exam.cheating"))
    deps: Deps = app.extensions["xinyi"]
    summary = import_records(deps.db.sessions, deps, provider_id, path,
                             reject_path=tmp_path / "rejects.csv")
    assert (summary.created, summary.rejected) == (1, 1)
    assert summary.reasons == {"catalogue_item_not_authorised": 1}
    with (tmp_path / "rejects.csv").open(newline="", encoding="utf-8") as fh:
        (rejected,) = list(csv.DictReader(fh))
    assert rejected["line"] == "3" and rejected["ref"] == "i-2"
    assert rejected["reason"].startswith("catalogue_item_not_authorised: catalogue_code: ")
    assert "not authorised" in rejected["reason"]
    with deps.db.session() as s:
        assert list(s.scalars(select(CreditRecord.provider_ref).where(
            CreditRecord.provider_id == provider_id))) == ["i-1"]


# ---- the migration ------------------------------------------------------------------------

def test_the_migration_grants_every_existing_provider_everything(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/grants.db"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0004")
    provider, partner = uuid.uuid4(), uuid.uuid4()
    engine = create_engine(url)
    with engine.begin() as conn:
        for client_id, client_type in ((provider, "provider"), (partner, "partner")):
            conn.execute(text("INSERT INTO api_clients (id, type, name, created_at) "
                              "VALUES (:id, :type, 'x', '2026-01-01 00:00:00')"),
                         {"id": client_id.hex, "type": client_type})
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        grants = conn.execute(text(
            "SELECT client_id, catalogue_code FROM provider_catalogue_grants")).all()
    assert [(uuid.UUID(str(c)), code) for c, code in grants] == [(provider, "*")]
    command.downgrade(cfg, "0004")
    engine.dispose()
