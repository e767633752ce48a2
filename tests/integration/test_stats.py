"""The credit office's statistics (R13): every figure exactly, from known data; the cache of
five minutes; the districts' populations (validated, operators only); and no person in the
answer."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from tests.factories import (
    api_client_headers,
    citizen_headers,
    count,
    register_citizen,
    staff_headers,
    valid_id_number,
)
from xinyi.adapters.models import AdapterRecord
from xinyi.audit.models import StaffAction
from xinyi.audit.service import Access, append, staff_read
from xinyi.benefits.models import BenefitSession
from xinyi.credentials.models import Verification
from xinyi.deps import Deps
from xinyi.disputes.models import Dispute
from xinyi.pii import IdNumber
from xinyi.repairs.models import RepairApplication
from xinyi.scoring.service import recompute_subjects
from xinyi.stats.models import District
from xinyi.stats.service import CACHE_KEY, compute
from xinyi.subjects.service import ensure_subject, subjects_table
from xinyi.timeutil import CHINA, china_today

A, B, C = "110101", "310104", "120101"  # two districts, and one of a subject stored before


@dataclass
class World:
    operator: dict[str, str]
    auditor: dict[str, str]
    ids: dict[str, str]
    bidx: dict[str, bytes]
    today: date
    verified_on: dict[str, date]


def _push(client: FlaskClient, provider: dict[str, str], id_number: str, n: int) -> list[str]:
    day = (date.today() - timedelta(days=20)).isoformat()
    resp = client.post("/v1/provider/records:batch", headers=provider, json={"records": [
        {"ref": f"s-{uuid.uuid4().hex[:10]}", "id_number": id_number,
         "catalogue_code": "utility.unpaid_bill", "summary": "欠费", "occurred_at": day}
        for _ in range(n)]})
    results = resp.get_json()["results"]
    assert [r["status"] for r in results] == ["created"] * n, results
    return [str(r["id"]) for r in results]


def _china(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=CHINA).astimezone(UTC)


def world(app: Flask, client: FlaskClient) -> World:
    """Seven people: four in district A (three scored), two in B (one scored), one scored
    subject stored before districts were kept; records, verifications on two days, benefit
    sessions, repairs and objections, some decided late."""
    deps: Deps = app.extensions["xinyi"]
    operator = staff_headers(app, client, "operator")
    auditor = staff_headers(app, client, "auditor")
    provider, provider_row = api_client_headers(client, operator, "providers")
    _, partner_row = api_client_headers(client, operator, "partners", kind="library")
    provider_id, partner_id = uuid.UUID(provider_row["id"]), uuid.UUID(partner_row["id"])
    ids = {name: valid_id_number(7300 + n, region=region) for n, (name, region) in enumerate(
        [("a1", A), ("a2", A), ("a3", A), ("a4", A), ("b1", B), ("b2", B), ("c1", C)])}
    register_citizen(client, id_number=ids["a1"])  # registration stores and scores a1
    records = _push(client, provider, ids["a2"], 4)  # so does a provider's push, for a2
    now = deps.clock()
    today = china_today(now)
    with deps.db.session() as s:
        bidx = {name: ensure_subject(s, deps, IdNumber.parse(idn), now)
                for name, idn in ids.items()}
        recompute_subjects(s, [bidx["a3"], bidx["b1"], bidx["c1"]], now=now, today=today)
        table = subjects_table()
        s.execute(update(table).where(table.c.bidx == bidx["c1"]).values(district=None))
        staff_read(s, [bidx["a2"]], staff_id=uuid.uuid4(), role="operator",
                   action="list_review", scope="lists", purpose="测试", now=now)

        # Verifications: two eligible and one standard_terms yesterday, three eligible today,
        # and one 40 days ago (outside the 30 days shown).
        verified_on: dict[str, date] = {}
        for name, decision, at in [
                ("e1", "eligible", now - timedelta(days=1)),
                ("e2", "eligible", now - timedelta(days=1)),
                ("s1", "standard_terms", now - timedelta(days=1)),
                ("e3", "eligible", now), ("e4", "eligible", now), ("e5", "eligible", now),
                ("old", "eligible", now - timedelta(days=40))]:
            s.add(Verification(id=uuid.uuid5(uuid.NAMESPACE_URL, name + str(now)),
                               partner_id=partner_id, credential_jti=f"jti-{name}",
                               subject_bidx=bidx["a3"], benefit_code="library.deposit_free",
                               decision=decision, response={}, created_at=at))
            verified_on[name] = china_today(at)
        s.flush()

        def session(name: str, code: str, kind: str, state: str, amount: int, waived: int,
                    **extra: Any) -> BenefitSession:
            return BenefitSession(
                verification_id=uuid.uuid5(uuid.NAMESPACE_URL, name + str(now)),
                partner_id=partner_id, subject_bidx=bidx["a3"], benefit_code=code, kind=kind,
                state=state, amount_fen=amount, waived_fen=waived,
                charge_normally_fen=amount - waived, due_at=now, original_due_at=now,
                reference=name, created_at=now, **extra)

        s.add_all([
            session("e1", "library.deposit_free", "library", "fulfilled", 5000, 5000,
                    closed_at=now),
            session("e2", "library.deposit_free", "library", "cancelled", 3000, 3000),
            session("e3", "library.deposit_free", "library", "recorded", 2000, 1500,
                    defaulted_at=now, recorded_at=now, amount_owed_fen=1500),
            session("e5", "library.deposit_free", "library", "defaulted", 1000, 1000,
                    defaulted_at=now, grace_until=now + timedelta(days=7),
                    amount_owed_fen=1000),
            session("e4", "bike.deposit_free", "bike", "settled", 29900, 29900,
                    defaulted_at=now, settled_at=now, amount_owed_fen=29900),
        ])

        # Scenic entries have no session: a discounted one is a benefit used, one on
        # standard terms (nothing waived) is not.
        s.add_all([AdapterRecord(
            kind="scenic", partner_id=partner_id, decision=decision, status="closed",
            reference=f"entry-{waived}", amount_fen=10000, waived_fen=waived,
            charge_normally_fen=10000 - waived, details={}, created_at=now, closed_at=now)
            for decision, waived in (("eligible", 2000), ("standard_terms", 0))])

        # Repairs (3 working days): one decided on time, one decided at 00:30 China time the
        # day after its due date (still the due date in UTC: late), two pending, one past due.
        due = today - timedelta(days=7)

        def repair(record: str, status: str, due_on: date,
                   decided_at: datetime | None) -> RepairApplication:
            return RepairApplication(
                subject_bidx=bidx["a2"], record_id=uuid.UUID(record), provider_id=provider_id,
                catalogue_code="utility.unpaid_bill", basis="charity", status=status,
                received_on=due_on - timedelta(days=3), due_on=due_on, decided_at=decided_at,
                decision_reason=None if decided_at is None else "审核意见")

        s.add_all([
            repair(records[0], "approved", due, _china(due, 23, 30)),
            repair(records[1], "rejected", due, _china(due + timedelta(days=1), 0, 30)),
            repair(records[2], "pending", today - timedelta(days=1), None),
            repair(records[3], "pending", today + timedelta(days=2), None),
        ])

        # Objections (15 working days): corrected and deleted on time, upheld late, two open,
        # one of them past its due date.
        def dispute(record: str, status: str, due_on: date,
                    resolved_at: datetime | None) -> Dispute:
            return Dispute(
                subject_bidx=bidx["a2"], record_id=uuid.UUID(record), provider_id=provider_id,
                catalogue_code="utility.unpaid_bill", reason="理由", status=status,
                filed_at=now, received_on=due_on - timedelta(days=20), due_on=due_on,
                resolved_at=resolved_at,
                resolved_by_kind=None if resolved_at is None else "provider",
                resolved_by_id=None if resolved_at is None else provider_id,
                resolution_reason=None if resolved_at is None else "处理意见")

        s.add_all([
            dispute(records[0], "corrected", due, _china(due, 9)),
            dispute(records[1], "deleted", due, _china(due - timedelta(days=2), 9)),
            dispute(records[2], "upheld", due, _china(due + timedelta(days=3), 9)),
            dispute(records[0], "open", today - timedelta(days=2), None),
            dispute(records[3], "open", today, None),
        ])
        s.commit()
    return World(operator, auditor, ids, bidx, today, verified_on)


def put_district(client: FlaskClient, headers: dict[str, str], code: str,
                 body: dict[str, Any]) -> Any:
    return client.put(f"/v1/admin/districts/{code}", json=body, headers=headers)


def stats(client: FlaskClient, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    resp = client.get(f"/v1/admin/stats{query}", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def test_every_figure_is_counted_exactly(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    assert put_district(client, w.operator, A, {"name": "东城区", "resident_population": 4}
                        ).status_code == 200
    assert put_district(client, w.operator, "370102", {"name": "历下区",
                                                       "resident_population": 10}
                        ).status_code == 200
    body = stats(client, w.auditor)

    assert body["citizens_covered"] == 7
    assert body["registered_citizens"] == 1
    assert body["records_by_domain_and_severity"] == [
        {"domain": "公共事业", "severity": "minor", "polarity": "negative", "records": 4}]
    assert body["queries_per_day"] == [{"date": str(w.today), "queries": 1}]
    yesterday, today = str(w.verified_on["e1"]), str(w.verified_on["e3"])
    assert body["verifications_per_day"] == [
        {"date": yesterday, "decision": "eligible", "verifications": 2},
        {"date": yesterday, "decision": "standard_terms", "verifications": 1},
        {"date": today, "decision": "eligible", "verifications": 3},
    ]
    assert body["coverage"] == {
        "target": 0.7, "resident_population": 14, "scored": 3, "coverage": 0.2143,
        "meets_target": False, "scored_without_population": 1, "scored_district_unknown": 1,
        "districts": [
            {"code": A, "name": "东城区", "resident_population": 4, "scored": 3,
             "coverage": 0.75, "meets_target": True},
            {"code": B, "name": None, "resident_population": None, "scored": 1,
             "coverage": None, "meets_target": None},
            {"code": "370102", "name": "历下区", "resident_population": 10, "scored": 0,
             "coverage": 0.0, "meets_target": False},
        ]}
    assert body["benefits"] == [
        {"benefit_code": "bike.deposit_free", "partner_kind": "bike", "opened": 1,
         "fulfilled": 0, "cancelled": 0, "amount_fen": 29900, "waived_fen": 29900},
        {"benefit_code": "library.deposit_free", "partner_kind": "library", "opened": 4,
         "fulfilled": 1, "cancelled": 1, "amount_fen": 8000, "waived_fen": 7500},
        {"benefit_code": "scenic.discount", "partner_kind": "scenic", "opened": 1,
         "fulfilled": 1, "cancelled": 0, "amount_fen": 10000, "waived_fen": 2000},
    ]
    assert body["defaults"] == {"defaulted": 3, "in_grace": 1, "settled": 1, "recorded": 1}
    assert body["repairs"] == {"requested": 4, "pending": 2, "approved": 1, "rejected": 1}
    assert body["objections"] == {"filed": 5, "open": 2, "corrected": 1, "deleted": 1,
                                  "upheld": 1}
    assert body["deadlines"] == [
        {"kind": "repairs", "decided": 2, "decided_on_time": 1, "on_time_share": 0.5,
         "open": 2, "open_past_due": 1},
        {"kind": "disputes", "decided": 3, "decided_on_time": 2, "on_time_share": 0.6667,
         "open": 2, "open_past_due": 1},
        {"kind": "decision_reviews", "decided": 0, "decided_on_time": 0, "on_time_share": None,
         "open": 0, "open_past_due": 0},
    ]
    assert datetime.fromisoformat(body["as_of"]).tzinfo is not None


def test_the_answer_names_no_one(app: Flask, client: FlaskClient) -> None:
    w = world(app, client)
    text = json.dumps(stats(client, w.auditor), ensure_ascii=False)
    for name, idn in w.ids.items():
        assert idn not in text and idn[-12:] not in text, name
        assert w.bidx[name].hex() not in text and w.bidx[name].hex()[:16] not in text, name
    assert "测试公民" not in text  # the registered citizen's name
    assert not re.search(r"\d{17}[\dX]", text)
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", text)
    assert "ps_" not in text and "jti-" not in text
    # Only counts and codes: no field anywhere that could carry someone.
    keys: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            keys.update(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(text))
    assert not keys & {"id", "subject", "bidx", "name_enc", "id_number", "phone", "pseudonym",
                       "subject_bidx", "account_id"}


def test_figures_are_cached_for_five_minutes(app: Flask, client: FlaskClient,
                                             redis_client: redis.Redis) -> None:
    deps: Deps = app.extensions["xinyi"]
    auditor = staff_headers(app, client, "auditor")
    first = stats(client, auditor)
    assert redis_client.ttl(CACHE_KEY) in range(290, 301)
    register_citizen(client)  # a change within the five minutes
    cached = stats(client, auditor)
    assert cached == first
    assert stats(client, auditor, "?refresh=true")["citizens_covered"] == \
        first["citizens_covered"] + 1
    # Five minutes later (the entry has expired: cleared here, never slept for).
    register_citizen(client)
    redis_client.delete(CACHE_KEY)
    later = stats(client, auditor)
    assert later["citizens_covered"] == first["citizens_covered"] + 2
    assert later["registered_citizens"] == first["registered_citizens"] + 2
    assert datetime.fromisoformat(later["as_of"]) > datetime.fromisoformat(first["as_of"])
    # A cache entry another version wrote is computed again, not a 500.
    redis_client.set(CACHE_KEY, b'{"as_of": 1}', ex=300)
    assert stats(client, auditor)["citizens_covered"] == later["citizens_covered"]
    del deps


def test_a_population_set_is_seen_at_once(app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    idn = valid_id_number(7401, region=B)
    register_citizen(client, id_number=idn)
    before = stats(client, operator)["coverage"]
    assert before["districts"] == [{"code": B, "name": None, "resident_population": None,
                                    "scored": 1, "coverage": None, "meets_target": None}]
    assert (before["coverage"], before["meets_target"], before["resident_population"]) == (
        None, None, None)
    assert put_district(client, operator, B, {"name": "徐汇区", "resident_population": 1}
                        ).status_code == 200
    after = stats(client, operator)["coverage"]  # the cached figures were dropped
    assert after["districts"][0]["coverage"] == 1.0 and after["meets_target"] is True
    # Unset again (null): no division, coverage null.
    resp = put_district(client, operator, B, {"name": "徐汇区", "resident_population": None})
    assert resp.status_code == 200 and resp.get_json()["resident_population"] is None
    assert stats(client, operator)["coverage"]["districts"][0]["coverage"] is None


def test_districts_are_listed_and_each_change_logged(app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    for code, name, population in [("370102", "历下区", 800_000), (A, "东城区", 700_000)]:
        resp = put_district(client, operator, code, {"name": name,
                                                     "resident_population": population})
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["code"] == code
    put_district(client, operator, A, {"name": "东城区", "resident_population": 710_000})
    page = client.get("/v1/admin/districts?page_size=1",
                      headers=staff_headers(app, client, "reviewer")).get_json()
    assert page["meta"]["total"] == 2
    assert [(d["code"], d["resident_population"]) for d in page["items"]] == [(A, 710_000)]
    logged = count(app, StaffAction, StaffAction.target == f"district:{A}")
    assert logged == 2


def test_bad_codes_and_populations_are_refused_and_write_nothing(
        app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    good = {"name": "东城区", "resident_population": 700_000}
    for code in ("11010", "1101011", "990101", "00000a", "11010x", "１１０１０１"):
        resp = put_district(client, operator, code, good)
        assert resp.status_code == 422, (code, resp.get_json())
        assert resp.get_json()["errors"][0]["field"] == "code", code
    for body, field in [({**good, "resident_population": -1}, "resident_population"),
                        ({**good, "resident_population": 0}, "resident_population"),
                        ({**good, "resident_population": 1.5}, "resident_population"),
                        ({**good, "resident_population": "7"}, "resident_population"),
                        ({**good, "resident_population": 300_000_000}, "resident_population"),
                        ({"resident_population": 5}, "name"),
                        ({**good, "name": ""}, "name"),
                        ({**good, "name": "x" * 101}, "name"),
                        ({**good, "name": " 东城区"}, "name"),
                        ({**good, "name": "东城\n区"}, "name"),
                        ({"name": "东城区"}, "resident_population"),
                        ({**good, "district": A}, "district")]:
        resp = put_district(client, operator, A, body)
        assert resp.status_code == 422, (body, resp.get_json())
        assert resp.get_json()["code"] == "validation_error"
        assert [e["field"] for e in resp.get_json()["errors"]] == [field], body
    assert count(app, District) == 0 and count(app, StaffAction) == 0


def test_only_staff_read_and_only_operators_set(app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    partner, _ = api_client_headers(client, operator, "partners")
    body = {"name": "东城区", "resident_population": 7}
    for headers in (citizen_headers(client), partner):
        assert client.get("/v1/admin/stats", headers=headers).status_code == 403
        assert client.get("/v1/admin/districts", headers=headers).status_code == 403
        assert put_district(client, headers, A, body).status_code == 403
    for role in ("reviewer", "auditor"):
        headers = staff_headers(app, client, role)
        assert client.get("/v1/admin/stats", headers=headers).status_code == 200
        resp = put_district(client, headers, A, body)
        assert (resp.status_code, resp.get_json()["code"]) == (403, "forbidden")
    assert client.get("/v1/admin/stats").status_code == 401
    assert count(app, District) == 0


def test_the_days_shown_are_whole_china_days(app: Flask, client: FlaskClient) -> None:
    """The last 30 days are 30 whole calendar days in Asia/Shanghai: the oldest day shown is
    never a partial count cut at the current time of day."""
    now = datetime(2024, 3, 31, 12, 0, tzinfo=CHINA).astimezone(UTC)
    deps: Deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        bidx = ensure_subject(s, deps, IdNumber.parse(valid_id_number(7420)), now)
        for when in (datetime(2024, 3, 1, 10, 0), datetime(2024, 3, 1, 14, 0),
                     datetime(2024, 3, 2, 0, 30), datetime(2024, 3, 31, 8, 0)):
            append(s, Access(bidx, "partner", "p-1", "图书馆", "report", "report.summary", "x"),
                   now=when.replace(tzinfo=CHINA).astimezone(UTC))
        s.flush()
        per_day = compute(s, now=now).queries_per_day
    assert [(d.date, d.queries) for d in per_day] == [("2024-03-02", 1), ("2024-03-31", 1)]


def test_a_subject_stored_before_districts_gets_one_when_seen_again(
        app: Flask, client: FlaskClient) -> None:
    deps: Deps = app.extensions["xinyi"]
    idn = valid_id_number(7430, region=C)
    with deps.db.session() as s:
        bidx = ensure_subject(s, deps, IdNumber.parse(idn), deps.clock())
        recompute_subjects(s, [bidx], now=deps.clock(), today=china_today(deps.clock()))
        table = subjects_table()
        s.execute(update(table).where(table.c.bidx == bidx).values(district=None))
        s.commit()
    auditor = staff_headers(app, client, "auditor")
    assert stats(client, auditor)["coverage"]["scored_district_unknown"] == 1
    register_citizen(client, id_number=idn)  # the same person registers: seen again
    coverage = stats(client, auditor, "?refresh=true")["coverage"]
    assert coverage["scored_district_unknown"] == 0
    assert [(d["code"], d["scored"]) for d in coverage["districts"]] == [(C, 1)]
