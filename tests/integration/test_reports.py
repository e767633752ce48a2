"""Reports of dishonest behaviour (有奖举报): filing (bad input named, evidence as for repairs,
a per-citizen rate limit), triage by reviewers once, and the reporter's protection: who
reported is shown to reviewers only, never to the reported party, a provider, an event or
a log line."""

from __future__ import annotations

import dataclasses
import io
import json
import uuid
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import (
    CAPTURED_LOGS,
    api_client_headers,
    bearer,
    count,
    login,
    register_citizen,
    staff_headers,
)
from tests.integration.test_commitments import push
from xinyi.attachments.models import AttachmentLink
from xinyi.audit.models import AccessLogEntry, StaffAction
from xinyi.notifications.models import Notification
from xinyi.outbox.models import OutboxEvent
from xinyi.pii import mask_id_number, mask_phone
from xinyi.reports.models import DishonestyReport
from xinyi.reports.service import export_reports_filed

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40
USCC = "91110000600037341L"  # a valid unified social credit code (check character L)


@dataclass
class Citizen:
    person: dict[str, Any]
    headers: dict[str, str]

    @property
    def id_number(self) -> str:
        return str(self.person["id_number"])


def citizen(client: FlaskClient, name: str = "测试公民") -> Citizen:
    person = register_citizen(client, name=name)
    return Citizen(person, bearer(login(client, person["phone"])["access_token"]))


def upload(client: FlaskClient, me: dict[str, str]) -> str:
    resp = client.post("/v1/me/attachments", headers=me, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(PNG), "photo.png")})
    assert resp.status_code == 201, resp.get_json()
    return str(resp.get_json()["id"])


def person_report(id_number: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"reported_party": {"kind": "person", "id_number": id_number},
                            "facts": "2026年11月在本小区长期拖欠物业费并伪造缴费凭证"}
    body.update(overrides)
    return body


def file(client: FlaskClient, who: Citizen, body: dict[str, Any]) -> Any:
    return client.post("/v1/me/reports", headers=who.headers, json=body)


def test_a_report_is_filed_and_bad_input_is_named_and_writes_nothing(
        app: Flask, client: FlaskClient) -> None:
    reporter, reported = citizen(client), citizen(client)
    evidence = upload(client, reporter.headers)
    resp = file(client, reporter, person_report(reported.id_number, evidence=[evidence]))
    assert resp.status_code == 201, resp.get_json()
    made = resp.get_json()
    assert made["status"] == "pending" and made["outcome"] is None
    assert made["reported_party"]["id_number"] == mask_id_number(reported.id_number)
    assert [e["id"] for e in made["evidence"]] == [evidence]
    org = file(client, reporter, {"reported_party": {
        "kind": "organisation", "name": "某某物业服务有限公司",
        "unified_social_credit_code": USCC}, "facts": "虚假宣传"})
    assert org.status_code == 201
    assert org.get_json()["reported_party"]["unified_social_credit_code"] == USCC
    bad: list[tuple[dict[str, Any], str]] = [
        ({"reported_party": {"kind": "person", "id_number": reported.id_number}}, "facts"),
        (person_report(reported.id_number, facts="   "), "facts"),
        ({"reported_party": {"kind": "person"}, "facts": "x"}, "reported_party.id_number"),
        (person_report("110101199001011230"), "reported_party.id_number"),
        (person_report(reporter.id_number), "reported_party.id_number"),
        ({"reported_party": {"kind": "organisation", "name": "某公司",
                             "unified_social_credit_code": "91110000600037341A"},
          "facts": "x"}, "reported_party.unified_social_credit_code"),
        ({"reported_party": {"kind": "organisation"}, "facts": "x"}, "reported_party.name"),
        ({"reported_party": {"kind": "person", "id_number": reported.id_number,
                             "name": "张三"}, "facts": "x"}, "reported_party.name"),
        ({"reported_party": {"kind": "robot"}, "facts": "x"}, "reported_party.kind"),
        (person_report(reported.id_number, facts="字" * 5001), "facts"),
        (person_report(reported.id_number, evidence=[str(uuid.uuid4()) for _ in range(6)]),
         "evidence"),
        (person_report(reported.id_number, evidence=[upload(client, reported.headers)]),
         "evidence"),
    ]
    for body, field in bad:
        resp = file(client, reporter, body)
        assert resp.status_code == 422, (body, resp.get_json())
        assert field in [e["field"] for e in resp.get_json()["errors"]], resp.get_json()
    assert count(app, DishonestyReport) == 2
    assert count(app, AttachmentLink, AttachmentLink.case_kind == "report") == 1
    mine = client.get("/v1/me/reports", headers=reporter.headers).get_json()
    assert [r["id"] for r in mine["items"]] == [org.get_json()["id"], made["id"]]
    assert client.get("/v1/me/reports", headers=reported.headers).get_json()["items"] == []


