"""Closing the account (注销账户, DELETE /v1/me) with crypto-shredding; withdrawal of every
consent at once; the shred list a restore replays; the personal-keys backfill."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import column as sql_column
from sqlalchemy import inspect, select, text, update
from sqlalchemy import table as sql_table

from tests.factories import (
    SENSITIVE_VALUES,
    api_client_headers,
    bearer,
    count,
    login,
    random_phone,
    register_citizen,
    staff_headers,
    valid_id_number,
)
from tests.integration.test_consents import push_records
from xinyi.audit.checkpoints import verify_all
from xinyi.audit.models import AccessLogEntry
from xinyi.audit.sealer import seal_all
from xinyi.auth.models import Account, AuthSession
from xinyi.citizens.models import Citizen
from xinyi.consents.models import Consent
from xinyi.credentials.models import Credential
from xinyi.exports.models import Export
from xinyi.exports.service import build_pending
from xinyi.notifications.models import Notification
from xinyi.notifications.service import notify
from xinyi.outbox.models import OutboxEvent
from xinyi.privacy.service import backfill, replay_shred_list
from xinyi.subjects.models import PersonalKey, ShreddedSubject, Subject
from xinyi.subjects.service import pseudonym, remember
from xinyi.volunteering.models import Volunteer
from xinyi.worker import backfill_personal_keys

PURPOSE = "办理免押金借书：核实信用状况"
DAY = 24 * 3600
# Every context a personal field is bound to: the scan tries each with every key.
CONTEXTS = ("citizens.name", "citizens.id_number", "accounts.phone", "subjects.id_number",
            "volunteers.name", "reports.party_id_number")


def unique_name() -> str:
    """A name no other row of the database holds (the factories' default is shared)."""
    name = "".join(chr(0x4E00 + secrets.randbelow(0x5000)) for _ in range(3))
    SENSITIVE_VALUES.add(name)
    return name


@dataclass
class World:
    person: dict[str, Any]
    me: dict[str, str]
    bidx: bytes
    partner: dict[str, str]
    partner_id: uuid.UUID
    subject: str  # the partner's pseudonym of the citizen
    provider: dict[str, str]
    org: dict[str, str]
    operator: dict[str, str]


def world(app: Flask, client: FlaskClient) -> World:
    """A registered citizen with records (one puts them on the black list), a live consent
    for a library partner, a volunteer organisation that knows them by name, an unused
    credential, a notice in their inbox and a staff read in their access log."""
    deps = app.extensions["xinyi"]
    operator = staff_headers(app, client, "operator")
    provider, _ = api_client_headers(client, operator, "providers")
    partner, created = api_client_headers(client, operator, "partners", kind="library")
    org, _ = api_client_headers(client, operator, "orgs")
    person = register_citizen(client, name=unique_name(), phone=random_phone(),
                              id_number=valid_id_number())
    push_records(client, provider, person["id_number"], "blood.donation",
                 "court.dishonest_debtor")
    me = bearer(login(client, person["phone"])["access_token"])
    partner_id = uuid.UUID(created["id"])
    with deps.db.session() as s:
        bidx = bytes(s.scalar(select(Citizen.id_number_bidx).where(
            Citizen.account_id == uuid.UUID(person["id"]))))
        subject = remember(s, deps, partner_id, bidx)
        notify(s, deps, bidx, "registration_attempt", {}, now=deps.clock())
        s.commit()
    asked = client.post("/v1/partner/consent-requests", headers=partner, json={
        "subject": subject, "scope": "report.summary", "purpose": PURPOSE,
        "expires_in": 30 * DAY})
    assert asked.status_code == 201, asked.get_json()
    approved = client.post(f"/v1/me/consent-requests/{asked.get_json()['id']}/approve",
                           headers=me)
    assert approved.status_code == 201, approved.get_json()
    assert client.post("/v1/org/volunteers", headers=org, json={
        "id_number": person["id_number"], "name": person["name"]}).status_code == 201
    auditor = staff_headers(app, client, "auditor")
    assert client.get("/v1/admin/lists?list=black", headers=auditor).status_code == 200
    return World(person, me, bidx, partner, partner_id, subject, provider, org, operator)


def close(client: FlaskClient, w: World, password: str | None = None) -> Any:
    return client.delete("/v1/me", headers=w.me,
                         json={"password": password or w.person["password"]})


def make_legacy(app: Flask, w: World) -> None:
    """What a citizen registered before personal keys looks like: no key, every field under
    the master key."""
    deps = app.extensions["xinyi"]
    master = deps.cipher
    account_id = uuid.UUID(w.person["id"])
    with deps.db.session() as s:
        s.execute(PersonalKey.__table__.delete().where(PersonalKey.subject_bidx == w.bidx))
        s.execute(update(Citizen).where(Citizen.account_id == account_id).values(
            name_enc=master.encrypt(w.person["name"], context="citizens.name"),
            id_number_enc=master.encrypt(w.person["id_number"], context="citizens.id_number")))
        s.execute(update(Account).where(Account.id == account_id).values(
            phone_enc=master.encrypt(w.person["phone"], context="accounts.phone")))
        s.execute(update(Subject).where(Subject.bidx == w.bidx).values(
            id_number_enc=master.encrypt(w.person["id_number"], context="subjects.id_number")))
        s.execute(update(Volunteer).where(Volunteer.subject_bidx == w.bidx).values(
            name_enc=master.encrypt(w.person["name"], context="volunteers.name")))
        s.commit()


# ---- the scan ----------------------------------------------------------------------------

def _columns(connection: Any) -> list[tuple[str, str]]:
    """Every text, JSON and binary column of every table."""
    if connection.dialect.name == "postgresql":
        return [(t, c) for t, c in connection.execute(text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type IN "
            "('text', 'character varying', 'character', 'bytea', 'json', 'jsonb') "
            "ORDER BY table_name, column_name"))]
    inspector = inspect(connection)
    return [(table, column["name"]) for table in inspector.get_table_names()
            for column in inspector.get_columns(table)
            if str(column["type"]).split("(")[0] in ("VARCHAR", "TEXT", "BLOB", "JSON", "CHAR")]


