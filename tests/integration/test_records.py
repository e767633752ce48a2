"""Records from providers, the explained score, archive, lists and the catalogue."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import (
    api_client_headers,
    bearer,
    count,
    login,
    register_citizen,
    staff_headers,
    valid_id_number,
)
from xinyi.audit.models import AccessLogEntry
from xinyi.outbox.models import OutboxEvent
from xinyi.records.models import CreditRecord, ListEntry
from xinyi.records.service import archive_expired
from xinyi.scoring.models import CreditScore
from xinyi.scoring.service import recompute_all


def provider(app: Flask, client: FlaskClient) -> dict[str, str]:
    operator = staff_headers(app, client, "operator")
    headers, _ = api_client_headers(client, operator, "providers")
    return headers


def item(id_number: str, ref: str, code: str = "traffic.violation_minor",
         occurred: str | None = None, **extra: Any) -> dict[str, Any]:
    occurred = occurred or (date.today() - timedelta(days=10)).isoformat()
    return {"ref": ref, "id_number": id_number, "catalogue_code": code,
            "occurred_at": occurred, "summary": "测试记录", **extra}


def push(client: FlaskClient, headers: dict[str, str], *items: dict[str, Any]) -> list[Any]:
    resp = client.post("/v1/provider/records:batch", json={"records": list(items)},
                       headers=headers)
    assert resp.status_code == 200, resp.get_json()
    results: list[Any] = resp.get_json()["results"]
    return results


def test_batch_is_idempotent_per_reference(app: Flask, client: FlaskClient) -> None:
    headers = provider(app, client)
    idn = valid_id_number(101)
    first = push(client, headers, item(idn, "r-1"))
    assert first[0]["status"] == "created"
    again = push(client, headers, item(idn, "r-1"))
    assert again[0] == {"ref": "r-1", "status": "unchanged", "id": first[0]["id"]}
    assert count(app, CreditRecord) == 1


def test_same_reference_with_other_content_is_refused_and_original_kept(
        app: Flask, client: FlaskClient) -> None:
    headers = provider(app, client)
    idn = valid_id_number(102)
    push(client, headers, item(idn, "r-1"))
    changed = push(client, headers, item(idn, "r-1", code="utility.unpaid_bill"))
    assert changed[0]["status"] == "rejected"
    assert changed[0]["problem"]["status"] == 409
    assert changed[0]["problem"]["code"] == "duplicate_reference"
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        assert s.scalar(select(CreditRecord.catalogue_code)) == "traffic.violation_minor"


def test_one_bad_item_never_blocks_the_others(app: Flask, client: FlaskClient) -> None:
    headers = provider(app, client)
    idn = valid_id_number(103)
    future = (date.today() + timedelta(days=3)).isoformat()
    results = push(
        client, headers,
        item(idn, "ok-1"),
        item(idn, "bad-code", code="no.such_item"),
        item(idn[:-1] + ("0" if idn[-1] != "0" else "1"), "bad-id"),
        item(idn, "bad-future", occurred=future),
        item(idn, "bad-old", occurred="1949-09-30"),
        {"ref": "bad-missing", "id_number": idn},
        "not an object",
        item(idn, "bad-extra", role="admin"),
        item(idn, "ok-2", code="blood.donation"),
    )
    statuses = {r["ref"]: r["status"] for r in results if r["ref"]}
    assert statuses == {"ok-1": "created", "bad-code": "rejected", "bad-id": "rejected",
                        "bad-future": "rejected", "bad-old": "rejected",
                        "bad-missing": "rejected", "bad-extra": "rejected", "ok-2": "created"}
    problems = {r["ref"]: r["problem"] for r in results if r["status"] == "rejected" and r["ref"]}
    assert problems["bad-code"]["code"] == "unknown_catalogue_code"
    assert problems["bad-id"]["errors"][0]["field"] == "id_number"
    assert problems["bad-future"]["errors"][0]["field"] == "occurred_at"
    assert problems["bad-old"]["errors"][0]["field"] == "occurred_at"
    assert {e["field"] for e in problems["bad-missing"]["errors"]} >= {"catalogue_code",
                                                                      "summary"}
    assert problems["bad-extra"]["errors"][0]["field"] == "role"
    assert results[6]["status"] == "rejected" and results[6]["ref"] is None
    assert count(app, CreditRecord) == 2


def test_a_ref_or_a_catalogue_code_with_a_trailing_newline_is_refused(
        app: Flask, client: FlaskClient) -> None:
    """A pattern ending in "$" also matches before a final newline: "r-1\\n" must not become a
    reference of its own, nor "test.nl\\n" a catalogue code."""
    headers = provider(app, client)
    [result] = push(client, headers, item(valid_id_number(107), "nl-1\n"))
    assert result["status"] == "rejected"
    assert result["problem"]["errors"][0]["field"] == "ref"
    assert count(app, CreditRecord) == 0
    operator = staff_headers(app, client, "operator")
    resp = client.post("/v1/admin/catalogue", json={
        "code": "test.nl\n", "name_zh": "测试", "name_en": "Test", "polarity": "positive",
        "severity": None, "domain": "志愿服务", "points": 5, "display_months": 12,
        "repair_after_months": None, "repairable_by_volunteering": False,
        "legal_basis": None}, headers=operator)
    assert resp.status_code == 422 and resp.get_json()["errors"][0]["field"] == "code"


def test_batch_size_is_bounded(app: Flask, client: FlaskClient) -> None:
    headers = provider(app, client)
    idn = valid_id_number(104)
    too_many = [item(idn, f"r-{i}") for i in range(1001)]
    for body in ({"records": too_many}, {"records": []}, {"records": "x"}, {}):
        resp = client.post("/v1/provider/records:batch", json=body, headers=headers)
        assert resp.status_code == 422
        assert resp.get_json()["errors"][0]["field"] == "records"
    assert count(app, CreditRecord) == 0


def test_records_wait_for_the_citizen_and_every_point_is_explained(
        app: Flask, client: FlaskClient) -> None:
    headers = provider(app, client)
    idn = valid_id_number(105)
    push(client, headers, item(idn, "a", code="traffic.violation_minor"),
         item(idn, "b", code="blood.donation"), item(idn, "c", code="utility.unpaid_bill"))
    citizen = register_citizen(client, id_number=idn)
    token = login(client, citizen["phone"])["access_token"]
    resp = client.get("/v1/me/credit", headers=bearer(token))
    assert resp.status_code == 200
    credit = resp.get_json()
    catalogue = {i["code"]: i for i in client.get("/v1/catalog").get_json()["items"]}
    expected = sum(catalogue[c]["points"] for c in ("traffic.violation_minor",
                                                    "blood.donation", "utility.unpaid_bill"))
    assert len(credit["contributions"]) == 3
    assert sum(c["points"] for c in credit["contributions"]) == expected
    assert credit["score"] == max(350, min(950, 600 + expected + credit["hours_bonus"]))
    assert credit["tier"] in ("AAA", "AA", "A", "B", "C")
    assert {b["code"] for b in credit["benefits"]} >= {"library.deposit_free",
                                                       "bike.deposit_free"}
    assert any(step["kind"].startswith("repair") for step in credit["next_steps"])
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        assert s.scalar(select(CreditScore.score)) == credit["score"]


def test_only_the_owning_provider_corrects_or_withdraws(app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    owner, _ = api_client_headers(client, operator, "providers")
    other, _ = api_client_headers(client, operator, "providers")
    idn = valid_id_number(106)
    record_id = push(client, owner, item(idn, "r"))[0]["id"]
    assert client.patch(f"/v1/provider/records/{record_id}", json={"summary": "x"},
                        headers=other).status_code == 404
    assert client.delete(f"/v1/provider/records/{record_id}", headers=other).status_code == 404
    got = client.get(f"/v1/provider/records/{record_id}", headers=owner).get_json()
    assert got["summary"] == "测试记录" and got["status"] == "active"
    fixed = client.patch(f"/v1/provider/records/{record_id}", json={"summary": "更正后"},
                         headers=owner)
    assert fixed.status_code == 200 and fixed.get_json()["summary"] == "更正后"
    future = (date.today() + timedelta(days=3)).isoformat()
    for bad, field, code in (({"catalogue_code": "no.such_item"}, None, "unknown_catalogue_code"),
                             ({"occurred_at": future}, "occurred_at", "validation_error"),
                             ({"occurred_at": "1949-09-30"}, "occurred_at", "validation_error"),
                             ({"summary": ""}, "summary", "validation_error")):
        resp = client.patch(f"/v1/provider/records/{record_id}", json=bad, headers=owner)
        assert resp.status_code == 422 and resp.get_json()["code"] == code, (bad, resp.get_json())
        if field:
            assert resp.get_json()["errors"][0]["field"] == field
    unchanged = client.get(f"/v1/provider/records/{record_id}", headers=owner).get_json()
    assert {k: unchanged[k] for k in ("catalogue_code", "occurred_at", "summary")} == {
        "catalogue_code": got["catalogue_code"], "occurred_at": got["occurred_at"],
        "summary": "更正后"}


def test_withdrawn_record_is_archived_and_no_longer_scored(app: Flask,
                                                          client: FlaskClient) -> None:
    headers = provider(app, client)
    idn = valid_id_number(107)
    record_id = push(client, headers, item(idn, "r", code="utility.unpaid_bill"))[0]["id"]
    citizen = register_citizen(client, id_number=idn)
    me = bearer(login(client, citizen["phone"])["access_token"])
    assert client.get("/v1/me/credit", headers=me).get_json()["score"] < 600
    assert client.delete(f"/v1/provider/records/{record_id}", headers=headers).status_code == 204
    assert client.get("/v1/me/credit", headers=me).get_json()["score"] == 600
    assert client.get("/v1/me/records", headers=me).get_json()["meta"]["total"] == 0
    archived = client.get("/v1/me/records?archived=true", headers=me).get_json()
    assert archived["items"][0]["archived_reason"] == "withdrawn"


def test_black_list_entry_and_exit_write_outbox_events(app: Flask, client: FlaskClient) -> None:
    headers = provider(app, client)
    idn = valid_id_number(108)
    record_id = push(client, headers, item(idn, "r", code="court.dishonest_debtor"))[0]["id"]
    auditor = staff_headers(app, client, "auditor")
    lists = client.get("/v1/admin/lists?list=black", headers=auditor).get_json()
    assert lists["meta"]["total"] == 1
    entry = lists["items"][0]
    assert entry["record_id"] == record_id and entry["legal_basis"]
    assert entry["subject"] == idn[:3] + "*" * 11 + idn[-4:]
    client.delete(f"/v1/provider/records/{record_id}", headers=headers)
    assert client.get("/v1/admin/lists", headers=auditor).get_json()["meta"]["total"] == 0
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        topics = list(s.scalars(select(OutboxEvent.topic).order_by(OutboxEvent.created_at)))
        # The withdrawal also lifts the tier the entry had lowered (its own event).
        assert [t for t in topics if t.startswith("list.")] == ["list.entered", "list.left"]
        assert topics.count("citizen.tier_changed") == 1
        assert s.scalar(select(ListEntry.left_reason)) == "withdrawn"


def test_staff_reading_the_lists_leaves_an_entry_in_each_shown_citizens_log(
        app: Flask, client: FlaskClient) -> None:
    """Every read of a citizen's data by anyone but the citizen is logged: a list page that
    shows a citizen (masked ID, record, legal basis) is a staff read of their data."""
    headers = provider(app, client)
    idn, other = valid_id_number(109), valid_id_number(110)
    push(client, headers, item(idn, "r-1", code="court.dishonest_debtor"),
         item(idn, "r-2", code="telecom.fraud"), item(other, "r-3", code="court.dishonest_debtor"))
    citizen = register_citizen(client, id_number=idn)
    me = bearer(login(client, citizen["phone"])["access_token"])
    auditor = staff_headers(app, client, "auditor")
    assert client.get("/v1/me/queries", headers=me).get_json()["meta"]["total"] == 0
    shown = client.get("/v1/admin/lists?list=black", headers=auditor).get_json()
    assert shown["meta"]["total"] == 3
    queries = client.get("/v1/me/queries", headers=me).get_json()
    assert queries["meta"]["total"] == 1  # two of their entries on the page: one read
    [entry] = queries["items"]
    assert entry["who"]["type"] == "staff" and entry["action"] == "list_review"
    assert entry["scope"] == "lists"
    client.get("/v1/admin/lists?list=red", headers=auditor)  # shows neither of them
    assert client.get("/v1/me/queries", headers=me).get_json()["meta"]["total"] == 1
    assert count(app, AccessLogEntry) == 2  # and `other`


def test_minor_record_without_legal_basis_lists_nobody(app: Flask, client: FlaskClient) -> None:
    headers = provider(app, client)
    push(client, headers, item(valid_id_number(109), "r", code="traffic.violation_minor"))
    assert count(app, ListEntry) == 0 and count(app, OutboxEvent) == 0


def test_records_past_display_are_archived_by_the_daily_sweep(app: Flask,
                                                             client: FlaskClient) -> None:
    headers = provider(app, client)
    idn = valid_id_number(110)
    push(client, headers, item(idn, "r", code="traffic.violation_minor"))
    old = (date.today() - timedelta(days=400)).isoformat()
    stale = push(client, headers, item(idn, "old", occurred=old))
    assert stale[0]["status"] == "created"
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        assert s.get(CreditRecord, __import__("uuid").UUID(stale[0]["id"])).status == "archived"
        deps.clock = lambda: datetime.now(UTC) + timedelta(days=200)
        assert archive_expired(s, deps) == 1
        assert archive_expired(s, deps) == 0
        assert s.scalar(select(CreditScore.score)) == 600


def test_batch_recompute_agrees_with_incremental_scores(app: Flask, client: FlaskClient) -> None:
    headers = provider(app, client)
    for n in range(5):
        idn = valid_id_number(200 + n)
        push(client, headers, *[item(idn, f"{n}-{k}", code=code) for k, code in enumerate(
            ["traffic.violation_minor", "blood.donation", "court.dishonest_debtor"][: n % 3 + 1])])
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        before = dict(s.execute(select(CreditScore.subject_bidx, CreditScore.score)).all())
        now = datetime.now(UTC)
        assert recompute_all(s, now=now, today=now.date()) == 5
        after = dict(s.execute(select(CreditScore.subject_bidx, CreditScore.score)).all())
    assert before == after and min(after.values()) < 600


def test_catalogue_is_public_and_editable_by_operators(app: Flask, client: FlaskClient) -> None:
    items = client.get("/v1/catalog").get_json()["items"]
    assert len(items) >= 30
    benefits = client.get("/v1/benefits").get_json()["items"]
    assert all(isinstance(b["min_score"], int) for b in benefits)
    # The contract's fields (and the short code the QR's `ben` claim carries), nothing else.
    assert all(set(b) == {"code", "partner_kind", "name_zh", "name_en", "min_score", "limits",
                          "qr_code"} for b in benefits)
    assert {b["code"] for b in benefits} >= {"library.deposit_free", "bike.deposit_free",
                                             "hospital.pay_later", "hotel.deposit_free"}
    operator = staff_headers(app, client, "operator")
    new = {"code": "test.new_item", "name_zh": "测试", "name_en": "Test", "polarity": "positive",
           "severity": None, "domain": "志愿服务", "points": -5, "display_months": 12,
           "repair_after_months": None, "repairable_by_volunteering": False,
           "legal_basis": None}
    bad = client.post("/v1/admin/catalogue", json=new, headers=operator)
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "points"
    assert client.post("/v1/admin/catalogue", json={**new, "points": 5},
                       headers=operator).status_code == 201
    assert client.post("/v1/admin/catalogue", json={**new, "points": 5},
                       headers=operator).get_json()["code"] == "catalogue_code_taken"
    patched = client.patch("/v1/admin/catalogue/test.new_item", json={"points": 8},
                           headers=operator)
    assert patched.status_code == 200 and patched.get_json()["points"] == 8
    reviewer = staff_headers(app, client, "reviewer")
    assert client.patch("/v1/admin/catalogue/test.new_item", json={"points": 9},
                        headers=reviewer).status_code == 403
    for odd in ("%00", "a%00b", "%ED%A0%80", "x" * 5000, "%F0%9F%98%80"):
        resp = client.patch(f"/v1/admin/catalogue/{odd}", json={"points": 9}, headers=operator)
        assert resp.status_code == 404 and resp.get_json()["code"] == "not_found", odd


def test_unknown_query_parameters_are_refused(app: Flask, client: FlaskClient) -> None:
    citizen = register_citizen(client)
    me = bearer(login(client, citizen["phone"])["access_token"])
    resp = client.get("/v1/me/records?archived=true&page_sise=5", headers=me)
    assert resp.status_code == 422
    assert resp.get_json()["errors"][0] == {"field": "page_sise", "location": "query",
                                            "messages": ["Unknown field."]}


def test_a_bad_character_in_one_item_rejects_only_that_item(app: Flask,
                                                           client: FlaskClient) -> None:
    headers = provider(app, client)
    idn = valid_id_number(111)
    body = {"records": [item(idn, "ok"), item(idn, "nul", summary="a\x00b"),
                        item(idn, "surrogate", summary="a\ud800b")]}
    # json.dumps keeps the lone surrogate as a \ud800 escape, exactly as a client sends it.
    resp = client.post("/v1/provider/records:batch", data=__import__("json").dumps(body),
                       headers={**headers, "Content-Type": "application/json"})
    assert resp.status_code == 200, resp.get_json()
    results = resp.get_json()["results"]
    assert [r["status"] for r in results] == ["created", "rejected", "rejected"]
    assert [r["problem"]["errors"][0]["field"] for r in results[1:]] == ["summary", "summary"]
    assert count(app, CreditRecord) == 1


def test_a_correction_out_of_display_never_enters_a_list(app: Flask,
                                                        client: FlaskClient) -> None:
    """Corrected to a black-list item but dated past its display period: the record is archived
    at once, so partners must not be told it entered (and left) the black list."""
    headers = provider(app, client)
    record_id = push(client, headers, item(valid_id_number(112), "r"))[0]["id"]
    long_ago = (date.today() - timedelta(days=4 * 366)).isoformat()
    resp = client.patch(f"/v1/provider/records/{record_id}", json={
        "catalogue_code": "court.dishonest_debtor", "occurred_at": long_ago}, headers=headers)
    assert resp.status_code == 200 and resp.get_json()["status"] == "archived"
    assert count(app, ListEntry) == 0
    assert count(app, OutboxEvent, OutboxEvent.topic.like("list.%")) == 0
    assert count(app, OutboxEvent, OutboxEvent.topic == "record.corrected") == 1


def test_a_corrected_record_is_unchanged_when_pushed_again_as_corrected(
        app: Flask, client: FlaskClient) -> None:
    """The reference now stands for the corrected content: pushing that is a no-op, and pushing
    the content it replaced is other content, refused with the correction kept."""
    headers = provider(app, client)
    idn = valid_id_number(113)
    record_id = push(client, headers, item(idn, "r"))[0]["id"]
    assert client.patch(f"/v1/provider/records/{record_id}", json={"summary": "更正后"},
                        headers=headers).status_code == 200
    assert push(client, headers, item(idn, "r", summary="更正后"))[0] == {
        "ref": "r", "status": "unchanged", "id": record_id}
    stale = push(client, headers, item(idn, "r"))[0]
    assert stale["status"] == "rejected" and stale["problem"]["code"] == "duplicate_reference"
    got = client.get(f"/v1/provider/records/{record_id}", headers=headers).get_json()
    assert got["summary"] == "更正后"


def test_an_occurrence_time_with_an_offset_is_dated_in_china(app: Flask,
                                                            client: FlaskClient) -> None:
    """20:00 UTC is 04:00 the next day in China: the record's date (and so its display period)
    is the China date, whatever offset the provider's clock used."""
    headers = provider(app, client)
    day = date.today() - timedelta(days=20)
    results = push(client, headers,
                   item(valid_id_number(114), "utc", occurred=f"{day}T20:00:00Z"),
                   item(valid_id_number(114), "cst", occurred=f"{day}T20:00:00+08:00"),
                   item(valid_id_number(114), "naive", occurred=f"{day}T20:00:00"))
    dates = {r["ref"]: client.get(f"/v1/provider/records/{r['id']}",
                                  headers=headers).get_json()["occurred_at"] for r in results}
    assert dates == {"utc": (day + timedelta(days=1)).isoformat(), "cst": day.isoformat(),
                     "naive": day.isoformat()}


