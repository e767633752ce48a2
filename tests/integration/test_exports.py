"""The citizen's export (个人信息导出): every kind of data held about them, valid against the
published schema, as JSON or a ZIP of CSVs; never another citizen's; large ones built in the
background and downloaded once within the hour; every export in the citizen's access log."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from sqlalchemy import select

from tests.factories import (
    SENSITIVE_VALUES,
    api_client_headers,
    bearer,
    count,
    login,
    register_citizen,
    staff_headers,
)
from tests.proofs import inclusion_ok
from xinyi.audit import merkle
from xinyi.audit.models import AccessLogEntry
from xinyi.exports import service
from xinyi.exports.models import Export
from xinyi.exports.sections import SECTIONS
from xinyi.timeutil import CHINA
from xinyi.worker import build_exports, seal_access_log

SCHEMA_FILE = (Path(__file__).resolve().parents[2] / "backend" / "xinyi" / "exports"
               / "export.schema.json")
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return loaded


def validator() -> Draft202012Validator:
    return Draft202012Validator(schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def assert_valid(document: dict[str, Any]) -> None:
    errors = sorted(validator().iter_errors(document), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


@dataclass
class World:
    """One citizen holding at least one item of every kind, and the ids of each."""

    person: dict[str, Any]
    me: dict[str, str]
    ids: dict[str, set[str]]


def _push(client: FlaskClient, provider: dict[str, str], id_number: str, code: str) -> str:
    resp = client.post("/v1/provider/records:batch", headers=provider, json={"records": [{
        "ref": f"r-{uuid.uuid4().hex[:10]}", "id_number": id_number, "catalogue_code": code,
        "summary": "=测试记录", "occurred_at": (date.today() - timedelta(days=10)).isoformat()}]})
    [result] = resp.get_json()["results"]
    assert result["status"] == "created", result
    return str(result["id"])


def _verify(client: FlaskClient, me: dict[str, str],
            partner: dict[str, str]) -> tuple[dict[str, Any], str]:
    issued = client.post("/v1/me/credentials", json={"count": 1}, headers=me)
    assert issued.status_code == 201, issued.get_json()
    item = issued.get_json()["items"][0]
    SENSITIVE_VALUES.update([item["qr_payload"], item["short_code"]])
    resp = client.post("/v1/partner/verifications", headers=partner, json={
        "credential": item["qr_payload"], "benefit": "library.deposit_free"})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json(), str(item["id"])


def world(app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> World:
    deps = app.extensions["xinyi"]
    operator = staff_headers(app, client, "operator")
    reviewer = staff_headers(app, client, "reviewer")
    provider, _ = api_client_headers(client, operator, "providers")
    partner, _ = api_client_headers(client, operator, "partners", kind="library")
    org, _ = api_client_headers(client, operator, "orgs")
    person = register_citizen(client, name="王小明")
    me = bearer(login(client, person["phone"])["access_token"])
    ids: dict[str, set[str]] = {}
    # A credential, its verification by a partner (an access-log entry) and a session.
    verification, credential = _verify(client, me, partner)
    assert verification["decision"] == "eligible", verification
    ids["credentials"], ids["verifications"] = {credential}, {verification["id"]}
    opened = client.post("/v1/partner/benefit-sessions", headers=partner, json={
        "verification_id": verification["id"], "amount_fen": 5000, "reference": "loan-1",
        "due_at": (datetime.now(UTC) + timedelta(days=14)).isoformat()})
    assert opened.status_code == 201, opened.get_json()
    ids["benefit_sessions"] = {opened.get_json()["id"]}
    # A consent request, approved: a consent; the partner reads the report under it.
    asked = client.post("/v1/partner/consent-requests", headers=partner, json={
        "subject": verification["subject"], "scope": "report.summary",
        "purpose": "核实信用状况", "expires_in": 86400}).get_json()
    approved = client.post(f"/v1/me/consent-requests/{asked['id']}/approve", headers=me)
    assert approved.status_code == 201, approved.get_json()
    ids["consent_requests"], ids["consents"] = {asked["id"]}, {approved.get_json()["id"]}
    assert client.get(f"/v1/partner/reports/{verification['subject']}",
                      headers=partner).status_code == 200
    # Service hours at an organisation, and a repair that archives a record.
    assert client.post("/v1/org/volunteers", headers=org, json={
        "id_number": person["id_number"], "name": "王小明"}).status_code == 201
    day = datetime.now(CHINA).date() - timedelta(days=1)
    served = client.post("/v1/org/service-records", headers=org, json={
        "id_number": person["id_number"], "activity_ref": "s-1", "activity_name": "社区服务",
        "started_at": datetime.combine(day, time(7), CHINA).isoformat(),
        "ended_at": datetime.combine(day, time(17), CHINA).isoformat()})
    assert served.status_code == 201, served.get_json()
    ids["service_hours"] = {served.get_json()["id"]}
    repaired = _push(client, provider, person["id_number"], "traffic.violation_minor")
    repair = client.post("/v1/me/repairs", headers=me, json={
        "record_id": repaired, "basis": "volunteer_hours", "commitment_accepted": True})
    assert repair.status_code == 201, repair.get_json()
    ids["repairs"] = {repair.get_json()["id"]}
    assert client.post(f"/v1/admin/repairs/{repair.get_json()['id']}/decide", headers=reviewer,
                       json={"outcome": "approved", "reason": "符合修复条件"}).status_code == 200
    # An objection to another record, with evidence.
    disputed = _push(client, provider, person["id_number"], "utility.unpaid_bill")
    ids["records"] = {repaired, disputed}
    uploaded = client.post("/v1/me/attachments", headers=me, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(PNG), "evidence.png")})
    assert uploaded.status_code == 201, uploaded.get_json()
    ids["attachments"] = {uploaded.get_json()["id"]}
    dispute = client.post("/v1/me/disputes", headers=me, json={
        "record_id": disputed, "reason": "该账单已缴清",
        "attachment_ids": [uploaded.get_json()["id"]]})
    assert dispute.status_code == 201, dispute.get_json()
    ids["disputes"] = {dispute.get_json()["id"]}
    inbox = client.get("/v1/me/notifications", headers=me).get_json()["items"]
    assert inbox
    ids["notifications"] = {n["id"] for n in inbox}
    # The log so far sealed under a signed tree head: later entries are pending after it.
    assert " 0 sealed" not in seal_access_log(deps)
    return World(person, me, ids)


def other_citizen(app: Flask, client: FlaskClient) -> tuple[dict[str, Any], dict[str, str], str]:
    operator = staff_headers(app, client, "operator")
    provider, _ = api_client_headers(client, operator, "providers")
    partner, _ = api_client_headers(client, operator, "partners", kind="library")
    them = register_citizen(client, name="李四")
    headers = bearer(login(client, them["phone"])["access_token"])
    verification, _ = _verify(client, headers, partner)
    record = _push(client, provider, them["id_number"], "utility.unpaid_bill")
    return them, headers, record + " " + verification["id"]


def _exports(app: Flask) -> list[Export]:
    with app.extensions["xinyi"].db.session() as s:
        return list(s.scalars(select(Export)))


def ids_in(document: dict[str, Any], section: str) -> set[str]:
    key = "jti" if section == "credentials" else "id"
    return {row[key] for row in document[section]}


def test_an_export_holds_every_kind_of_data_and_validates_against_its_schema(
        app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world(app, client, monkeypatch)
    them, _, their_ids = other_citizen(app, client)
    resp = client.get("/v1/me/export", headers=w.me)
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert "attachment" in resp.headers["Content-Disposition"]
    doc = resp.get_json()
    assert_valid(doc)
    assert doc["schema_version"] == "1" and set(doc) == {
        "schema_version", "generated_at", *(name for name, _ in SECTIONS)}
    for section, expected in w.ids.items():
        assert expected <= ids_in(doc, section), section
    profile = doc["profile"]
    assert (profile["name"], profile["id_number"], profile["phone"]) == (
        "王小明", w.person["id_number"], w.person["phone"])
    statuses = {r["id"]: r["status"] for r in doc["records"]}
    assert "archived" in statuses.values()  # the repaired record, archived, is there
    assert doc["score_history"][0]["score"] >= 350
    assert doc["score_changes"][0]["score_from"] is None  # the first score, at registration
    assert doc["volunteer_registrations"][0]["name"] == "王小明"
    assert doc["commitments"][0]["purpose"] == "repair"
    assert doc["list_entries"] == [] or all(e["record_id"] in statuses
                                            for e in doc["list_entries"])
    [verified] = doc["verifications"]
    assert verified["response"]["decision"] == "eligible"
    assert not [k for k in verified["response"] if k.startswith("_")]  # replay bookkeeping
    [attachment] = doc["attachments"]
    assert attachment["cases"][0]["case_id"] in w.ids["disputes"]
    # The access log: the sealed chain whole, then this export's own entry, still pending;
    # the head's entry proven under the signed tree head.
    log = doc["access_log"]
    sealed = [e for e in log if e["status"] == "sealed"]
    assert [e["seq"] for e in sealed] == list(range(1, len(sealed) + 1)) and sealed
    assert {"verification", "export"} <= {e["action"] for e in log}
    assert log[-1]["status"] == "pending" and log[-1]["seq"] is None
    assert log[-1]["actor_type"] == "citizen" and log[-1]["purpose"] == "export"
    proof = doc["access_log_proof"]
    assert (proof["head_seq"], proof["head_hash"]) == (sealed[-1]["seq"], sealed[-1]["hash"])
    head, inclusion = proof["tree_head"], proof["inclusion"]
    assert head is not None and head["public_jwk"]["kty"] == "OKP"
    assert inclusion["leaf_index"] == sealed[-1]["leaf_index"]
    data = bytes.fromhex(sealed[-1]["prev_hash"]) + canonical_of(proof["subject"], sealed[-1])
    assert inclusion_ok(merkle.leaf_hash(data), inclusion["leaf_index"],
                                   inclusion["tree_size"],
                                   [bytes.fromhex(h) for h in inclusion["audit_path"]],
                                   bytes.fromhex(head["root_hash"]))
    # Nothing of the other citizen.
    text = resp.get_data(as_text=True)
    assert them["id_number"] not in text and them["phone"] not in text and "李四" not in text
    assert not any(i in text for i in their_ids.split())


def canonical_of(subject: str, entry: dict[str, Any]) -> bytes:
    """The documented formula's JSON text of an exported entry (docs/access-log.md)."""
    return json.dumps({
        "id": entry["id"], "subject": subject, "seq": entry["seq"],
        "actor_type": entry["actor_type"], "actor_id": entry["actor_id"],
        "actor_name": entry["actor_name"], "action": entry["action"], "scope": entry["scope"],
        "consent_id": entry["consent_id"], "purpose": entry["purpose"],
        "created_at": entry["created_at"]},
        sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def test_the_chain_in_the_export_recomputes_by_the_documented_formula(
        app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    w = world(app, client, monkeypatch)
    doc = client.get("/v1/me/export", headers=w.me).get_json()
    previous = "0" * 64
    for entry in (e for e in doc["access_log"] if e["status"] == "sealed"):
        canonical = canonical_of(doc["access_log_proof"]["subject"], entry)
        assert entry["prev_hash"] == previous
        digest = hashlib.sha256(bytes.fromhex(previous) + canonical).hexdigest()
        assert digest == entry["hash"], entry["seq"]
        previous = digest
    assert previous == doc["access_log_proof"]["head_hash"]


def test_the_zip_holds_the_document_and_one_csv_per_section(
        app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world(app, client, monkeypatch)
    them, _, _ = other_citizen(app, client)
    resp = client.get("/v1/me/export?format=zip", headers=w.me)
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(resp.data))
    assert set(archive.namelist()) == {"export.json", *(f"{n}.csv" for n, _ in SECTIONS)}
    assert_valid(json.loads(archive.read("export.json")))
    tables: dict[str, list[dict[str, str]]] = {}
    for name, _ in SECTIONS:
        raw = archive.read(f"{name}.csv")
        assert raw.startswith(b"\xef\xbb\xbf"), name  # a BOM, so Excel reads UTF-8
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))
        described = schema()["properties"][name]
        assert reader.fieldnames == list(described.get("items", described)["properties"])
        tables[name] = list(reader)
    for section, expected in w.ids.items():
        key = "jti" if section == "credentials" else "id"
        assert expected <= {r[key] for r in tables[section]}, section
    assert tables["profile"][0]["name"] == "王小明"
    # A spreadsheet must not run a cell as a formula; export.json keeps the exact text.
    assert {r["summary"] for r in tables["records"]} == {"'=测试记录"}
    cases = json.loads(tables["attachments"][0]["cases"])  # nested values: JSON in a cell
    assert cases[0]["case_kind"] == "dispute"
    everything = b"".join(archive.read(n) for n in archive.namelist()).decode("utf-8", "replace")
    assert them["id_number"] not in everything and "李四" not in everything