def _openings(blob: bytes, keys: list[AESGCM], personal: list[AESGCM],
              bidxs: list[bytes], extra: list[str]) -> list[str]:
    """Every way the blob decrypts: under each master key (master format) and under each
    personal key still stored (personal format, for every subject), for every context."""
    found = []
    for context in (*CONTEXTS, *extra):
        for key in keys:
            with contextlib.suppress(InvalidTag, ValueError):
                found.append(key.decrypt(blob[1:13], blob[13:], context.encode())
                             .decode("utf-8", "ignore"))
        for key in personal:
            for bidx in bidxs:
                with contextlib.suppress(InvalidTag, ValueError):
                    found.append(key.decrypt(blob[5:17], blob[17:],
                                             context.encode() + b"|" + bidx).decode())
    return found


def scan(app: Flask, *values: str) -> list[str]:
    """Where the database holds any of ``values`` in the clear or decryptably: every column
    of every table, each binary value tried with the master keys and every personal key."""
    deps = app.extensions["xinyi"]
    keys = [AESGCM(k) for k in deps.settings.data_keys.values()]
    hits = []
    with deps.db.session() as s:
        connection = s.connection()
        bidxs = [bytes(b) for b in s.scalars(select(Subject.bidx))]
        personal = [AESGCM(bytes.fromhex(deps.cipher.decrypt(
            wrapped, context="personal_keys:" + bytes(b).hex())))
            for b, wrapped in s.execute(select(PersonalKey.subject_bidx,
                                               PersonalKey.wrapped_key))]
        # A built export file is bound to its own id.
        extra = [f"exports.content:{i}" for i in s.scalars(select(Export.id))]
        for table, column in _columns(connection):
            for (value,) in connection.execute(select(sql_column(column))
                                               .select_from(sql_table(table))):
                if value is None:
                    continue
                if isinstance(value, (bytes, memoryview)):
                    raw = bytes(value)
                    opened = _openings(raw, keys, personal, bidxs, extra) if len(raw) > 28 else []
                    seen = [raw.decode("utf-8", "ignore"), *opened]
                elif isinstance(value, (dict, list)):
                    seen = [json.dumps(value, ensure_ascii=False)]
                else:
                    seen = [str(value)]
                hits += [f"{table}.{column}" for v in values if any(v in x for x in seen)]
    return sorted(set(hits))


