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
from sqlalchemy import select, update

from tests.factories import (
    ROOT,
    bearer,
    login,
    python_blocks,
    register_citizen,
    seal_and_verify,
)
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
from xinyi.audit.checkpoints import verify_all
from xinyi.audit.models import AccessLogEntry, AccessLogSeal


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

    pending = queries(client, w.me)["items"]  # until the sealer gives them their place
    assert [(e["status"], e["seq"], e["hash"]) for e in pending] == [("pending", None, None)] * 2
    report = seal_and_verify(app)
    assert report.problem is None and report.entries_checked >= 2
    page = queries(client, w.me)
    assert page["meta"] == {"page": 1, "page_size": 20, "total": 2}
    newest, oldest = page["items"]
    assert newest["status"] == oldest["status"] == "sealed"
    assert newest["who"] == {"type": "partner", "name": w.partner_name}
    assert (newest["action"], newest["scope"]) == ("report", "report.full")
    assert (newest["consent_id"], newest["purpose"]) == (full["id"], "核实逾期记录")
    assert (oldest["scope"], oldest["consent_id"]) == ("report.summary", summary["id"])
    assert oldest["purpose"] == PURPOSE and oldest["who"]["name"] == w.partner_name
    assert newest["seq"] == oldest["seq"] + 1
    assert datetime.fromisoformat(newest["at"]) >= datetime.fromisoformat(oldest["at"])


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
    seal_and_verify(app)
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
    assert seal_and_verify(app).problem is None
    deps = app.extensions["xinyi"]
    with deps.db.session() as session:
        first = session.scalar(select(AccessLogSeal.entry_id).where(AccessLogSeal.seq == 1))
        session.execute(update(AccessLogEntry).where(AccessLogEntry.id == first)
                        .values(purpose="别的目的"))
        problem = verify_all(session, deps).problem
    assert problem is not None and str(first) in problem and "seq 1," in problem


def documented_check() -> Callable[[list[dict[str, Any]], dict[str, Any]], None]:
    """``check_chain`` exactly as docs/access-log.md prints it (its only python block)."""
    [code] = python_blocks(ROOT / "docs" / "access-log.md")
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/access-log.md", "exec"), namespace)  # noqa: S102 - our own docs
    check: Callable[[list[dict[str, Any]], dict[str, Any]], None] = namespace["check_chain"]
    return check


def documented_inclusion() -> Callable[[dict[str, Any]], None]:
    """``check_inclusion`` exactly as docs/access-log.md prints it."""
    [code] = python_blocks(ROOT / "docs" / "access-log.md")
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/access-log.md", "exec"), namespace)  # noqa: S102 - our own docs
    check: Callable[[dict[str, Any]], None] = namespace["check_inclusion"]
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
    seal_and_verify(app)
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
    seal_and_verify(app)
    page = queries(client, w.me)
    assert page["chain"]["seq"] == page["meta"]["total"] == 1
    assert page["items"][0]["hash"] == page["chain"]["hash"]
    assert page["items"][0]["actor_id"] == w.partner_id


def test_an_entry_proves_its_inclusion_in_a_signed_tree_head(
        app: Flask, client: FlaskClient) -> None:
    check_inclusion = documented_inclusion()
    w = world(app, client)
    consent_for(client, w)
    for _ in range(3):
        assert read(client, w).status_code == 200
    [newest, *_] = queries(client, w.me)["items"]
    pending = client.get(f"/v1/me/queries/{newest['id']}/proof", headers=w.me)
    refused(pending, 409, "entry_pending")
    assert pending.headers["Retry-After"] == "5"
    seal_and_verify(app)
    for entry in queries(client, w.me)["items"]:
        resp = client.get(f"/v1/me/queries/{entry['id']}/proof", headers=w.me)
        assert resp.status_code == 200, resp.get_json()
        proof = resp.get_json()
        assert (proof["seq"], proof["hash"]) == (entry["seq"], entry["hash"])
        assert proof["leaf_index"] == entry["leaf_index"]
        check_inclusion(proof)
        head = client.get("/v1/transparency/tree-head").get_json()
        assert head["root_hash"] == proof["tree_head"]["root_hash"]
        forged = copy.deepcopy(proof)
        forged["entry"] = forged["entry"].replace(PURPOSE, PURPOSE + "。")
        with pytest.raises(ValueError, match="not in the tree"):
            check_inclusion(forged)
    stranger = register_citizen(client)
    them = bearer(login(client, stranger["phone"])["access_token"])
    refused(client.get(f"/v1/me/queries/{newest['id']}/proof", headers=them), 404, "not_found")
    refused(client.get(f"/v1/me/queries/{uuid.uuid4()}/proof", headers=w.me), 404, "not_found")