def test_a_large_export_is_refused_in_the_request_and_writes_nothing(
        app: Flask, client: FlaskClient) -> None:
    deps = app.extensions["xinyi"]
    deps.settings = deps.settings.with_overrides(export_sync_max_rows=3)
    person = register_citizen(client)
    me = bearer(login(client, person["phone"])["access_token"])
    logged = count(app, AccessLogEntry)
    resp = client.get("/v1/me/export", headers=me)
    assert resp.status_code == 413 and resp.mimetype == "application/problem+json"
    problem = resp.get_json()
    assert problem["code"] == "export_too_large" and "POST /v1/me/exports" in problem["detail"]
    assert count(app, AccessLogEntry) == logged
    assert client.post("/v1/me/exports", headers=me).status_code == 202  # no body: json
    assert [e.format for e in _exports(app)] == ["json"]


def test_bad_format_is_refused(app: Flask, client: FlaskClient) -> None:
    person = register_citizen(client)
    me = bearer(login(client, person["phone"])["access_token"])
    resp = client.get("/v1/me/export?format=xlsx", headers=me)
    assert resp.status_code == 422 and resp.get_json()["errors"][0]["field"] == "format"
    resp = client.post("/v1/me/exports", headers=me, json={"format": "pdf"})
    assert resp.status_code == 422 and count(app, Export) == 0
    assert client.post("/v1/me/exports", headers=me, json={"format": "zip",
                                                           "x": 1}).status_code == 422