def test_a_correction_keeps_the_rules_the_record_was_recorded_under(
        app: Flask, client: FlaskClient) -> None:
    """A later catalogue edit never rewrites a record: correcting a typo in the summary must
    not quietly re-price it (only a corrected catalogue code takes the item's rules now)."""
    headers = provider(app, client)
    idn = valid_id_number(115)
    record_id = push(client, headers, item(idn, "r"))[0]["id"]
    before = client.get(f"/v1/provider/records/{record_id}", headers=headers).get_json()
    operator = staff_headers(app, client, "operator")
    assert client.patch("/v1/admin/catalogue/traffic.violation_minor",
                        json={"points": before["points"] - 40, "display_months": 24},
                        headers=operator).status_code == 200
    fixed = client.patch(f"/v1/provider/records/{record_id}", json={"summary": "更正后"},
                         headers=headers).get_json()
    assert (fixed["points"], fixed["display_until"]) == (before["points"],
                                                         before["display_until"])
    earlier = (date.fromisoformat(before["occurred_at"]) - timedelta(days=5)).isoformat()
    moved = client.patch(f"/v1/provider/records/{record_id}", json={"occurred_at": earlier},
                         headers=headers).get_json()
    assert moved["points"] == before["points"]
    assert moved["display_until"] == (date.fromisoformat(before["display_until"])
                                      - timedelta(days=5)).isoformat()
