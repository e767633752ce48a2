"""`xinyi seed-demo`: demo citizens whose scores real records explain, a partner of every kind,
an org and a provider; a second run creates nothing."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.factories import SENSITIVE_VALUES, bearer, login, staff_headers
from xinyi.models import metadata
from xinyi.partner_kinds import PartnerKind
from xinyi.seed import DEMO_CITIZENS, DEMO_PARTNERS, DEMO_PASSWORD, demo_id_number, seed_demo

GOOD, MINOR, BLACK = (person.phone for person in DEMO_CITIZENS)


def remember_demo_identities() -> None:
    """The final log scan looks for these too: the seed must not log them."""
    for person in DEMO_CITIZENS:
        SENSITIVE_VALUES.update([person.phone, demo_id_number(person.id17)])


def rows(app: Flask) -> dict[str, int]:
    with app.extensions["xinyi"].db.session() as s:
        return {t.name: int(s.scalar(select(func.count()).select_from(t)) or 0)
                for t in metadata.sorted_tables}


def me(client: FlaskClient, phone: str) -> dict[str, str]:
    return bearer(login(client, phone, DEMO_PASSWORD)["access_token"])


def without_keys(lines: list[str]) -> list[str]:
    return [line.split("; ")[0] for line in lines]


def test_seed_demo_twice_creates_nothing_new_and_prints_the_same_logins(app: Flask) -> None:
    remember_demo_identities()
    deps = app.extensions["xinyi"]
    first = seed_demo(deps)
    after_first = rows(app)
    second = seed_demo(deps)
    assert rows(app) == after_first
    assert without_keys(second) == without_keys(first)
    # An API key is kept as a hash: the first run shows each one, the second says so.
    keys = [line for line in first if "api key xyk_" in line]
    assert len(keys) == len(PartnerKind) + 2
    SENSITIVE_VALUES.update(word for line in keys for word in line.split()
                            if word.startswith("xyk_"))
    assert not any("xyk_" in line for line in second)
    assert all("printed at first seeding" in line for line in second
               if line.startswith(("partner", "org", "provider")))
    logins = [line for line in first if "password" in line]
    assert len(logins) == 6 and all(DEMO_PASSWORD in line for line in logins)
    assert after_first["credit_records"] == sum(len(p.records) for p in DEMO_CITIZENS)


def test_a_partner_of_every_kind_an_org_and_a_provider_are_seeded(app: Flask,
                                                                  client: FlaskClient) -> None:
    seed_demo(app.extensions["xinyi"])
    assert set(DEMO_PARTNERS) == set(PartnerKind)
    operator = me(client, "13700137000")
    for collection, expected in (("partners", len(PartnerKind)), ("orgs", 1), ("providers", 1)):
        page = client.get(f"/v1/admin/{collection}", headers=operator,
                          query_string={"page_size": 100}).get_json()
        assert page["meta"]["total"] >= expected, collection
    listed = client.get("/v1/partners", query_string={"page_size": 100}).get_json()["items"]
    assert {e["kind"] for e in listed if e["name"] in DEMO_PARTNERS.values()} == set(PartnerKind)


def test_each_demo_citizens_score_is_explained_by_records(app: Flask,
                                                          client: FlaskClient) -> None:
    remember_demo_identities()
    seed_demo(app.extensions["xinyi"])

    good = client.get("/v1/me/credit", headers=me(client, GOOD)).get_json()
    assert len(good["contributions"]) >= 3
    assert all(c["points"] > 0 for c in good["contributions"])
    assert good["score"] == good["base"] + sum(c["points"] for c in good["contributions"])
    assert any(b["eligible"] for b in good["benefits"])

    minor_headers = me(client, MINOR)
    minor = client.get("/v1/me/credit", headers=minor_headers).get_json()
    [default] = minor["contributions"]
    assert default["points"] < 0
    [repair] = [s for s in minor["next_steps"]
                if s["record_id"] == default["record_id"] and s["kind"].startswith("repair")]
    assert repair["available_from"] is not None
    [record] = client.get("/v1/me/records", headers=minor_headers).get_json()["items"]
    assert record["severity"] == "minor" and record["repair_from"] is not None

    black = client.get("/v1/me/credit", headers=me(client, BLACK)).get_json()
    assert any(c["points"] < 0 for c in black["contributions"])
    assert not any(b["eligible"] for b in black["benefits"])
    withheld = [b for b in black["benefits"] if b["reason"] == "black_list_entry"]
    assert withheld and all(black["score"] >= b["min_score"] for b in withheld)
    negative = {c["record_id"] for c in black["contributions"] if c["points"] < 0}
    entries = client.get("/v1/admin/lists", query_string={"list": "black"},
                         headers=staff_headers(app, client, "reviewer")).get_json()["items"]
    assert any(e["record_id"] in negative and e["legal_basis"] for e in entries)


def test_the_demo_logins_say_what_each_is_for(app: Flask, client: FlaskClient) -> None:
    lines = seed_demo(app.extensions["xinyi"])
    for person in DEMO_CITIZENS:  # the score each line promises is the one the app shows
        [promised] = re.findall(r"score (\d+)", person.shows)
        credit = client.get("/v1/me/credit", headers=me(client, person.phone)).get_json()
        assert credit["score"] == int(promised), person.key
    citizens = [line for line in lines if line.startswith("citizen")]
    assert [line.split()[2] for line in citizens] == [GOOD, MINOR, BLACK]
    assert "good record" in citizens[0] and "minor default" in citizens[1]
    assert "black-list entry" in citizens[2]
    assert all(line.split(DEMO_PASSWORD, 1)[1].strip() for line in lines if "password" in line)
