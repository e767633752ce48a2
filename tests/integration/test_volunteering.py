"""Volunteers and service hours (志愿服务): registration, idempotent posts, the rules that
refuse a post (each named), retraction, and how hours count towards the score."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import (
    api_client_headers,
    bearer,
    count,
    login,
    register_citizen,
    staff_headers,
)
from xinyi.timeutil import CHINA
from xinyi.volunteering.models import ServiceRecord, Volunteer


def orgs(app: Flask, client: FlaskClient, n: int = 1) -> list[dict[str, str]]:
    operator = staff_headers(app, client, "operator")
    return [api_client_headers(client, operator, "orgs")[0] for _ in range(n)]


def citizen(client: FlaskClient) -> tuple[dict[str, Any], dict[str, str]]:
    person = register_citizen(client)
    return person, bearer(login(client, person["phone"])["access_token"])


def register(client: FlaskClient, org: dict[str, str], id_number: str) -> dict[str, Any]:
    resp = client.post("/v1/org/volunteers", headers=org,
                       json={"id_number": id_number, "name": "测试公民"})
    assert resp.status_code in (200, 201), resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def at(days_ago: int, hour: int, minute: int = 0) -> str:
    day = datetime.now(CHINA).date() - timedelta(days=days_ago)
    return datetime.combine(day, time(hour, minute), CHINA).isoformat()


def post(client: FlaskClient, org: dict[str, str], id_number: str, ref: str, start: str,
         end: str, name: str = "社区服务") -> Any:
    return client.post("/v1/org/service-records", headers=org, json={
        "id_number": id_number, "activity_ref": ref, "activity_name": name,
        "started_at": start, "ended_at": end})


def refused(resp: Any, status: int, code: str) -> None:
    assert resp.status_code == status, resp.get_json()
    assert resp.get_json()["code"] == code
    assert resp.headers["Content-Type"] == "application/problem+json"


def test_org_registers_lists_and_removes_and_the_citizen_sees_and_leaves(
        app: Flask, client: FlaskClient) -> None:
    [org] = orgs(app, client)
    person, me = citizen(client)
    created = register(client, org, person["id_number"])
    assert created["id_number"] != person["id_number"] and "*" in created["id_number"]
    assert client.post("/v1/org/volunteers", headers=org, json={
        "id_number": person["id_number"], "name": "测试公民"}).status_code == 200
    listed = client.get("/v1/org/volunteers", headers=org).get_json()
    assert [v["id"] for v in listed["items"]] == [created["id"]]
    mine = client.get("/v1/me/volunteer-organisations", headers=me).get_json()["items"]
    assert len(mine) == 1
    assert client.delete(f"/v1/me/volunteer-organisations/{mine[0]['org_id']}",
                         headers=me).status_code == 204
    assert client.get("/v1/me/volunteer-organisations", headers=me).get_json()["items"] == []
    # Having left, no more hours can be posted for them.
    refused(post(client, org, person["id_number"], "a-1", at(1, 9), at(1, 10)), 422,
            "volunteer_not_registered")
    register(client, org, person["id_number"])
    assert client.delete(f"/v1/org/volunteers/{created['id']}", headers=org).status_code == 204
    assert client.get("/v1/org/volunteers", headers=org).get_json()["items"] == []
    assert count(app, Volunteer) == 1  # kept, inactive


def test_the_same_post_twice_is_one_record_and_another_body_under_its_ref_is_409(
        app: Flask, client: FlaskClient) -> None:
    [org] = orgs(app, client)
    person, _ = citizen(client)
    register(client, org, person["id_number"])
    first = post(client, org, person["id_number"], "act-1", at(2, 9), at(2, 12))
    assert first.status_code == 201 and first.get_json()["minutes"] == 180
    again = post(client, org, person["id_number"], "act-1", at(2, 9), at(2, 12))
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
    refused(post(client, org, person["id_number"], "act-1", at(2, 9), at(2, 13)), 409,
            "activity_ref_reused")
    assert count(app, ServiceRecord) == 1


def test_each_rule_refuses_with_its_name_and_writes_nothing(
        app: Flask, client: FlaskClient) -> None:
    org, other = orgs(app, client, 2)
    person, _ = citizen(client)
    idn = person["id_number"]
    refused(post(client, org, idn, "r-0", at(1, 9), at(1, 10)), 422, "volunteer_not_registered")
    register(client, org, idn)
    register(client, other, idn)
    assert post(client, org, idn, "r-1", at(3, 8), at(3, 16)).status_code == 201
    before = count(app, ServiceRecord)
    # Overlapping accepted service at another organisation.
    refused(post(client, other, idn, "o-1", at(3, 15), at(3, 17)), 422, "service_overlaps")
    # More than 12 hours in one China day (8 accepted + 5 more that day).
    refused(post(client, other, idn, "o-2", at(3, 17), at(3, 22)), 422, "daily_hours_exceeded")
    # The future, and more than 90 days ago.
    future = datetime.now(UTC) + timedelta(hours=2)
    refused(post(client, org, idn, "r-2", (future - timedelta(hours=1)).isoformat(),
                 future.isoformat()), 422, "service_in_future")
    refused(post(client, org, idn, "r-3", at(91, 9), at(91, 10)), 422, "service_too_old")
    refused(post(client, org, idn, "r-4", at(5, 10), at(5, 9)), 422, "validation_error")
    assert count(app, ServiceRecord) == before
    # Exactly 12 hours in a day is allowed: 8 + 4.
    assert post(client, other, idn, "o-3", at(3, 17), at(3, 21)).status_code == 201


def test_retraction_within_seven_days_with_a_reason(app: Flask, client: FlaskClient) -> None:
    [org] = orgs(app, client)
    person, me = citizen(client)
    register(client, org, person["id_number"])
    made = post(client, org, person["id_number"], "x-1", at(1, 9), at(1, 14)).get_json()
    assert client.post(f"/v1/org/service-records/{made['id']}/retract", headers=org,
                       json={}).status_code == 422  # the reason is required
    done = client.post(f"/v1/org/service-records/{made['id']}/retract", headers=org,
                       json={"reason": "登记错误"})
    assert done.status_code == 200 and done.get_json()["status"] == "retracted"
    refused(client.post(f"/v1/org/service-records/{made['id']}/retract", headers=org,
                        json={"reason": "again"}), 409, "already_retracted")
    hours = client.get("/v1/me/service-hours", headers=me).get_json()
    assert hours["total_hours"] == 0 and hours["records"][0]["status"] == "retracted"
    late = post(client, org, person["id_number"], "x-2", at(2, 9), at(2, 10)).get_json()
    app.extensions["xinyi"].clock = lambda: datetime.now(UTC) + timedelta(days=7, minutes=1)
    refused(client.post(f"/v1/org/service-records/{late['id']}/retract", headers=org,
                        json={"reason": "太晚"}), 409, "retraction_window_closed")


def test_hours_add_one_point_per_full_hour_up_to_the_yearly_cap(
        app: Flask, client: FlaskClient) -> None:
    [org] = orgs(app, client)
    person, me = citizen(client)
    register(client, org, person["id_number"])
    today = datetime.now(CHINA).date()
    # 5 days of 11.5 hours, all this calendar year when possible (days back within January).
    days = [d for d in range(1, 60) if (today - timedelta(days=d)).year == today.year][:5]
    for i, d in enumerate(days[:1]):
        assert post(client, org, person["id_number"], f"h-{i}", at(d, 8),
                    at(d, 19, 30)).status_code == 201
    credit = client.get("/v1/me/credit", headers=me).get_json()
    expected = 11 if days else 0
    assert credit["hours_bonus"] == expected and credit["score"] == 600 + expected
    for i, d in enumerate(days[1:], start=1):
        post(client, org, person["id_number"], f"h-{i}", at(d, 8), at(d, 19, 30))
    hours = client.get("/v1/me/service-hours", headers=me).get_json()
    cap = hours["yearly_cap_points"]
    assert hours["score_points_this_year"] == min(cap, int(len(days) * 11.5))
    credit = client.get("/v1/me/credit", headers=me).get_json()
    assert credit["hours_bonus"] == hours["score_points_this_year"]
    assert credit["score"] == 600 + credit["hours_bonus"]


def test_the_stored_score_sums_the_hours_bonus_like_the_explanation(
        app: Flask, client: FlaskClient) -> None:
    from sqlalchemy import select

    from xinyi.pii import IdNumber
    from xinyi.scoring.models import CreditScore
    from xinyi.subjects.service import subject_bidx

    [org] = orgs(app, client)
    person, me = citizen(client)
    register(client, org, person["id_number"])
    today = datetime.now(CHINA).date()
    back = 1 if (today - timedelta(days=1)).year == today.year else 0
    assert post(client, org, person["id_number"], "s-1", at(back, 0, 0) if back else at(0, 0),
                at(back, 7, 45) if back else at(0, 0, 30)).status_code == 201
    deps = app.extensions["xinyi"]
    bidx = subject_bidx(deps, IdNumber.parse(person["id_number"]))
    with deps.db.session() as s:
        stored = s.scalar(select(CreditScore.score).where(CreditScore.subject_bidx == bidx))
    credit = client.get("/v1/me/credit", headers=me).get_json()
    assert stored == credit["score"] == 600 + credit["hours_bonus"]
    assert credit["hours_bonus"] == (7 if back else 0)


def test_a_new_year_takes_last_years_hours_bonus_out_of_the_stored_score(
        app: Flask, client: FlaskClient) -> None:
    from sqlalchemy import select

    from xinyi.pii import IdNumber
    from xinyi.scoring.models import CreditScore
    from xinyi.subjects.service import subject_bidx
    from xinyi.worker import rescore_new_year

    [org] = orgs(app, client)
    person, me = citizen(client)
    _other, _ = citizen(client)  # a score without hours: not computed again
    register(client, org, person["id_number"])
    today = datetime.now(CHINA).date()
    back = 1 if (today - timedelta(days=1)).year == today.year else 0
    assert post(client, org, person["id_number"], "y-1", at(back, 8), at(back, 11)).status_code \
        == 201
    deps = app.extensions["xinyi"]
    bidx = subject_bidx(deps, IdNumber.parse(person["id_number"]))

    def stored() -> int | None:
        with deps.db.session() as s:
            return s.scalar(select(CreditScore.score).where(CreditScore.subject_bidx == bidx))

    with_bonus = stored()
    assert with_bonus == 603
    assert rescore_new_year(deps) == "rescore_new_year: 0 scores"  # the same year: nothing
    new_year = datetime(today.year + 1, 1, 1, 0, 5, tzinfo=CHINA)
    deps.clock = lambda: new_year
    assert rescore_new_year(deps) == "rescore_new_year: 1 scores"
    assert stored() == 600
    assert rescore_new_year(deps) == "rescore_new_year: 0 scores"  # idempotent
    assert client.get("/v1/me/credit", headers=me).get_json()["hours_bonus"] == 0
