"""Automated decisions explained (自动化决策说明) and their human review (人工复核): every kind
is listed with its rule and inputs, to its citizen only; a review is asked for once per
decision, queued with a 15 working-day deadline, decided once, and read by the citizen."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import api_client_headers, bearer, count, login, register_citizen
from tests.integration.test_benefit_sessions import World
from xinyi.alerts.models import StaffAlert
from xinyi.audit.models import AccessLogEntry, StaffAction
from xinyi.decisions.models import DecisionReview
from xinyi.notifications.models import Notification
from xinyi.worker import flag_overdue_cases

DECISIONS = "/v1/me/decisions"


class Citizen:
    """A citizen of the world, with a provider to push their records."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.person = register_citizen(w.client)
        self.headers = bearer(login(w.client, self.person["phone"])["access_token"])
        account = w.client.get("/v1/me", headers=self.headers).get_json()["id"]
        self.account_id = uuid.UUID(account)
        from xinyi.citizens.service import citizen_bidx

        with w.deps.db.session() as s:
            self.bidx = citizen_bidx(s, uuid.UUID(account))

    def push(self, provider: dict[str, str], code: str, on: date) -> str:
        resp = self.w.client.post("/v1/provider/records:batch", headers=provider, json={
            "records": [{"ref": f"r-{uuid.uuid4().hex[:10]}",
                         "id_number": self.person["id_number"], "catalogue_code": code,
                         "summary": "测试记录", "occurred_at": on.isoformat()}]})
        [result] = resp.get_json()["results"]
        assert result["status"] == "created", result
        return str(result["id"])

    def decisions(self, **query: Any) -> dict[str, Any]:
        resp = self.w.client.get(DECISIONS, headers=self.headers,
                                 query_string={"page_size": 100, **query})
        assert resp.status_code == 200, resp.get_json()
        body: dict[str, Any] = resp.get_json()
        return body

    def review(self, decision_id: str, reason: str = "我认为该决定有误") -> Any:
        return self.w.client.post(f"{DECISIONS}/{decision_id}/review", headers=self.headers,
                                  json={"reason": reason})


def provider(w: World) -> dict[str, str]:
    headers, _ = api_client_headers(w.client, w.operator, "providers")
    return headers


def staff(w: World, role: str) -> dict[str, str]:
    from tests.factories import staff_headers

    return staff_headers(w.app, w.client, role)


def by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["id"]: d for d in body["items"]}