def test_a_background_export_is_built_then_downloaded_once_by_its_owner(
        app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    deps = app.extensions["xinyi"]
    w = world(app, client, monkeypatch)
    _, them, _ = other_citizen(app, client)
    made = client.post("/v1/me/exports", headers=w.me, json={"format": "json"})
    assert made.status_code == 202, made.get_json()
    export = made.get_json()
    assert export["status"] == "queued" and made.headers["Location"].endswith(
        f"/v1/me/exports/{export['id']}")
    again = client.post("/v1/me/exports", headers=w.me, json={"format": "zip"})
    assert again.status_code == 409 and again.get_json()["code"] == "export_in_progress"
    status = f"/v1/me/exports/{export['id']}"
    download = f"{status}/download"
    assert client.get(download, headers=w.me).status_code == 404  # not built yet
    assert build_exports(deps) == "build_exports: 1 built, 0 failed, 0 expired"
    ready = client.get(status, headers=w.me).get_json()
    assert ready["status"] == "ready" and ready["size"] > 0
    assert datetime.fromisoformat(ready["expires_at"]) - datetime.fromisoformat(
        ready["ready_at"]) == timedelta(hours=1)
    with deps.db.session() as s:  # stored encrypted: no personal data in the clear
        stored = s.scalars(select(Export.content).where(Export.id == uuid.UUID(export["id"])))
        blob = stored.one()
        assert blob and w.person["id_number"].encode() not in blob and b"\xe7\x8e\x8b" not in blob
    # Another citizen, a token in the URL instead of the header: nothing.
    assert client.get(status, headers=them).status_code == 404
    assert client.get(download, headers=them).get_json()["code"] == "export_not_found"
    token = w.me["Authorization"].removeprefix("Bearer ")
    for query in (f"access_token={token}", f"token={token}"):
        assert client.get(f"{download}?{query}").status_code == 401
    head = client.head(download, headers=w.me)  # a HEAD does not use the download up
    assert head.status_code == 405 and head.headers["Allow"] == "GET"
    logged = count(app, AccessLogEntry)
    first = client.get(download, headers=w.me)
    assert first.status_code == 200 and first.mimetype == "application/json"
    doc = json.loads(first.data)
    assert_valid(doc)
    assert w.ids["records"] <= ids_in(doc, "records")
    assert count(app, AccessLogEntry) == logged + 1  # the download is in the access log
    second = client.get(download, headers=w.me)
    assert second.status_code == 404 and second.get_json()["code"] == "export_not_found"
    assert client.get(status, headers=w.me).get_json()["status"] == "downloaded"
    with deps.db.session() as s:
        assert s.scalars(select(Export.content).where(
            Export.id == uuid.UUID(export["id"]))).one() is None
    queries = client.get("/v1/me/queries?page_size=100", headers=w.me).get_json()["items"]
    mine = [q for q in queries if q["action"] == "export"]
    assert mine and mine[0]["who"]["type"] == "citizen" and mine[0]["purpose"] == "export"
    # The citizen may ask again once nothing is queued.
    assert client.post("/v1/me/exports", headers=w.me, json={"format": "zip"}).status_code == 202


def test_an_export_not_downloaded_within_the_hour_expires_and_its_file_is_deleted(
        app: Flask, client: FlaskClient) -> None:
    deps = app.extensions["xinyi"]
    person = register_citizen(client)
    me = bearer(login(client, person["phone"])["access_token"])
    export = client.post("/v1/me/exports", headers=me, json={"format": "zip"}).get_json()
    assert build_exports(deps).startswith("build_exports: 1 built")
    real_clock = deps.clock
    deps.clock = lambda: real_clock() + timedelta(minutes=61)
    status = client.get(f"/v1/me/exports/{export['id']}", headers=me).get_json()
    assert status["status"] == "expired"
    assert client.get(f"/v1/me/exports/{export['id']}/download", headers=me).status_code == 404
    assert build_exports(deps) == "build_exports: 0 built, 0 failed, 1 expired"
    with deps.db.session() as s:
        row = s.scalars(select(Export).where(Export.id == uuid.UUID(export["id"]))).one()
        assert row.status == "expired" and row.content is None


def test_a_zip_built_in_the_background_downloads_as_a_zip(
        app: Flask, client: FlaskClient) -> None:
    person = register_citizen(client)
    me = bearer(login(client, person["phone"])["access_token"])
    export = client.post("/v1/me/exports", headers=me, json={"format": "zip"}).get_json()
    build_exports(app.extensions["xinyi"])
    resp = client.get(f"/v1/me/exports/{export['id']}/download", headers=me)
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(resp.data))
    assert json.loads(archive.read("export.json"))["profile"]["id_number"] == person["id_number"]