def test_reports_are_rate_limited_per_citizen(app: Flask, client: FlaskClient) -> None:
    deps = app.extensions["xinyi"]
    deps.settings = dataclasses.replace(deps.settings, report_limit_per_citizen="2/hour")
    reporter, other, reported = citizen(client), citizen(client), citizen(client)
    assert file(client, reporter, {"reported_party": {"kind": "robot"},
                                   "facts": "x"}).status_code == 422  # not counted
    for _ in range(2):
        assert file(client, reporter, person_report(reported.id_number)).status_code == 201
    resp = file(client, reporter, person_report(reported.id_number))
    assert resp.status_code == 429 and resp.get_json()["code"] == "rate_limited"
    assert resp.mimetype == "application/problem+json" and int(resp.headers["Retry-After"]) > 0
    assert file(client, other, person_report(reported.id_number)).status_code == 201
    assert count(app, DishonestyReport) == 3


@dataclass
class Triage:
    reviewer: dict[str, str]
    operator: dict[str, str]
    provider: dict[str, str]
    provider_id: str


def triage(app: Flask, client: FlaskClient) -> Triage:
    operator = staff_headers(app, client, "operator")
    provider, created = api_client_headers(client, operator, "providers")
    return Triage(staff_headers(app, client, "reviewer"), operator, provider, created["id"])


def decide(client: FlaskClient, t: Triage, report_id: str, **body: Any) -> Any:
    return client.post(f"/v1/admin/reports/{report_id}/decide", headers=t.reviewer, json=body)


def test_reviewers_decide_once_with_a_valid_reward_and_the_reporter_hears_of_it(
        app: Flask, client: FlaskClient) -> None:
    t = triage(app, client)
    reporter, reported = citizen(client, name="王小明"), citizen(client)
    report = file(client, reporter, person_report(reported.id_number)).get_json()
    _partner, partner = api_client_headers(client, t.operator, "partners")
    queue = client.get("/v1/admin/reports", headers=t.reviewer).get_json()["items"]
    [shown] = queue
    assert shown["reporter"]["name"] == "王**"
    assert shown["reporter"]["phone"] == mask_phone(reporter.person["phone"])
    assert shown["reporter"]["ref"].startswith("rp_")
    assert count(app, AccessLogEntry, AccessLogEntry.action == "report_triage") == 1
    refused = [({"outcome": "rewarded", "reason": "属实"}, "reward_fen"),
               ({"outcome": "rewarded", "reason": "属实", "reward_fen": 0}, "reward_fen"),
               ({"outcome": "rewarded", "reason": "属实", "reward_fen": 10_000_001},
                "reward_fen"),
               ({"outcome": "rewarded", "reason": "属实", "reward_fen": 12.5}, "reward_fen"),
               ({"outcome": "rejected", "reason": "不实", "reward_fen": 100}, "reward_fen"),
               ({"outcome": "forwarded", "reason": "转办"}, "provider_id"),
               ({"outcome": "forwarded", "reason": "转办", "provider_id": partner["id"]},
                "provider_id"),
               ({"outcome": "rejected", "reason": "  "}, "reason"),
               ({"outcome": "maybe", "reason": "?"}, "outcome")]
    for body, field in refused:
        resp = decide(client, t, report["id"], **body)
        assert resp.status_code == 422, (body, resp.get_json())
        assert field in [e["field"] for e in resp.get_json()["errors"]]
    assert count(app, DishonestyReport, DishonestyReport.status == "pending") == 1
    assert client.post(f"/v1/admin/reports/{report['id']}/decide", headers=t.operator,
                       json={"outcome": "rejected", "reason": "x"}).status_code == 403
    resp = decide(client, t, report["id"], outcome="rewarded", reason="经核查属实",
                  reward_fen=50_000)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["outcome"] == "rewarded" and resp.get_json()["reward_fen"] == 50_000
    again = decide(client, t, report["id"], outcome="rejected", reason="改判")
    assert again.status_code == 409 and again.get_json()["code"] == "report_decided"
    assert count(app, StaffAction, StaffAction.target == f"report:{report['id']}") == 1
    assert count(app, Notification, Notification.template == "report_rewarded") == 1
    [mine] = client.get("/v1/me/reports", headers=reporter.headers).get_json()["items"]
    assert (mine["outcome"], mine["reward_fen"], mine["decision_reason"]) == (
        "rewarded", 50_000, "经核查属实")
    assert decide(client, t, str(uuid.uuid4()), outcome="rejected",
                  reason="x").status_code == 404
    pending = client.get("/v1/admin/reports", headers=t.reviewer,
                         query_string={"status": "pending"}).get_json()
    assert pending["items"] == [] and pending["meta"]["total"] == 0


def _get_routes(app: Flask, prefix: str) -> list[str]:
    return sorted({r.rule for r in app.url_map.iter_rules()
                   if r.rule.startswith(prefix) and "GET" in (r.methods or set())
                   and not r.arguments})