def test_every_kind_of_decision_is_listed_with_its_rule_and_inputs(
        app: Flask, client: FlaskClient) -> None:
    w = World(app, client)
    partner, _, partner_name = w.partner("library")
    me, other = Citizen(w), Citizen(w)  # logged in now: the test's clock moves on
    opened = w.opened(partner, me.headers)  # an eligible answer, then a session due in 14 days
    verification_id = w.client.get(f"/v1/partner/benefit-sessions/{opened['id']}",
                                   headers=partner).get_json()["verification_id"]
    w.advance(days=15)
    w.sweep()  # overdue
    w.advance(days=30)
    w.sweep()  # defaulted by itself, 31 days after the due date
    w.advance(days=8)
    w.sweep()  # the grace is over: a minor default record (-5: 600 → 595, tier A → B)
    w.advance(hours=1)
    record = me.push(provider(w), "exam.cheating", w.now.date() - timedelta(days=3))

    body = me.decisions()
    items = by_id(body)
    assert {d["kind"] for d in body["items"]} == {
        "score_change", "tier_change", "eligibility", "session_outcome", "list_entry"}
    times = [d["decided_at"] for d in body["items"]]
    assert times == sorted(times, reverse=True)  # newest first
    assert body["meta"]["total"] == len(body["items"])

    scores = [d for d in body["items"] if d["kind"] == "score_change"]
    assert [d["inputs"]["score_to"] for d in scores] == [495, 595, 600]
    first, latest = scores[-1], scores[0]
    assert first["outcome"] == "set" and first["inputs"]["score_from"] is None
    assert first["inputs"]["base"] == 600 and first["inputs"]["record_points"] == 0
    assert latest["outcome"] == "lowered" and latest["inputs"]["score_from"] == 595
    assert latest["inputs"]["record_points"] == -105 and latest["inputs"]["records_counted"] == 2
    assert latest["rule"]["code"] == "score.sum" and "600" in latest["rule"]["text_zh"]
    assert "495" in latest["summary_zh"]

    tiers = [d for d in body["items"] if d["kind"] == "tier_change"]
    assert [(t["inputs"]["tier_from"], t["inputs"]["tier_to"]) for t in tiers] == [
        ("B", "C"), ("A", "B")]
    tier = tiers[1]
    assert tier["outcome"] == "lowered" and tier["inputs"]["thresholds"]["A"] == 600
    assert tier["id"] == scores[1]["id"].replace("score_change", "tier_change")

    answer = items[f"eligibility:{verification_id}"]
    assert answer["outcome"] == "eligible"
    assert answer["rule"]["code"] == "benefit.library.deposit_free"
    assert answer["inputs"]["score"] == 600 and answer["inputs"]["min_score"] == 600
    assert answer["inputs"]["partner"] == partner_name and answer["inputs"]["inputs_recorded"]
    assert answer["inputs"]["black_listed"] is False

    overdue = items[f"session_outcome:{opened['id']}:overdue"]
    defaulted = items[f"session_outcome:{opened['id']}:defaulted"]
    recorded = items[f"session_outcome:{opened['id']}:recorded"]
    assert overdue["rule"]["code"] == "session.overdue"
    assert defaulted["inputs"]["days_after_due"] == 31
    assert defaulted["inputs"]["amount_owed_fen"] == opened["waived_fen"]
    assert defaulted["inputs"]["inferred_from_dates"] is False
    assert recorded["inputs"]["catalogue_code"] == "library.overdue_default"
    assert recorded["inputs"]["record_id"] is not None

    [listed] = [d for d in body["items"] if d["kind"] == "list_entry"]
    assert listed["outcome"] == "black" and listed["inputs"]["record_id"] == record
    assert listed["inputs"]["severity"] == "serious" and listed["inputs"]["legal_basis"]
    assert "黑名单" in listed["summary_zh"] and listed["rule"]["code"] == "list.black"

    only = me.decisions(kind="list_entry")["items"]
    assert [d["id"] for d in only] == [listed["id"]]
    one = w.client.get(f"{DECISIONS}/{defaulted['id']}", headers=me.headers)
    assert one.status_code == 200 and one.get_json() == defaulted

    theirs = other.decisions()
    assert [d["kind"] for d in theirs["items"]] == ["score_change"]  # their own first score
    assert not set(by_id(theirs)) & set(items)
    for decision_id in (listed["id"], answer["id"], overdue["id"], tier["id"]):
        seen = w.client.get(f"{DECISIONS}/{decision_id}", headers=other.headers)
        assert seen.status_code == 404 and seen.get_json()["code"] == "decision_not_found"
        asked = other.review(decision_id)
        assert asked.status_code == 404
    assert count(app, DecisionReview) == 0


def test_a_partners_own_default_is_not_the_systems_decision(
        app: Flask, client: FlaskClient) -> None:
    w = World(app, client)
    partner, _, _ = w.partner("library")
    me = Citizen(w)
    opened = w.opened(partner, me.headers)
    closed = w.call(partner, opened["id"], "close",
                    {"outcome": "defaulted", "amount_owed_fen": 500})
    assert closed.status_code == 200, closed.get_json()
    assert me.decisions(kind="session_outcome")["items"] == []