def test_a_failed_build_is_failed_and_logged_by_its_type_only(
        app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    person = register_citizen(client)
    me = bearer(login(client, person["phone"])["access_token"])
    export = client.post("/v1/me/exports", headers=me, json={}).get_json()

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise ValueError(f"cannot encode {person['id_number']}")

    monkeypatch.setattr(service.document, "build", broken)
    assert build_exports(app.extensions["xinyi"]) == "build_exports: 0 built, 1 failed, 0 expired"
    assert client.get(f"/v1/me/exports/{export['id']}",
                      headers=me).get_json()["status"] == "failed"
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "export_failed"]
    assert getattr(record, "error_type", None) == "ValueError"
    assert person["id_number"] not in caplog.text
    # Failed is not in progress: the citizen may ask again.
    assert client.post("/v1/me/exports", headers=me, json={}).status_code == 202


def test_exports_are_rate_limited_per_citizen(app: Flask, client: FlaskClient) -> None:
    deps = app.extensions["xinyi"]
    deps.settings = deps.settings.with_overrides(export_limit_per_citizen="2/hour")
    person = register_citizen(client)
    me = bearer(login(client, person["phone"])["access_token"])
    assert client.get("/v1/me/export", headers=me).status_code == 200
    assert client.get("/v1/me/export?format=zip", headers=me).status_code == 200
    refused = client.post("/v1/me/exports", headers=me, json={})
    assert refused.status_code == 429 and refused.get_json()["code"] == "rate_limited"
    assert count(app, Export) == 0
    other = register_citizen(client)
    assert client.get("/v1/me/export", headers=bearer(login(
        client, other["phone"])["access_token"])).status_code == 200


