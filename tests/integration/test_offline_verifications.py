"""Offline verifications uploaded by partners: one entry per (jti, partner), double
presentations and late uploads go to staff, the citizen sees each one in their log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.factories import count
from tests.integration.test_credentials import citizen, issue, partner, verify
from xinyi.alerts.models import StaffAlert
from xinyi.audit.models import AccessLogEntry
from xinyi.credentials.models import Credential, CredentialHolder, Verification
from xinyi.uow import UnitOfWork
from xinyi.worker import purge_expired_credentials

URL = "/v1/partner/verifications:offline"


def item(cred: dict[str, Any], *, benefit: str = "lb", decision: str = "eligible",
         at: datetime | None = None) -> dict[str, str]:
    verified_at = at or datetime.fromisoformat(cred["not_before"]) + timedelta(seconds=10)
    return {"jti": cred["id"], "benefit": benefit, "decision": decision,
            "verified_at": verified_at.isoformat()}


def upload(client: FlaskClient, headers: dict[str, str], *items: dict[str, str]) -> list[Any]:
    resp = client.post(URL, json={"items": list(items)}, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    answers: list[Any] = resp.get_json()["items"]
    return answers


def statuses(answers: list[Any]) -> list[str]:
    return [a["status"] for a in answers]


def alerts(app: Flask, kind: str) -> list[tuple[str, str]]:
    with UnitOfWork(app.extensions["xinyi"].db.sessions) as uow:
        return [(a.ref, a.text) for a in uow.session.scalars(
            select(StaffAlert).where(StaffAlert.kind == kind))]


def test_an_offline_verification_uploaded_twice_is_one_entry(
        app: Flask, client: FlaskClient) -> None:
    me = citizen(client)
    library = partner(app, client)
    [cred] = issue(client, me)
    [first] = upload(client, library, item(cred))
    assert first["status"] == "recorded" and first["verification_id"]
    [again] = upload(client, library, item(cred))
    assert again == {**first, "status": "duplicate"}
    # Twice in one call, too: one entry.
    assert statuses(upload(client, library, item(cred), item(cred))) == ["duplicate"] * 2
    assert count(app, Verification, Verification.credential_jti == cred["id"]) == 1
    assert count(app, AccessLogEntry, AccessLogEntry.action == "offline_verification") == 1
    with UnitOfWork(app.extensions["xinyi"].db.sessions) as uow:
        row = uow.session.scalar(
            select(Verification).where(Verification.credential_jti == cred["id"]))
        assert row is not None and row.offline and row.decision == "eligible"
        assert row.benefit_code == "library.deposit_free"
        assert row.created_at == datetime.fromisoformat(cred["not_before"]) + timedelta(seconds=10)
    # The citizen sees it, marked offline.
    queries = client.get("/v1/me/queries", headers=me).get_json()["items"]
    assert [(q["action"], q["scope"], q["who"]["type"]) for q in queries] == [
        ("offline_verification", "benefit:library.deposit_free", "partner")]
    # The jti is taken: shown online afterwards, it is refused.
    assert verify(client, library, cred["qr_payload"]).get_json()["code"] == "credential_used"


def test_a_jti_verified_online_then_uploaded_is_a_double_presentation(
        app: Flask, client: FlaskClient) -> None:
    me = citizen(client)
    library = partner(app, client)
    [cred] = issue(client, me)
    assert verify(client, library, cred["qr_payload"]).status_code == 200
    [answer] = upload(client, library, item(cred))
    assert answer["status"] == "double_presentation" and answer["verification_id"] is None
    [again] = upload(client, library, item(cred))
    assert again["status"] == "double_presentation"
    [(ref, text)] = alerts(app, "offline_double_presentation")  # once, however often
    assert ref == f"credential:{cred['id']}" and "online" in text
    assert count(app, Verification) == 1


def test_a_jti_presented_at_two_partners_is_flagged(app: Flask, client: FlaskClient) -> None:
    me = citizen(client)
    library, other = partner(app, client), partner(app, client)
    [cred] = issue(client, me)
    assert statuses(upload(client, library, item(cred))) == ["recorded"]
    assert statuses(upload(client, other, item(cred))) == ["double_presentation"]
    [(_, text)] = alerts(app, "offline_double_presentation")
    assert "another partner" in text
    # The first partner's entry stands, alone.
    assert statuses(upload(client, library, item(cred))) == ["duplicate"]
    assert count(app, Verification) == 1
    assert count(app, AccessLogEntry, AccessLogEntry.action == "offline_verification") == 1


def test_the_link_outlives_the_credential_for_the_window_then_items_are_unattributable(
        app: Flask, client: FlaskClient) -> None:
    me = citizen(client)
    library = partner(app, client)
    creds = issue(client, me, count=2)
    deps = app.extensions["xinyi"]
    issued = datetime.now(UTC)
    # Two hours on: the credential's row (and its token) is gone, its link is kept.
    deps.clock = lambda: issued + timedelta(hours=2)
    purge_expired_credentials(deps)
    assert count(app, Credential) == 0 and count(app, CredentialHolder) == 2
    assert statuses(upload(client, library, item(creds[0]))) == ["recorded"]
    assert client.get("/v1/me/queries", headers=me).get_json()["meta"]["total"] == 1
    # Past the key-age limit plus the upload window (24 h + 48 h): no holder any more.
    deps.clock = lambda: issued + timedelta(hours=73)
    purge_expired_credentials(deps)
    assert count(app, CredentialHolder) == 0
    assert statuses(upload(client, library, item(creds[1]))) == ["unattributable"]
    [(_, text)] = alerts(app, "offline_unattributable")
    assert "72 h" in text
    assert count(app, Verification) == 1


def test_bad_items_are_invalid_each_without_spoiling_the_batch(
        app: Flask, client: FlaskClient) -> None:
    me = citizen(client)
    library = partner(app, client)
    creds = issue(client, me, count=5)
    now = datetime.now(UTC) + timedelta(minutes=15)  # every window has begun
    app.extensions["xinyi"].clock = lambda: now
    answers = upload(
        client, library,
        item(creds[0]),
        {**item(creds[1]), "jti": "NoSuchCredential0000"},
        item(creds[1], benefit="no.such_benefit"),
        item(creds[2], benefit="bike.deposit_free"),
        item(creds[3], at=now + timedelta(hours=1)),
        item(creds[4], at=now - timedelta(hours=1)))
    assert [(a["status"], a["reason"]) for a in answers] == [
        ("recorded", None), ("invalid", "unknown_credential"), ("invalid", "unknown_benefit"),
        ("invalid", "benefit_not_for_partner"), ("invalid", "verified_in_future"),
        ("invalid", "outside_credential_window")]
    assert count(app, Verification) == 1


def test_a_malformed_item_or_too_many_refuse_the_call_and_write_nothing(
        app: Flask, client: FlaskClient) -> None:
    me = citizen(client)
    library = partner(app, client)
    [cred] = issue(client, me)
    good = item(cred)
    for bad in ({k: v for k, v in good.items() if k != "decision"},
                {**good, "verified_at": "2026-12-01T10:00:00"},  # no offset
                {**good, "decision": "refused"}, {**good, "jti": "a/b"}):
        resp = client.post(URL, json={"items": [good, bad]}, headers=library)
        assert resp.status_code == 422, resp.get_json()
        assert resp.get_json()["code"] == "validation_error"
        assert any(e["field"].startswith("items.1") for e in resp.get_json()["errors"])
    resp = client.post(URL, json={"items": [good] * 501}, headers=library)
    assert resp.status_code == 422
    [error] = resp.get_json()["errors"]
    assert error["field"] == "items" and "500" in str(error["messages"])
    assert client.post(URL, json={"items": []}, headers=library).status_code == 422
    assert count(app, Verification) == 0 and count(app, AccessLogEntry) == 0


def test_a_full_batch_is_recorded_in_one_call(app: Flask, client: FlaskClient) -> None:
    library = partner(app, client)
    people = [citizen(client) for _ in range(4)]
    creds = [c for me in people for c in issue(client, me, count=15)]
    later = datetime.now(UTC) + timedelta(minutes=31)  # every window has begun
    app.extensions["xinyi"].clock = lambda: later
    answers = upload(client, library, *(item(c) for c in creds))
    assert statuses(answers) == ["recorded"] * 60
    assert count(app, AccessLogEntry, AccessLogEntry.action == "offline_verification") == 60
    from xinyi.audit.checkpoints import verify_all
    from xinyi.audit.models import AccessLogSeal
    from xinyi.audit.sealer import seal_all
    deps = app.extensions["xinyi"]
    assert seal_all(deps)[0] >= 60
    with deps.db.session() as s:
        assert verify_all(s, deps).problem is None
        chains = s.execute(select(func.count(), func.max(AccessLogSeal.seq))
                           .join(AccessLogEntry, AccessLogEntry.id == AccessLogSeal.entry_id)
                           .where(AccessLogEntry.action == "offline_verification")
                           .group_by(AccessLogSeal.subject_bidx)).all()
    assert sorted(tuple(c) for c in chains) == [(15, 15)] * 4  # 15 entries a chain, unforked


def test_two_uploads_at_once_on_the_same_citizens_both_succeed(app: Flask) -> None:
    """Two partners upload at the same moment, for the same citizens, in opposite orders, on
    PostgreSQL with separate committing connections: both wait for each other where their
    chains meet and neither deadlocks; each citizen's chain stays unforked."""
    import os
    import threading
    import uuid

    from sqlalchemy import delete, insert
    from sqlalchemy.orm import sessionmaker

    from xinyi.auth.models import ApiClient
    from xinyi.auth.principal import Principal
    from xinyi.credentials.offline import upload as upload_offline
    from xinyi.subjects.models import Subject

    deps = app.extensions["xinyi"]
    if not deps.db.url.startswith("postgresql"):
        pytest.skip("SQLite has a single writer: uploads cannot race")
    engine = deps.db.engine
    now = datetime.now(UTC)
    people = [os.urandom(32) for _ in range(6)]
    partners = [Principal("partner", uuid.uuid4(), client_kind="library",
                          client_name=f"race library {n}") for n in (1, 2)]
    jtis = {p.id: [f"race{n}{p.id.hex[:8]}{i:03d}" for i in range(120)]
            for n, p in enumerate(partners)}
    with engine.begin() as conn:
        conn.execute(insert(Subject), [{"bidx": b, "id_number_enc": b"x", "first_seen_at": now}
                                       for b in people])
        conn.execute(insert(ApiClient), [{"id": p.id, "type": "partner", "name": p.client_name,
                                          "kind": "library", "created_at": now}
                                         for p in partners])
        conn.execute(insert(CredentialHolder), [
            {"jti": j, "subject_bidx": people[i % len(people)],
             "not_before": now - timedelta(hours=3), "expires_at": now - timedelta(hours=2)}
            for p in partners for i, j in enumerate(jtis[p.id])])
    barrier, answers, failures = threading.Barrier(2), {}, []

    def run(partner: Principal, reverse: bool) -> None:
        mine = jtis[partner.id][::-1] if reverse else jtis[partner.id]
        items = [{"jti": j, "benefit": "lb", "decision": "eligible",
                  "verified_at": now - timedelta(hours=3) + timedelta(seconds=30)} for j in mine]
        try:
            with UnitOfWork(sessionmaker(engine, expire_on_commit=False)) as uow:
                barrier.wait(10)
                answers[partner.id] = upload_offline(uow.session, deps, partner, items)
                uow.commit()
        except Exception as exc:  # pragma: no cover - what the test reports
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(p, n == 1)) for n, p in enumerate(partners)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not failures, failures
        assert all(statuses(a) == ["recorded"] * 120 for a in answers.values())
        with engine.connect() as conn:
            logged = conn.execute(select(AccessLogEntry.subject_bidx, func.count())
                                  .where(AccessLogEntry.subject_bidx.in_(people))
                                  .group_by(AccessLogEntry.subject_bidx)).all()
        assert sorted(n for _, n in logged) == [40] * 6
    finally:
        with engine.begin() as conn:
            conn.execute(delete(AccessLogEntry).where(AccessLogEntry.subject_bidx.in_(people)))
            conn.execute(delete(Verification).where(Verification.subject_bidx.in_(people)))
            conn.execute(delete(CredentialHolder).where(
                CredentialHolder.subject_bidx.in_(people)))
            conn.execute(delete(ApiClient).where(ApiClient.id.in_([p.id for p in partners])))
            conn.execute(delete(Subject).where(Subject.bidx.in_(people)))


def test_an_offline_verification_opens_no_benefit_session(app: Flask, client: FlaskClient) -> None:
    """Its decision is the partner's own account of the check: no deposit is waived on it."""
    me = citizen(client)
    library = partner(app, client)
    [cred] = issue(client, me)
    [answer] = upload(client, library, item(cred, at=datetime.now(UTC)))
    assert answer["status"] == "recorded"
    resp = client.post("/v1/partner/benefit-sessions", headers=library, json={
        "verification_id": answer["verification_id"], "amount_fen": 3000,
        "due_at": (datetime.now(UTC) + timedelta(days=14)).isoformat(), "reference": "loan-1"})
    assert resp.status_code == 404 and resp.get_json()["code"] == "verification_not_found"