def test_review_then_queue_then_decide_and_the_citizen_reads_the_outcome(
        app: Flask, client: FlaskClient) -> None:
    w = World(app, client)
    reviewer, operator = staff(w, "reviewer"), w.operator
    me = Citizen(w)
    me.push(provider(w), "exam.cheating", w.now.date() - timedelta(days=3))
    [listed] = me.decisions(kind="list_entry")["items"]

    for bad in ({}, {"reason": ""}, {"reason": "x" * 2001}, {"reason": "ok", "extra": 1}):
        resp = w.client.post(f"{DECISIONS}/{listed['id']}/review", headers=me.headers, json=bad)
        assert resp.status_code == 422, bad
    assert count(app, DecisionReview) == 0

    asked = me.review(listed["id"], "该考试我未参加，请人工复核")
    assert asked.status_code == 201, asked.get_json()
    review = asked.get_json()
    assert review["status"] == "open" and review["decision_id"] == listed["id"]
    assert review["decision"]["inputs"]["legal_basis"] == listed["inputs"]["legal_basis"]
    again = me.review(listed["id"])
    assert again.status_code == 409 and again.get_json()["code"] == "review_open"
    assert count(app, DecisionReview) == 1

    assert w.client.get("/v1/admin/reviews", headers=operator).status_code == 403
    assert w.client.get("/v1/admin/reviews", headers=me.headers).status_code == 403
    reads_before = count(app, AccessLogEntry, AccessLogEntry.subject_bidx == me.bidx)
    queue = w.client.get("/v1/admin/reviews?status=open", headers=reviewer).get_json()
    [queued] = queue["items"]
    assert queued["id"] == review["id"] and queued["reason"] == "该考试我未参加，请人工复核"
    assert queued["decision"]["rule"]["code"] == "list.black"
    assert queued["decision"]["inputs"]["catalogue_code"] == "exam.cheating"
    number = me.person["id_number"]
    assert queued["subject"] == f"{number[:3]}{'*' * 11}{number[-4:]}"
    assert number not in str(queue) and me.person["name"] not in str(queue)
    assert count(app, AccessLogEntry, AccessLogEntry.subject_bidx == me.bidx) == reads_before + 1

    decide = f"/v1/admin/reviews/{review['id']}/decide"
    body = {"outcome": "changed", "reason": "经核实报送主体有误，已转异议程序更正"}
    assert w.client.post(decide, headers=operator, json=body).status_code == 403
    assert w.client.post(decide, headers=reviewer,
                         json={"outcome": "maybe", "reason": "x"}).status_code == 422
    done = w.client.post(decide, headers=reviewer, json=body)
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["status"] == "changed"
    twice = w.client.post(decide, headers=reviewer, json={"outcome": "confirmed", "reason": "再"})
    assert twice.status_code == 409 and twice.get_json()["code"] == "review_decided"
    with w.deps.db.session() as s:
        [action] = s.scalars(select(StaffAction).where(
            StaffAction.target == f"decision_review:{review['id']}")).all()
        assert (action.action, action.after["status"]) == ("decision_review.decide", "changed")

    [mine] = w.client.get("/v1/me/reviews", headers=me.headers).get_json()["items"]
    assert mine["status"] == "changed" and mine["outcome_reason"] == body["reason"]
    [shown] = me.decisions(kind="list_entry")["items"]
    assert shown["review"]["status"] == "changed"
    assert shown["review"]["outcome_reason"] == body["reason"]
    with w.deps.db.session() as s:
        templates = set(s.scalars(select(Notification.template).where(
            Notification.subject_bidx == me.bidx)))
    assert {"decision_review_received", "decision_review_decided"} <= templates
    # Decided, the decision may be reviewed again: one *open* review per decision.
    assert me.review(listed["id"], "补充新的材料").status_code == 201


def test_the_deadline_is_15_working_days_by_the_official_calendar(
        app: Flask, client: FlaskClient) -> None:
    w = World(app, client)
    me = Citizen(w)
    [first] = me.decisions()["items"]
    w.now = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)  # Wed 30 Sep 2026, 10:00 in Beijing
    review = me.review(first["id"]).get_json()
    # 1–7 Oct are the National Day holiday and Sat 10 Oct is worked: counted Monday to
    # Friday it would be 21 Oct.
    assert (review["received_on"], review["due_on"]) == ("2026-09-30", "2026-10-27")
    assert review["due_provisional"] is False


def test_an_overdue_review_raises_one_staff_alert(app: Flask, client: FlaskClient) -> None:
    w = World(app, client)
    reviewer = staff(w, "reviewer")
    me = Citizen(w)
    [first] = me.decisions()["items"]
    review = me.review(first["id"]).get_json()
    flag_overdue_cases(w.deps)
    assert count(app, StaffAlert) == 0
    w.advance(days=40)
    queue = w.client.get("/v1/admin/reviews?overdue=true", headers=reviewer).get_json()
    assert [r["id"] for r in queue["items"]] == [review["id"]] and queue["items"][0]["overdue"]
    flag_overdue_cases(w.deps)
    flag_overdue_cases(w.deps)
    alerts = w.client.get("/v1/admin/alerts", headers=w.operator).get_json()["items"]
    assert [(a["kind"], a["ref"]) for a in alerts] == [
        ("decision_review_overdue", f"decision_review:{review['id']}")]


def test_bad_ids_are_refused_and_write_nothing(app: Flask, client: FlaskClient) -> None:
    w = World(app, client)
    reviewer = staff(w, "reviewer")
    me = Citizen(w)
    [first] = me.decisions()["items"]
    some = uuid.uuid4()
    malformed = ["nope", "score_change:not-a-uuid", f"score_change:{str(some).upper()}",
                 f"session_outcome:{some}", f"session_outcome:{some}:bogus",
                 f"verdict:{some}", "x" * 500, first["id"] + ":extra", f" {first['id']}"]
    for bad in malformed:
        got = w.client.get(f"{DECISIONS}/{bad}", headers=me.headers)
        assert got.status_code == 422 and got.get_json()["code"] == "invalid_decision_id", bad
        assert got.get_json()["errors"][0]["field"] == "decision_id"
        assert me.review(bad).status_code == 422, bad
    unknown = [f"score_change:{some}", f"tier_change:{first['id'].split(':')[1]}",
               f"eligibility:{some}", f"list_entry:{some}", f"session_outcome:{some}:overdue"]
    for missing in unknown:
        got = w.client.get(f"{DECISIONS}/{missing}", headers=me.headers)
        assert got.status_code == 404 and got.get_json()["code"] == "decision_not_found", missing
        assert me.review(missing).status_code == 404, missing
    assert w.client.get(DECISIONS, headers=me.headers,
                        query_string={"kind": "verdict"}).status_code == 422
    resp = w.client.post(f"/v1/admin/reviews/{uuid.uuid4()}/decide", headers=reviewer,
                         json={"outcome": "confirmed", "reason": "x"})
    assert resp.status_code == 404 and resp.get_json()["code"] == "review_not_found"
    assert count(app, DecisionReview) == 0