def test_forget_account_deletes_the_citizens_exports(app: Flask, client: FlaskClient) -> None:
    deps = app.extensions["xinyi"]
    person = register_citizen(client)
    me = bearer(login(client, person["phone"])["access_token"])
    client.post("/v1/me/exports", headers=me, json={})
    build_exports(deps)
    keep = register_citizen(client)
    client.post("/v1/me/exports", headers=bearer(login(client, keep["phone"])["access_token"]),
                json={})
    with deps.db.session() as s:
        assert service.forget_account(s, uuid.UUID(person["id"])) == 1
        s.commit()
    assert count(app, Export, Export.account_id == uuid.UUID(person["id"])) == 0
    assert count(app, Export) == 1


def test_the_schema_url_serves_the_committed_schema_which_rejects_a_short_document(
        app: Flask, client: FlaskClient) -> None:
    resp = client.get("/v1/export-schema")
    assert resp.status_code == 200 and resp.mimetype == "application/schema+json"
    assert json.loads(resp.data) == schema()
    Draft202012Validator.check_schema(schema())
    person = register_citizen(client)
    me = bearer(login(client, person["phone"])["access_token"])
    doc = client.get("/v1/me/export", headers=me).get_json()
    assert_valid(doc)
    v = validator()
    for name, _ in SECTIONS:
        assert not v.is_valid({k: val for k, val in doc.items() if k != name}), name
    assert not v.is_valid({**doc, "schema_version": "0"})
    assert not v.is_valid({**doc, "profile": {**doc["profile"], "extra": 1}})
    assert not v.is_valid({**doc, "access_log": [{**doc["access_log"][0], "hash": "x"}]})