def test_the_reported_party_and_providers_never_learn_who_reported(
        app: Flask, client: FlaskClient) -> None:
    deps = app.extensions["xinyi"]
    t = triage(app, client)
    logs_from = len(CAPTURED_LOGS)
    reporter = citizen(client, name="举报人欧阳明远")
    reported = citizen(client, name="被举报人")
    push(client, t.provider, reported.id_number)
    assert client.post("/v1/me/commitments", headers=reported.headers,
                       json={"purpose": "benefit", "text_version": 1}).status_code == 201
    evidence = upload(client, reporter.headers)
    report = file(client, reporter, person_report(reported.id_number,
                                                  evidence=[evidence])).get_json()
    org = file(client, reporter, {"reported_party": {"kind": "organisation", "name": "某公司"},
                                  "facts": "无证经营"}).get_json()
    [staff_view] = [r for r in client.get("/v1/admin/reports", headers=t.reviewer)
                    .get_json()["items"] if r["id"] == report["id"]]
    assert decide(client, t, report["id"], outcome="forwarded", reason="转有关单位核查",
                  provider_id=t.provider_id).status_code == 200
    assert decide(client, t, org["id"], outcome="rejected", reason="证据不足").status_code == 200
    reporter_bidx = deps.bidx(reporter.id_number, kind="id_number")
    reported_bidx = deps.bidx(reported.id_number, kind="id_number")
    secrets = {
        "name": reporter.person["name"], "phone": reporter.person["phone"],
        "id_number": reporter.id_number, "masked id": mask_id_number(reporter.id_number),
        "masked phone": mask_phone(reporter.person["phone"]), "bidx": reporter_bidx.hex(),
        "account": reporter.person["id"], "reporter ref": staff_view["reporter"]["ref"],
        "report reference": report["reference"], "evidence": evidence,
    }
    seen: dict[str, str] = {}
    # Everything the reported party can read about themselves.
    me_routes = _get_routes(app, "/v1/me")
    assert {"/v1/me", "/v1/me/records", "/v1/me/queries", "/v1/me/notifications",
            "/v1/me/disputes", "/v1/me/reports", "/v1/me/commitments",
            "/v1/me/export"} <= set(me_routes)
    for rule in me_routes:
        resp = client.get(rule, headers=reported.headers)
        assert resp.status_code < 500, rule
        seen[f"reported {rule}"] = resp.get_data(as_text=True)
    # Everything the provider the report went to can read.
    for rule in _get_routes(app, "/v1/provider"):
        resp = client.get(rule, headers=t.provider,
                          query_string={"id_number": reported.id_number}
                          if rule.endswith("/commitments") else None)
        assert resp.status_code < 500, rule
        seen[f"provider {rule}"] = resp.get_data(as_text=True)
    forwarded = json.loads(seen["provider /v1/provider/reports"])["items"]
    assert [f["id"] for f in forwarded] == [report["id"]]
    assert forwarded[0]["facts"] == report["facts"]
    assert forwarded[0]["reported_party"]["id_number"] == mask_id_number(reported.id_number)
    # Evidence stays with reviewers: the provider cannot read it.
    assert client.get(f"/v1/provider/attachments/{evidence}",
                      headers=t.provider).status_code == 404
    assert client.get(f"/v1/admin/attachments/{evidence}",
                      headers=t.reviewer).status_code == 200
    # Events for partners and the staff action log.
    with deps.db.session() as s:
        seen["outbox"] = json.dumps([e.payload for e in s.scalars(select(OutboxEvent))],
                                    ensure_ascii=False, default=str)
        seen["staff actions"] = json.dumps(
            [[a.before, a.after] for a in s.scalars(select(StaffAction))],
            ensure_ascii=False, default=str)
        seen["reported party's notices"] = json.dumps(
            [n.params for n in s.scalars(select(Notification).where(
                Notification.subject_bidx == reported_bidx))], ensure_ascii=False)
    # The export: only what one filed, nothing filed about one.
    with deps.db.session() as s:
        assert export_reports_filed(s, deps, uuid.uuid4(), reported_bidx) == []
        filed = export_reports_filed(s, deps, uuid.uuid4(), reporter_bidx)
    assert sorted(r["id"] for r in filed) == sorted([report["id"], org["id"]])
    assert {r["outcome"] for r in filed} == {"forwarded", "rejected"}
    seen["logs"] = "\n".join(CAPTURED_LOGS[logs_from:])
    for where, text in seen.items():
        for what, value in secrets.items():
            if where == "logs" and what == "account":
                continue  # registration and login log the account id (a random id), by design
            assert value not in text, f"the reporter's {what} reached {where}"
    assert reported.id_number not in seen["logs"]
    # The reporter's own view still has it all, and the reporter was told.
    assert count(app, Notification, Notification.subject_bidx == reporter_bidx,
                 Notification.template.in_(["report_forwarded", "report_rejected"])) == 2
