"""The citizen sees every read of their data by others (查询记录, R7), in a verifiable chain."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from tests.factories import ROOT, bearer, login, python_blocks, register_citizen
from tests.integration.test_consents import (
    PURPOSE,
    approve,
    ask,
    consent_for,
    read,
    refused,
    world,
    written,
)
from xinyi.audit.models import AccessLogEntry
from xinyi.audit.service import verify_chains


def queries(client: FlaskClient, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    resp = client.get(f"/v1/me/queries{query}", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def test_each_successful_read_adds_exactly_one_entry_the_citizen_can_see(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    summary = consent_for(client, w, scope="report.summary")
    assert queries(client, w.me)["items"] == []

    first = written(app)["AccessLogEntry"]
    assert read(client, w).status_code == 200
    assert written(app)["AccessLogEntry"] == first + 1
    full = approve(client, w, ask(client, w, scope="report.full", purpose="核实逾期记录")["id"])
    assert read(client, w).status_code == 200
    assert written(app)["AccessLogEntry"] == first + 2

    page = queries(client, w.me)
    assert page["meta"] == {"page": 1, "page_size": 20, "total": 2}
    newest, oldest = page["items"]
    assert newest["who"] == {"type": "partner", "name": w.partner_name}
    assert (newest["action"], newest["scope"]) == ("report", "report.full")
    assert (newest["consent_id"], newest["purpose"]) == (full["id"], "核实逾期记录")
    assert (oldest["scope"], oldest["consent_id"]) == ("report.summary", summary["id"])
    assert oldest["purpose"] == PURPOSE and oldest["who"]["name"] == w.partner_name
    assert newest["seq"] == oldest["seq"] + 1
    assert datetime.fromisoformat(newest["at"]) >= datetime.fromisoformat(oldest["at"])

    deps = app.extensions["xinyi"]
    with deps.db.session() as session:
        checked, problem = verify_chains(session)
    assert problem is None and checked >= 2


def test_a_refused_read_adds_no_entry(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    before = written(app)
    refused(read(client, w), 403, "consent_required")
    summary = consent_for(client, w, scope="report.summary")
    after_grant = written(app)
    refused(read(client, w, scope="report.full"), 403, "consent_required")
    client.post(f"/v1/me/consents/{summary['id']}/revoke", headers=w.me)
    after_revoke = written(app)
    refused(read(client, w), 403, "consent_required")
    assert written(app) == after_revoke
    assert before["AccessLogEntry"] == after_grant["AccessLogEntry"]
    assert after_revoke["AccessLogEntry"] == before["AccessLogEntry"]
    assert queries(client, w.me)["items"] == []


def test_queries_are_the_citizens_own_and_paginated(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    consent_for(client, w)
    for _ in range(3):
        assert read(client, w).status_code == 200
    second = queries(client, w.me, "?page=2&page_size=2")
    assert second["meta"] == {"page": 2, "page_size": 2, "total": 3}
    assert [e["seq"] for e in second["items"]] == [1]
    stranger = register_citizen(client)
    them = bearer(login(client, stranger["phone"])["access_token"])
    assert queries(client, them)["meta"] == {"page": 1, "page_size": 20, "total": 0}
    for bad in ("?page=0", "?page_size=101", "?page=x"):
        refused(client.get(f"/v1/me/queries{bad}", headers=w.me), 422, "validation_error")


def test_an_altered_entry_breaks_the_chain(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    consent_for(client, w)
    assert read(client, w).status_code == 200
    assert read(client, w).status_code == 200
    deps = app.extensions["xinyi"]
    with deps.db.session() as session:
        assert verify_chains(session)[1] is None
        session.execute(update(AccessLogEntry).where(AccessLogEntry.seq == 1)
                        .values(purpose="别的目的"))
        _, problem = verify_chains(session)
    assert problem is not None and problem.seq == 1


def documented_check() -> Callable[[list[dict[str, Any]], dict[str, Any]], None]:
    """``check_chain`` exactly as docs/access-log.md prints it (its only python block)."""
    [code] = python_blocks(ROOT / "docs" / "access-log.md")
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/access-log.md", "exec"), namespace)  # noqa: S102 - our own docs
    check: Callable[[list[dict[str, Any]], dict[str, Any]], None] = namespace["check_chain"]
    return check


def whole_log(client: FlaskClient, headers: dict[str, str]) -> tuple[list[Any], dict[str, Any]]:
    """Every entry, page by page, and the chain head of the first page."""
    first = queries(client, headers, "?page_size=2")
    entries, page = list(first["items"]), 1
    while len(entries) < first["meta"]["total"]:
        page += 1
        entries += queries(client, headers, f"?page={page}&page_size=2")["items"]
    return entries, first["chain"]


def test_the_chain_recomputes_from_the_answers_alone(app: Flask, client: FlaskClient) -> None:
    check_chain = documented_check()
    w = world(app, client)
    empty = queries(client, w.me)["chain"]
    assert (empty["seq"], empty["hash"]) == (0, "0" * 64)
    check_chain([], empty)

    consent_for(client, w)
    for _ in range(2):
        assert read(client, w).status_code == 200
    approve(client, w, ask(client, w, scope="report.full", purpose="核实逾期记录")["id"])
    assert read(client, w).status_code == 200
    entries, chain = whole_log(client, w.me)
    assert len(entries) == 3 and chain["seq"] == 3 and chain["subject"] == empty["subject"]
    assert entries[0]["hash"] == chain["hash"]
    assert all(len(e["hash"]) == len(e["prev_hash"]) == 64 for e in entries)
    check_chain(entries, chain)

    altered = copy.deepcopy(entries)
    altered[1]["purpose"] += "。"
    with pytest.raises(ValueError, match="entry 2 does not match its hash"):
        check_chain(altered, chain)
    with pytest.raises(ValueError, match="entry 2 is missing"):
        check_chain([e for e in entries if e["seq"] != 2], chain)
    with pytest.raises(ValueError, match="head"):
        check_chain(entries[1:], chain)  # the newest entry withheld

    deps = app.extensions["xinyi"]
    with deps.db.session() as session:
        oldest = uuid.UUID(entries[2]["id"])
        session.execute(update(AccessLogEntry).where(AccessLogEntry.id == oldest)
                        .values(actor_name="别人"))
        session.commit()
    rewritten, head = whole_log(client, w.me)
    with pytest.raises(ValueError, match="entry 1 does not match its hash"):
        check_chain(rewritten, head)


def test_a_page_stops_at_the_head_it_reports(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    consent_for(client, w)
    assert read(client, w).status_code == 200
    page = queries(client, w.me)
    assert page["chain"]["seq"] == page["meta"]["total"] == 1
    assert page["items"][0]["hash"] == page["chain"]["hash"]
    assert page["items"][0]["actor_id"] == w.partner_id