def test_two_workers_never_build_one_export_and_one_citizen_has_one_in_progress(
        app: Flask) -> None:
    """A claim holds its row (FOR UPDATE SKIP LOCKED): a second worker passes it by instead
    of waiting or claiming it too; once claimed it is ``building`` and nobody claims it
    again. The partial unique index keeps a citizen to one export queued or building."""
    from sqlalchemy import create_engine, delete, text
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    deps = app.extensions["xinyi"]
    if not deps.db.url.startswith("postgresql"):
        pytest.skip("SQLite has a single writer: two claims cannot interleave")
    engine = create_engine(deps.db.url, pool_size=4)
    account_id, export_id = uuid.uuid4(), uuid.uuid4()
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO accounts (id, role, phone_enc, phone_bidx, password_hash, "
                "created_at, password_changed_at) VALUES (:id, 'citizen', :enc, :bidx, 'x', "
                "now(), now())"), {"id": account_id, "enc": b"x" * 40,
                                   "bidx": uuid.uuid4().bytes * 2})
            conn.execute(text("INSERT INTO exports (id, account_id, format, status, created_at)"
                              " VALUES (:id, :account, 'json', 'queued', now())"),
                         {"id": export_id, "account": account_id})
        with Session(engine) as first, Session(engine) as second:
            assert service.claim_next(first, deps) == export_id  # held, not committed
            assert service.claim_next(second, deps) is None  # skipped, not waited for
            second.rollback()
            first.commit()
            assert service.claim_next(second, deps) is None  # building: claimed once
            second.rollback()
        with Session(engine) as s:
            s.add(Export(account_id=account_id, format="zip", status="queued",
                         created_at=datetime.now(UTC)))
            with pytest.raises(IntegrityError):
                s.flush()
    finally:
        with engine.begin() as conn:
            conn.execute(delete(Export).where(Export.account_id == account_id))
            conn.execute(text("DELETE FROM accounts WHERE id = :id"), {"id": account_id})
        engine.dispose()