# ---- closing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("legacy", [False, True], ids=["personal-key", "legacy-master-key"])
def test_after_closing_no_table_holds_the_name_phone_or_id_in_the_clear_or_decryptable(
        app: Flask, client: FlaskClient, legacy: bool) -> None:
    w = world(app, client)
    if legacy:
        make_legacy(app, w)
    # Someone reported them (the report keeps a copy of their ID number), and they asked for
    # a background export that the worker built and they never downloaded.
    reporter = register_citizen(client)
    reporter_me = bearer(login(client, reporter["phone"])["access_token"])
    assert client.post("/v1/me/reports", headers=reporter_me, json={
        "reported_party": {"kind": "person", "id_number": w.person["id_number"]},
        "facts": "长期拖欠物业费并伪造缴费凭证"}).status_code == 201
    assert client.post("/v1/me/exports", headers=w.me, json={"format": "json"}).status_code \
        == 202
    assert build_pending(app.extensions["xinyi"])[0] == 1
    secrets_held = (w.person["name"], w.person["phone"], w.person["id_number"])
    before = scan(app, *secrets_held)
    # The scan finds them while the account is open: it would see a failed wipe.
    assert {"citizens.name_enc", "citizens.id_number_enc", "accounts.phone_enc",
            "subjects.id_number_enc", "volunteers.name_enc",
            "dishonesty_reports.party_id_number_enc", "exports.content"} <= set(before), before
    assert (count(app, PersonalKey, PersonalKey.subject_bidx == w.bidx) == 1) is not legacy
    assert close(client, w).status_code == 204
    assert scan(app, *secrets_held) == []
    assert count(app, PersonalKey, PersonalKey.subject_bidx == w.bidx) == 0
    assert count(app, ShreddedSubject, ShreddedSubject.subject_bidx == w.bidx) == 1
    # The phone and the ID number may register again.
    with app.extensions["xinyi"].db.session() as s:
        assert s.scalar(select(Account.phone_bidx).where(
            Account.id == uuid.UUID(w.person["id"]))) is None
        assert s.scalar(select(Account.disabled_at).where(
            Account.id == uuid.UUID(w.person["id"]))) is not None