def test_every_recompute_path_keeps_the_history_of_changed_scores_only(
        app: Flask, client: FlaskClient) -> None:
    from xinyi.scoring.models import CreditScore
    from xinyi.scoring.service import recompute_all, recompute_subject, score_history

    w = World(app, client)
    me = Citizen(w)
    w.advance(minutes=1)
    me.push(provider(w), "bravery.act", w.now.date() - timedelta(days=3))  # +60
    today = w.now.date()

    def history() -> list[tuple[int | None, int, int, int]]:
        with w.deps.db.session() as s:
            return [(c.score_from, c.score_to, c.record_points, c.records_counted)
                    for c in score_history(s, me.bidx)]

    def stored(score: int) -> None:
        with w.deps.db.session() as s:
            s.get(CreditScore, me.bidx).score = score  # type: ignore[union-attr]
            s.commit()

    assert history() == [(600, 660, 60, 1), (None, 600, 0, 0)]
    with w.deps.db.session() as s:
        recompute_all(s, now=w.now, today=today)
        recompute_subject(s, me.bidx, now=w.now, today=today)
        s.commit()
    assert len(history()) == 2  # nothing changed, nothing written
    w.advance(minutes=1)
    stored(640)
    with w.deps.db.session() as s:
        recompute_all(s, now=w.now, today=today)
        s.commit()
    assert history()[0] == (640, 660, 60, 1)
    w.advance(minutes=1)
    stored(650)
    with w.deps.db.session() as s:
        recompute_subject(s, me.bidx, now=w.now, today=today)
        s.commit()
    assert history()[0] == (650, 660, 60, 1) and len(history()) == 4


def test_reviews_for_the_export_and_the_deadline_counts(app: Flask, client: FlaskClient) -> None:
    from xinyi.decisions.service import deadline_compliance, export_reviews

    w = World(app, client)
    reviewer = staff(w, "reviewer")
    me, other = Citizen(w), Citizen(w)
    [first] = me.decisions()["items"]
    [theirs] = other.decisions()["items"]
    decided = me.review(first["id"], "第一次").get_json()
    late = other.review(theirs["id"], "第二次").get_json()
    assert w.client.post(f"/v1/admin/reviews/{decided['id']}/decide", headers=reviewer, json={
        "outcome": "confirmed", "reason": "计算无误"}).status_code == 200
    with w.deps.db.session() as s:
        [exported] = export_reviews(s, w.deps, me.account_id, me.bidx)
        counts = deadline_compliance(s, w.now.date() + timedelta(days=40))
    assert exported["id"] == decided["id"] and exported["status"] == "confirmed"
    assert exported["outcome_reason"] == "计算无误" and exported["decision"]["id"] == first["id"]
    assert late["id"] not in str(exported)
    assert (counts.decided, counts.decided_on_time, counts.open,
            counts.open_past_due) == (1, 1, 1, 1)


def test_the_queue_names_a_subject_whose_id_no_key_opens_by_reference_only(
        app: Flask, client: FlaskClient) -> None:
    from xinyi.subjects.models import Subject
    from xinyi.subjects.personal import SHREDDED

    w = World(app, client)
    reviewer = staff(w, "reviewer")
    bidx = uuid.uuid4().bytes * 2
    with w.deps.db.session() as s:
        # As closing an account leaves it: the key destroyed, the subject's copy wiped.
        s.add(Subject(bidx=bidx, id_number_enc=SHREDDED, first_seen_at=w.now))
        s.flush()
        s.add(DecisionReview(
            subject_bidx=bidx, decision_id=f"list_entry:{uuid.uuid4()}",
            decision_kind="list_entry", decision={}, reason="复核", status="open",
            requested_at=w.now, received_on=w.now.date(), due_on=w.now.date(),
            due_provisional=False))
        s.commit()
    [item] = w.client.get("/v1/admin/reviews", headers=reviewer).get_json()["items"]
    assert item["subject"] == f"account closed ({bidx.hex()[:8]}…)"
