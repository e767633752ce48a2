"""The public partner directory: a citizen finds the partner to authorise, and nothing more."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import api_client_headers, citizen_headers, staff_headers

ENTRY_FIELDS = {"id", "name", "kind", "benefits", "scopes"}


def directory(client: FlaskClient, **query: int) -> list[dict[str, Any]]:
    """Every page of the directory, walked page by page as a client would."""
    entries: list[dict[str, Any]] = []
    page = 1
    while True:
        resp = client.get("/v1/partners", query_string={"page": page, **query})
        assert resp.status_code == 200, resp.get_json()
        body = resp.get_json()
        entries += body["items"]
        if page * body["meta"]["page_size"] >= body["meta"]["total"]:
            assert len(entries) == body["meta"]["total"]
            return entries
        page += 1


def test_a_new_partner_is_listed_with_its_benefits_and_scopes(app: Flask,
                                                             client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    _, created = api_client_headers(client, operator, "partners", kind="hospital")
    [entry] = [e for e in directory(client) if e["id"] == created["id"]]
    assert entry == {"id": created["id"], "name": created["name"], "kind": "hospital",
                     "benefits": [{"code": "hospital.pay_later", "name_zh": "信易医·先诊疗后付费",
                                   "name_en": "Treat first, pay later"}],
                     "scopes": ["report.summary", "report.full"]}


def test_the_directory_shows_no_key_and_no_disabled_partner(app: Flask,
                                                             client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    _, shown = api_client_headers(client, operator, "partners", kind="library")
    _, hidden = api_client_headers(client, operator, "partners", kind="bike")
    resp = client.put(f"/v1/admin/partners/{hidden['id']}/status", json={"disabled": True},
                      headers=operator)
    assert resp.status_code == 200
    entries = directory(client)
    assert {e["id"] for e in entries} >= {shown["id"]}
    assert hidden["id"] not in {e["id"] for e in entries}
    assert all(set(e) == ENTRY_FIELDS for e in entries)
    page = client.get("/v1/partners", query_string={"page_size": 100}).get_data(as_text=True)
    assert shown["api_key"]["api_key"] not in page and shown["api_key"]["id"] not in page
    assert "key" not in page and "created_at" not in page


def test_the_directory_pages_through_every_partner_once(app: Flask,
                                                        client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    ids = {api_client_headers(client, operator, "partners", kind=kind)[1]["id"]
           for kind in ("scenic", "campus", "government", "other")}
    entries = directory(client, page_size=3)
    listed = [e["id"] for e in entries]
    assert len(listed) == len(set(listed)) and ids <= set(listed)
    first = client.get("/v1/partners", query_string={"page_size": 3}).get_json()
    assert first["meta"] == {"page": 1, "page_size": 3, "total": len(listed)}
    assert len(first["items"]) == 3
    other = next(e for e in entries if e["kind"] == "other")
    assert other["benefits"] == []


def test_the_directory_is_public_and_the_same_for_a_citizen(app: Flask,
                                                            client: FlaskClient) -> None:
    anonymous = client.get("/v1/partners").get_json()
    assert client.get("/v1/partners", headers=citizen_headers(client)).get_json() == anonymous