def test_closing_ends_every_login_at_once_and_a_second_delete_is_401(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    other_login = login(client, w.person["phone"])
    assert close(client, w).status_code == 204
    second = close(client, w)
    assert second.status_code == 401 and second.get_json()["code"] == "unauthorized"
    assert client.get("/v1/me", headers=bearer(other_login["access_token"])).status_code == 401
    assert client.post("/v1/auth/refresh", json={
        "refresh_token": other_login["refresh_token"]}).status_code == 401
    relogin = client.post("/v1/auth/login", json={"phone": w.person["phone"],
                                                   "password": w.person["password"]})
    assert relogin.status_code == 401
    assert count(app, AuthSession, AuthSession.account_id == uuid.UUID(w.person["id"]),
                 AuthSession.revoked_at.is_(None)) == 0
    assert count(app, Notification, Notification.subject_bidx == w.bidx) == 0


def test_a_wrong_password_is_refused_and_changes_nothing(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    tables = (PersonalKey, Citizen, Consent, Credential, Notification, OutboxEvent,
              ShreddedSubject)
    written = {m.__name__: count(app, m) for m in tables}
    shred_list = Path(app.extensions["xinyi"].settings.shred_list)
    resp = close(client, w, password="not-my-password-1")
    assert resp.status_code == 403 and resp.mimetype == "application/problem+json"
    assert resp.get_json()["code"] == "password_incorrect"
    assert resp.get_json()["errors"][0]["field"] == "password"
    assert {m.__name__: count(app, m) for m in tables} == written
    assert not shred_list.exists()
    assert client.get("/v1/me", headers=w.me).status_code == 200
    for refused in (client.delete("/v1/me", headers=w.me, json={}),
                    client.delete("/v1/me", headers=w.me, json={"password": 1}),
                    client.delete("/v1/me", headers=w.me)):
        assert refused.status_code in (415, 422), refused.get_json()
    assert client.get("/v1/me", headers=w.me).status_code == 200


def test_close_attempts_are_rate_limited_like_logins(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    statuses = [close(client, w, password=f"wrong-password-{i}").status_code for i in range(6)]
    assert statuses == [403] * 5 + [429]
    assert close(client, w).status_code == 429  # even the right one, until the window passes
    assert client.get("/v1/me", headers=w.me).status_code == 200


def test_each_partner_is_told_and_its_next_read_is_refused(app: Flask,
                                                          client: FlaskClient) -> None:
    w = world(app, client)
    assert client.get(f"/v1/partner/reports/{w.subject}", headers=w.partner).status_code == 200
    assert close(client, w).status_code == 204
    refused = client.get(f"/v1/partner/reports/{w.subject}", headers=w.partner)
    assert refused.status_code == 403 and refused.get_json()["code"] == "consent_required"
    with app.extensions["xinyi"].db.session() as s:
        [event] = s.scalars(select(OutboxEvent).where(OutboxEvent.topic == "consent.revoked"))
        assert event.partner_id == w.partner_id and event.subject_bidx == w.bidx
        assert set(event.payload) == {"consent_id", "scope", "revoked_at"}


def test_an_unused_credential_stops_verifying(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    resp = client.post("/v1/me/credentials", json={"count": 2}, headers=w.me)
    assert resp.status_code == 201
    creds = resp.get_json()["items"]
    SENSITIVE_VALUES.update(c for cred in creds for c in (cred["qr_payload"], cred["short_code"]))
    assert close(client, w).status_code == 204
    for presented in (creds[0]["short_code"], creds[0]["qr_payload"]):
        refused = client.post("/v1/partner/verifications", headers=w.partner, json={
            "credential": presented, "benefit": "library.deposit_free"})
        assert refused.status_code == 422, refused.get_json()
        assert refused.get_json()["code"] == "credential_invalid"
    assert count(app, Credential, Credential.account_id == uuid.UUID(w.person["id"])) == 0


def test_staff_and_organisations_see_account_closed_with_a_masked_reference(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    auditor = staff_headers(app, client, "auditor")
    assert close(client, w).status_code == 204
    reference = f"account closed ({w.bidx.hex()[:8]}…)"
    lists = client.get("/v1/admin/lists?list=black", headers=auditor)
    assert lists.status_code == 200
    assert [e["subject"] for e in lists.get_json()["items"]] == [reference]
    volunteers = client.get("/v1/org/volunteers", headers=w.org)
    assert volunteers.status_code == 200
    [shown] = volunteers.get_json()["items"]
    assert shown["name"] == "account closed" and shown["id_number"] == reference


def test_the_access_log_stays_whole_and_verifies_after_a_closure(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    deps = app.extensions["xinyi"]
    sealed, size = seal_all(deps)  # the citizen's entries sealed, and a tree head signed
    assert sealed >= 1 and size is not None
    entries = count(app, AccessLogEntry, AccessLogEntry.subject_bidx == w.bidx)
    assert entries >= 1
    assert close(client, w).status_code == 204
    assert count(app, AccessLogEntry, AccessLogEntry.subject_bidx == w.bidx) == entries
    seal_all(deps)  # anything logged since is sealed too
    with deps.db.session() as s:
        report = verify_all(s, deps)
    assert report.problem is None and report.entries_checked >= entries
    assert report.heads_checked >= 1


def test_the_same_person_registering_again_sees_their_records_again(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    before = client.get("/v1/me/records", headers=w.me).get_json()
    score = client.get("/v1/me/credit", headers=w.me).get_json()["score"]
    assert before["meta"]["total"] == 2
    assert close(client, w).status_code == 204
    again = register_citizen(client, name=w.person["name"], phone=w.person["phone"],
                             id_number=w.person["id_number"])
    assert again["id"] != w.person["id"]
    me = bearer(login(client, w.person["phone"])["access_token"])
    records = client.get("/v1/me/records", headers=me).get_json()
    assert sorted(r["id"] for r in records["items"]) == sorted(r["id"] for r in before["items"])
    assert client.get("/v1/me/credit", headers=me).get_json()["score"] == score
    profile = client.get("/v1/me", headers=me).get_json()
    assert profile["id_number"] == w.person["id_number"][:3] + "*" * 11 + w.person[
        "id_number"][-4:]
    # A fresh key, and the subject's copy readable under it again (staff see the person).
    assert count(app, PersonalKey, PersonalKey.subject_bidx == w.bidx) == 1
    auditor = staff_headers(app, client, "auditor")
    [entry] = client.get("/v1/admin/lists?list=black", headers=auditor).get_json()["items"]
    assert entry["subject"] == profile["id_number"]


# ---- the shred list and a restore ------------------------------------------------------------

def _rows(app: Flask, w: World) -> dict[str, Any]:
    """What a backup taken now would bring back of this citizen."""
    deps = app.extensions["xinyi"]
    account_id = uuid.UUID(w.person["id"])
    with deps.db.session() as s:
        key = s.get(PersonalKey, w.bidx)
        citizen = s.get(Citizen, account_id)
        account = s.get(Account, account_id)
        subject = s.get(Subject, w.bidx)
        assert key and citizen and account and subject
        return {"key": {"subject_bidx": key.subject_bidx, "wrapped_key": key.wrapped_key,
                        "created_at": key.created_at},
                "citizen": {c.key: getattr(citizen, c.key)
                            for c in inspect(Citizen).mapper.column_attrs},
                "phone": (account.phone_enc, account.phone_bidx),
                "subject": subject.id_number_enc}


def _restore(app: Flask, w: World, rows: dict[str, Any]) -> None:
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        s.add(PersonalKey(**rows["key"]))
        s.add(Citizen(**rows["citizen"]))
        s.execute(update(Account).where(Account.id == uuid.UUID(w.person["id"])).values(
            phone_enc=rows["phone"][0], phone_bidx=rows["phone"][1], disabled_at=None))
        s.execute(update(Subject).where(Subject.bidx == w.bidx).values(
            id_number_enc=rows["subject"]))
        s.commit()


def test_restore_check_destroys_the_keys_a_restored_backup_brought_back(
        app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    deps = app.extensions["xinyi"]
    deps.settings = dataclasses.replace(deps.settings,
                                        shred_list_path=str(tmp_path / "shred.jsonl"))
    w = world(app, client)
    backup = _rows(app, w)
    assert close(client, w).status_code == 204
    [line] = (tmp_path / "shred.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["subject_bidx"] == w.bidx.hex()
    assert json.loads(line)["account_id"] == w.person["id"]
    assert w.person["id_number"] not in line and w.person["phone"] not in line
    _restore(app, w, backup)
    assert count(app, PersonalKey, PersonalKey.subject_bidx == w.bidx) == 1
    assert scan(app, w.person["name"], w.person["id_number"]) != []  # readable again
    replayed = replay_shred_list(deps)
    assert (replayed.entries, replayed.reapplied) == (1, 1)
    assert count(app, PersonalKey, PersonalKey.subject_bidx == w.bidx) == 0
    assert scan(app, w.person["name"], w.person["phone"], w.person["id_number"]) == []
    assert count(app, ShreddedSubject, ShreddedSubject.subject_bidx == w.bidx) == 1
    again = replay_shred_list(deps)
    assert (again.entries, again.reapplied) == (1, 0)


def test_restore_check_keeps_a_later_registration_of_the_same_person(
        app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    deps = app.extensions["xinyi"]
    deps.settings = dataclasses.replace(deps.settings,
                                        shred_list_path=str(tmp_path / "shred.jsonl"))
    w = world(app, client)
    assert close(client, w).status_code == 204
    register_citizen(client, name=w.person["name"], phone=w.person["phone"],
                     id_number=w.person["id_number"])
    me = bearer(login(client, w.person["phone"])["access_token"])
    assert replay_shred_list(deps).reapplied == 0
    assert count(app, PersonalKey, PersonalKey.subject_bidx == w.bidx) == 1
    assert client.get("/v1/me", headers=me).status_code == 200


def test_the_commands_report_what_they_did(
        app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from xinyi import cli

    settings = dataclasses.replace(app.extensions["xinyi"].settings,
                                   shred_list_path=str(tmp_path / "none-yet.jsonl"))
    monkeypatch.setattr(cli, "_settings", lambda: settings)
    result = CliRunner().invoke(cli.main, ["restore-check"])
    assert result.exit_code == 0, result.output
    assert "0 entries, 0 re-applied" in result.output
    if settings.database_url.startswith("sqlite"):
        return  # the test's open transaction holds SQLite's one write lock
    # The backfill command, on the committed database (where no citizen lacks a key).
    result = CliRunner().invoke(cli.main, ["personal-keys", "backfill", "--batch-size", "10"])
    assert result.exit_code == 0, result.output
    assert "citizens moved to personal keys" in result.output


# ---- withdrawal of every consent -----------------------------------------------------------

def test_revoke_all_withdraws_every_live_consent_and_tells_each_partner(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    deps = app.extensions["xinyi"]
    bike, created = api_client_headers(client, w.operator, "partners", kind="bike")
    bike_id = uuid.UUID(created["id"])
    with deps.db.session() as s:
        remember(s, deps, bike_id, w.bidx)
        s.commit()
    granted = client.post("/v1/me/consents", headers=w.me, json={
        "partner_id": str(bike_id), "scope": "report.full", "purpose": "免押金骑行",
        "expires_in": 7 * DAY})
    assert granted.status_code == 201, granted.get_json()
    bike_subject = pseudonym(deps, bike_id, w.bidx)
    assert client.get(f"/v1/partner/reports/{bike_subject}", headers=bike).status_code == 200
    resp = client.post("/v1/me/consents:revoke-all", headers=w.me)
    assert resp.status_code == 200 and resp.get_json() == {"revoked": 2}
    for headers, subject in ((w.partner, w.subject), (bike, bike_subject)):
        refused = client.get(f"/v1/partner/reports/{subject}", headers=headers)
        assert refused.status_code == 403 and refused.get_json()["code"] == "consent_required"
    with deps.db.session() as s:
        told = s.scalars(select(OutboxEvent.partner_id).where(
            OutboxEvent.topic == "consent.revoked")).all()
    assert sorted(told) == sorted([w.partner_id, bike_id])
    again = client.post("/v1/me/consents:revoke-all", headers=w.me)
    assert again.status_code == 200 and again.get_json() == {"revoked": 0}
    live = client.get("/v1/me/consents?status=live", headers=w.me).get_json()
    assert live["meta"]["total"] == 0
    assert client.get("/v1/me", headers=w.me).status_code == 200  # the account stays open


# ---- the backfill ----------------------------------------------------------------------------

def test_backfill_moves_citizens_registered_before_personal_keys_under_their_own_key(
        app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    profile = client.get("/v1/me", headers=w.me).get_json()
    make_legacy(app, w)
    deps = app.extensions["xinyi"]
    assert backfill_personal_keys(deps) == "backfill_personal_keys: 1 citizens"  # the job
    assert backfill(deps) == 0  # idempotent
    assert count(app, PersonalKey, PersonalKey.subject_bidx == w.bidx) == 1
    with deps.db.session() as s:
        citizen = s.get(Citizen, uuid.UUID(w.person["id"]))
        account = s.get(Account, uuid.UUID(w.person["id"]))
        subject = s.get(Subject, w.bidx)
        volunteer_names = s.scalars(select(Volunteer.name_enc).where(
            Volunteer.subject_bidx == w.bidx)).all()
        assert citizen and account and subject
        blobs = [citizen.name_enc, citizen.id_number_enc, account.phone_enc,
                 subject.id_number_enc, *volunteer_names]
    assert all(b is not None and b[0] == 0 for b in blobs)  # the personal format
    assert client.get("/v1/me", headers=w.me).get_json() == profile
    assert close(client, w).status_code == 204
    assert scan(app, w.person["name"], w.person["phone"], w.person["id_number"]) == []


def test_an_account_older_than_subjects_at_registration_closes_too(
        app: Flask, client: FlaskClient) -> None:
    """The oldest accounts have no subject row: closing gives them one, for the tombstone."""
    from xinyi.scoring.models import CreditScore, ScoreChange

    deps = app.extensions["xinyi"]
    person = register_citizen(client, name=unique_name())
    me = bearer(login(client, person["phone"])["access_token"])
    account_id = uuid.UUID(person["id"])
    with deps.db.session() as s:
        bidx = bytes(s.scalar(select(Citizen.id_number_bidx).where(
            Citizen.account_id == account_id)))
        s.execute(PersonalKey.__table__.delete().where(PersonalKey.subject_bidx == bidx))
        s.execute(CreditScore.__table__.delete().where(CreditScore.subject_bidx == bidx))
        s.execute(ScoreChange.__table__.delete().where(ScoreChange.subject_bidx == bidx))
        s.execute(Subject.__table__.delete().where(Subject.bidx == bidx))
        s.execute(update(Citizen).where(Citizen.account_id == account_id).values(
            name_enc=deps.cipher.encrypt(person["name"], context="citizens.name"),
            id_number_enc=deps.cipher.encrypt(person["id_number"],
                                              context="citizens.id_number")))
        s.execute(update(Account).where(Account.id == account_id).values(
            phone_enc=deps.cipher.encrypt(person["phone"], context="accounts.phone")))
        s.commit()
    assert client.delete("/v1/me", headers=me,
                         json={"password": person["password"]}).status_code == 204
    assert count(app, ShreddedSubject, ShreddedSubject.subject_bidx == bidx) == 1
    assert scan(app, person["name"], person["phone"], person["id_number"]) == []
