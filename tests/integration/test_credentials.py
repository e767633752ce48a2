"""QR credentials: issue, render, JWKS, and partner verification once per credential."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jws
from joserfc.jwk import OKPKey
from PIL import Image
from sqlalchemy import select

from tests.factories import (
    SENSITIVE_VALUES,
    api_client_headers,
    bearer,
    count,
    login,
    register_citizen,
    seal_and_verify,
    staff_headers,
    valid_id_number,
)
from xinyi.audit.models import AccessLogEntry
from xinyi.credentials.models import Verification
from xinyi.uow import UnitOfWork


def citizen(client: FlaskClient) -> dict[str, str]:
    person = register_citizen(client)
    return bearer(login(client, person["phone"])["access_token"])


def partner(app: Flask, client: FlaskClient, kind: str = "library") -> dict[str, str]:
    operator = staff_headers(app, client, "operator")
    headers, _ = api_client_headers(client, operator, "partners", kind=kind)
    return headers


def issue(client: FlaskClient, headers: dict[str, str], count: int = 1) -> list[dict[str, Any]]:
    resp = client.post("/v1/me/credentials", json={"count": count}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    items: list[dict[str, Any]] = resp.get_json()["items"]
    for item in items:
        SENSITIVE_VALUES.update([item["qr_payload"], item["short_code"]])
    return items


def verify(client: FlaskClient, headers: dict[str, str], credential: str,
           benefit: str = "library.deposit_free", key: str | None = None) -> Any:
    extra = {"Idempotency-Key": key} if key else {}
    return client.post("/v1/partner/verifications",
                       json={"credential": credential, "benefit": benefit},
                       headers={**headers, **extra})



def test_issued_credential_follows_the_contract(client: FlaskClient) -> None:
    me = citizen(client)
    [cred] = issue(client, me)
    assert cred["qr_payload"].startswith("XY1:")
    assert len(cred["short_code"]) == 18 and cred["short_code"].isdigit()
    header_b64, claims_b64, _ = cred["qr_payload"][4:].split(".")
    import base64

    def part(s: str) -> Any:
        return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))

    header, claims = part(header_b64), part(claims_b64)
    assert header["alg"] == "EdDSA" and header["typ"] == "xy-cred+jwt"
    assert set(claims) == {"iss", "sub", "jti", "iat", "exp", "tier", "ben"}
    assert claims["exp"] - claims["iat"] <= 120
    assert claims["tier"] == "A" and "lb" in claims["ben"]


def test_prefetch_gives_consecutive_windows_and_count_is_bounded(client: FlaskClient) -> None:
    me = citizen(client)
    items = issue(client, me, count=15)
    starts = [datetime.fromisoformat(i["not_before"]) for i in items]
    ends = [datetime.fromisoformat(i["expires_at"]) for i in items]
    assert all(ends[k] == starts[k + 1] for k in range(14))
    for bad in (0, 16, "3", None):
        resp = client.post("/v1/me/credentials", json={"count": bad}, headers=me)
        assert resp.status_code == 422 and resp.get_json()["errors"][0]["field"] == "count"


def test_no_body_issues_one_credential_as_documented(client: FlaskClient) -> None:
    from xinyi.cli import build_openapi

    body = build_openapi()["paths"]["/v1/me/credentials"]["post"]["requestBody"]
    assert body.get("required") is False
    resp = client.post("/v1/me/credentials", headers=citizen(client))
    assert resp.status_code == 201 and len(resp.get_json()["items"]) == 1


def test_every_prefetched_short_code_is_stored_until_its_own_window_ends(
        app: Flask, client: FlaskClient) -> None:
    from xinyi.credentials.service import short_code_key
    from xinyi.kv import RedisKeyValue

    me = citizen(client)
    items = issue(client, me, count=15)
    kv = app.extensions["xinyi"].kv
    for item in items:
        jti = kv.get(short_code_key(item["short_code"]))
        assert jti is not None and jti.decode() == tokens_jti(item["qr_payload"])
    if isinstance(kv, RedisKeyValue):
        ttls = [kv.client.ttl(short_code_key(i["short_code"])) for i in items]
        assert ttls == sorted(ttls) and ttls[0] <= 121 and ttls[-1] > 14 * 120


def tokens_jti(qr_payload: str) -> str:
    import base64

    payload = qr_payload.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["jti"])


def test_jwks_document_is_dumped_by_its_schema_and_cacheable(
        client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from xinyi import jwk

    def with_extra(public_jwks: Any) -> dict[str, Any]:
        return {"keys": [dict(k) for k in public_jwks], "extra": "not in JwksOut"}

    issue(client, citizen(client))  # the first credential creates the signing key
    monkeypatch.setattr(jwk, "jwks", with_extra)
    resp = client.get("/.well-known/jwks.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert resp.headers["Cache-Control"] == "public, max-age=300"
    body = resp.get_json()
    assert set(body) == {"keys"}  # the schema dumped the view's data: unknown keys are dropped
    assert body["keys"] and all(k["kty"] == "OKP" and k["kid"] for k in body["keys"])


def test_the_configuration_names_the_issuer_credentials_carry_and_where_their_keys_are(
        app: Flask, client: FlaskClient) -> None:
    [cred] = issue(client, citizen(client))
    resp = client.get("/.well-known/xinyi-configuration")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert resp.headers["Cache-Control"] == "public, max-age=3600"
    body = resp.get_json()
    payload = cred["qr_payload"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert body == {"issuer": claims["iss"], "jwks_uri": "http://localhost/.well-known/jwks.json",
                    "credential_algorithms": ["EdDSA"], "credential_prefix": "XY1:"}
    assert body["issuer"] == app.extensions["xinyi"].settings.credential_issuer
    assert cred["qr_payload"].startswith(body["credential_prefix"])
    keys = client.get(body["jwks_uri"].removeprefix("http://localhost")).get_json()["keys"]
    assert any(k["alg"] in body["credential_algorithms"] for k in keys)


def test_the_configuration_links_the_public_url_when_one_is_set(app: Flask,
                                                                client: FlaskClient) -> None:
    deps = app.extensions["xinyi"]
    deps.settings = deps.settings.with_overrides(public_url="https://api.xinyi.example.cn/")
    body = client.get("/.well-known/xinyi-configuration",
                      headers={"Host": "evil.example"}).get_json()
    assert body["jwks_uri"] == "https://api.xinyi.example.cn/.well-known/jwks.json"


def test_png_decodes_independently_and_verifies_against_published_jwks(
        client: FlaskClient) -> None:
    import zxingcpp

    me = citizen(client)
    [cred] = issue(client, me)
    png = client.get(f"/v1/me/credentials/{cred['id']}/qr.png", headers=me)
    assert png.status_code == 200 and png.mimetype == "image/png"
    [barcode] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)),
                                         formats=zxingcpp.BarcodeFormat.QRCode)
    assert barcode.text == cred["qr_payload"]
    jwks_resp = client.get("/.well-known/jwks.json")
    assert "max-age" in jwks_resp.headers["Cache-Control"]
    published = jwks_resp.get_json()["keys"]
    token = barcode.text.removeprefix("XY1:")
    kid = json.loads(__import__("base64").urlsafe_b64decode(
        token.split(".")[0] + "==="))["kid"]
    [jwk] = [k for k in published if k["kid"] == kid]
    key = OKPKey.import_key(jwk)
    assert key.thumbprint() == kid
    obj = jws.deserialize_compact(token, key, algorithms=["EdDSA"])
    assert json.loads(obj.payload)["jti"]
    svg = client.get(f"/v1/me/credentials/{cred['id']}/qr.svg", headers=me)
    assert svg.status_code == 200 and b"<svg" in svg.data


def test_another_citizen_cannot_render_my_credential(client: FlaskClient) -> None:
    [cred] = issue(client, citizen(client))
    other = citizen(client)
    assert client.get(f"/v1/me/credentials/{cred['id']}/qr.png", headers=other).status_code == 404


def test_odd_credential_ids_are_not_found_never_a_server_error(client: FlaskClient) -> None:
    me = citizen(client)
    for odd in ("%00", "a%00b", "%ED%A0%80", "x" * 5000, "%F0%9F%98%80"):
        for fmt in ("png", "svg"):
            resp = client.get(f"/v1/me/credentials/{odd}/qr.{fmt}", headers=me)
            assert resp.status_code == 404, (odd, resp.get_json())
            assert resp.get_json()["code"] == "not_found"


def test_verification_answers_once_and_logs_the_access(app: Flask, client: FlaskClient) -> None:
    me = citizen(client)
    library = partner(app, client)
    [cred] = issue(client, me)
    first = verify(client, library, cred["qr_payload"])
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["decision"] == "eligible" and body["tier"] == "A"
    assert body["benefit"]["limits"]["deposit_waived_fen"] > 0
    assert body["subject"].startswith("ps_")
    assert count(app, AccessLogEntry) == 1
    again = verify(client, library, cred["qr_payload"])
    assert again.status_code == 409 and again.get_json()["code"] == "credential_used"
    assert count(app, AccessLogEntry) == 1
    queries = client.get("/v1/me/queries", headers=me)
    assert queries.status_code == 200
    assert queries.get_json()["items"][0]["action"] == "verification"
    report = seal_and_verify(app)
    assert report.entries_checked == 1 and report.problem is None


def _decisions(client: FlaskClient, decision: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    line = f'xinyi_verifications_total{{decision="{decision}"}} '
    found = [ln for ln in text.splitlines() if ln.startswith(line)]
    return float(found[0].removeprefix(line)) if found else 0.0


def test_answered_verifications_are_counted_by_decision(app: Flask,
                                                         client: FlaskClient) -> None:
    """Operators see verifications by decision in /metrics (not one log line each); a refused
    presentation (credential used) is not an answer and is not counted."""
    me, library = citizen(client), partner(app, client)
    before = _decisions(client, "eligible")
    creds = [issue(client, me)[0] for _ in range(2)]
    for cred in creds:
        assert verify(client, library, cred["qr_payload"]).status_code == 200
    assert verify(client, library, creds[0]["qr_payload"]).status_code == 409
    assert _decisions(client, "eligible") == before + 2


def test_same_idempotency_key_returns_the_first_answer(app: Flask, client: FlaskClient) -> None:
    me = citizen(client)
    library = partner(app, client)
    [cred] = issue(client, me)
    first = verify(client, library, cred["qr_payload"], key="scan-42")
    second = verify(client, library, cred["qr_payload"], key="scan-42")
    assert second.status_code == 200 and second.get_json() == first.get_json()
    other = verify(client, library, cred["short_code"], key="scan-42")
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_key_reused"
    assert other.get_json()["errors"] == [{
        "field": "Idempotency-Key", "location": "headers",
        "messages": ["already used for another credential or benefit"]}]
    assert count(app, AccessLogEntry) == 1


def test_short_code_verifies_once(app: Flask, client: FlaskClient) -> None:
    me = citizen(client)
    library = partner(app, client)
    [cred] = issue(client, me)
    assert verify(client, library, cred["short_code"]).status_code == 200
    assert verify(client, library, cred["qr_payload"]).get_json()["code"] == "credential_used"


def test_a_short_code_typed_in_groups_verifies_once(app: Flask, client: FlaskClient) -> None:
    me = citizen(client)
    library = partner(app, client)
    [cred] = issue(client, me)
    code = cred["short_code"]
    spaced = " ".join(code[i:i + 3] for i in range(0, 18, 3))
    hyphens = "-".join(code[i:i + 6] for i in range(0, 18, 6))
    first = verify(client, library, spaced, key="typed-1")
    assert first.status_code == 200, first.get_json()
    # A retry spelling the same code otherwise is the same request, not a reused key.
    retry = verify(client, library, hyphens, key="typed-1")
    assert retry.status_code == 200 and retry.get_json() == first.get_json()
    assert verify(client, library, code).get_json()["code"] == "credential_used"
    assert count(app, AccessLogEntry) == 1


@pytest.mark.parametrize("spelling", ["double", "leading", "dots", "ideographic", "tab"])
def test_a_short_code_with_other_characters_is_refused(app: Flask, client: FlaskClient,
                                                       spelling: str) -> None:
    me = citizen(client)
    library = partner(app, client)
    [cred] = issue(client, me)
    code = cred["short_code"]
    groups = [code[i:i + 3] for i in range(0, 18, 3)]
    typed = {"double": "  ".join(groups), "leading": " " + code, "dots": ".".join(groups),
             "ideographic": "\u3000".join(groups), "tab": "\t".join(groups)}[spelling]
    resp = verify(client, library, typed)
    assert resp.status_code == 422 and resp.get_json()["code"] == "credential_invalid"
    assert count(app, AccessLogEntry) == 0
    assert verify(client, library, code).status_code == 200


def test_guessed_short_codes_are_refused_and_rate_limited(app: Flask,
                                                         client: FlaskClient) -> None:
    library = partner(app, client)
    codes = [verify(client, library, f"{n:018d}").status_code for n in range(31)]
    assert codes[:30] == [422] * 30 and codes[30] == 429
    assert count(app, AccessLogEntry) == 0


def test_subject_is_stable_per_partner_and_differs_between_partners(
        app: Flask, client: FlaskClient) -> None:
    me = citizen(client)
    library, other_library = partner(app, client), partner(app, client)
    creds = issue(client, me, count=3)
    now = datetime.now(UTC)
    deps = app.extensions["xinyi"]
    subjects = []
    for n, (who, cred) in enumerate(zip([library, library, other_library], creds,
                                        strict=True)):
        deps.clock = lambda n=n: now + timedelta(seconds=120 * n + 1)
        resp = verify(client, who, cred["qr_payload"])
        assert resp.status_code == 200, resp.get_json()
        subjects.append(resp.get_json()["subject"])
    assert subjects[0] == subjects[1] != subjects[2]


@pytest.mark.parametrize("mutation", ["truncate", "prefix", "oversize", "garbage", "flip"])
def test_tampered_credentials_are_invalid_and_leave_nothing(
        app: Flask, client: FlaskClient, mutation: str) -> None:
    me = citizen(client)
    library = partner(app, client)
    [cred] = issue(client, me)
    payload = cred["qr_payload"]
    bad = {"truncate": payload[:-10], "prefix": "XY2:" + payload[4:],
           "oversize": payload + "A" * 3000, "garbage": "hello",
           "flip": payload[:60] + ("A" if payload[60] != "A" else "B") + payload[61:]}[mutation]
    resp = verify(client, library, bad)
    assert resp.status_code == 422 and resp.get_json()["code"] == "credential_invalid"
    assert count(app, AccessLogEntry) == 0
    assert verify(client, library, payload).status_code == 200


def test_expired_and_not_yet_valid_credentials(app: Flask, client: FlaskClient) -> None:
    me = citizen(client)
    library = partner(app, client)
    creds = issue(client, me, count=3)
    deps = app.extensions["xinyi"]
    later = datetime.now(UTC) + timedelta(minutes=30)
    deps.clock = lambda: later
    assert verify(client, library, creds[0]["qr_payload"]).get_json()["code"] == (
        "credential_expired")
    deps.clock = lambda: datetime.now(UTC)
    assert verify(client, library, creds[2]["qr_payload"]).get_json()["code"] == (
        "credential_not_yet_valid")


def test_benefit_must_exist_and_suit_the_partner(app: Flask, client: FlaskClient) -> None:
    me = citizen(client)
    library = partner(app, client)
    [cred] = issue(client, me)
    assert verify(client, library, cred["qr_payload"],
                  benefit="hotel.deposit_free").get_json()["code"] == "benefit_not_for_partner"
    assert verify(client, library, cred["qr_payload"],
                  benefit="nope").get_json()["code"] == "unknown_benefit"
    assert verify(client, library, cred["qr_payload"]).status_code == 200


def test_low_score_gets_standard_terms_never_a_refusal(app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    provider, _ = api_client_headers(client, operator, "providers")
    idn = valid_id_number(555)
    occurred = (datetime.now(UTC) - timedelta(days=5)).date().isoformat()
    resp = client.post("/v1/provider/records:batch", headers=provider, json={"records": [
        {"ref": "x", "id_number": idn, "catalogue_code": "utility.unpaid_bill",
         "occurred_at": occurred, "summary": "欠费"}]})
    assert resp.get_json()["results"][0]["status"] == "created"
    person = register_citizen(client, id_number=idn)
    me = bearer(login(client, person["phone"])["access_token"])
    [cred] = issue(client, me)
    library, _ = api_client_headers(client, operator, "partners", kind="library")
    body = verify(client, library, cred["qr_payload"]).get_json()
    assert body["decision"] == "standard_terms" and body["reason"] == "below_threshold"
    assert body["benefit"]["limits"] == {}


def test_black_list_entry_withholds_the_benefit(app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    provider, _ = api_client_headers(client, operator, "providers")
    idn = valid_id_number(556)
    occurred = (datetime.now(UTC) - timedelta(days=5)).date().isoformat()
    items = [{"ref": f"p{n}", "id_number": idn, "catalogue_code": code,
              "occurred_at": occurred, "summary": "记录"}
             for n, code in enumerate(["court.dishonest_debtor"] + ["volunteer.model"] * 8)]
    client.post("/v1/provider/records:batch", headers=provider, json={"records": items})
    person = register_citizen(client, id_number=idn)
    me = bearer(login(client, person["phone"])["access_token"])
    [cred] = issue(client, me)
    library, _ = api_client_headers(client, operator, "partners", kind="library")
    body = verify(client, library, cred["qr_payload"]).get_json()
    assert body["decision"] == "standard_terms" and body["reason"] == "black_list_entry"
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        assert s.scalar(select(Verification.decision)) == "standard_terms"
    # Offline and in the app alike: the QR lists no benefit, and the citizen is told why.
    segment = cred["qr_payload"].removeprefix("XY1:").split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    assert claims["ben"] == []
    credit = client.get("/v1/me/credit", headers=me).get_json()
    assert credit["score"] >= 700  # the score alone would have granted them
    library_rule = next(b for b in credit["benefits"] if b["code"] == "library.deposit_free")
    assert library_rule["eligible"] is False and library_rule["reason"] == "black_list_entry"
    assert {b["reason"] for b in credit["benefits"]} <= {"black_list_entry", "below_threshold"}


def test_rotated_key_keeps_verifying_until_its_credentials_expire(
        app: Flask, client: FlaskClient) -> None:
    from xinyi.signing import service as keys

    me = citizen(client)
    library = partner(app, client)
    [old] = issue(client, me)
    deps = app.extensions["xinyi"]
    with UnitOfWork(deps.db.sessions) as uow:
        keys.rotate(uow.session, deps, "credential")
        uow.commit()
    [new] = issue(client, me)
    kids = [k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]]
    assert len(kids) == 2
    assert verify(client, library, old["qr_payload"]).status_code == 200
    assert verify(client, library, new["qr_payload"]).status_code == 200


def test_a_key_rotated_by_another_process_verifies_at_once(
        app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """`xinyi keys rotate` runs in its own process and another worker may sign with the new
    key at once: a worker whose cached key set predates the rotation must not refuse that."""
    import base64
    import dataclasses
    import uuid

    from xinyi.credentials import service
    from xinyi.localcache import LocalCache
    from xinyi.signing import service as keys

    person = register_citizen(client)
    me = bearer(login(client, person["phone"])["access_token"])
    library = partner(app, client)
    [before] = issue(client, me)
    assert verify(client, library, before["qr_payload"]).status_code == 200  # keys now cached
    deps = app.extensions["xinyi"]
    with UnitOfWork(deps.db.sessions) as uow:
        keys.rotate(uow.session, dataclasses.replace(deps, cache=LocalCache()), "credential")
        uow.commit()
    with UnitOfWork(deps.db.sessions) as uow:
        [fresh] = service.issue(uow.session, dataclasses.replace(deps, cache=LocalCache()),
                                uuid.UUID(person["id"]), 1)
        uow.commit()
    resp = verify(client, library, fresh.qr_payload)
    assert resp.status_code == 200, resp.get_json()
    header, rest = fresh.qr_payload.removeprefix("XY1:").split(".", 1)
    fields = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    fields["kid"] = "A" * len(fresh.kid)  # no such key, even after looking again
    unknown = base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode())
    published = keys._published
    reads: list[int] = []

    def counted(*args: Any) -> Any:
        reads.append(1)
        return published(*args)

    monkeypatch.setattr(keys, "_published", counted)
    for _ in range(5):  # made-up kids do not make every request read the keys again
        forged = verify(client, library, f"XY1:{unknown.decode().rstrip('=')}.{rest}")
        assert forged.status_code == 422 and forged.get_json()["code"] == "credential_invalid"
    assert reads == []


def test_partner_sdk_verifies_a_real_credential_offline(app: Flask, client: FlaskClient) -> None:
    from xinyi_partner import CredentialError, SeenJtiCache, verify_offline

    me = citizen(client)
    [cred] = issue(client, me)
    jwks_doc = client.get("/.well-known/jwks.json").get_json()
    seen = SeenJtiCache()
    verified = verify_offline(cred["qr_payload"], jwks_doc, seen=seen, issuer="xy")
    assert verified.tier == "A" and "lb" in verified.benefits
    with pytest.raises(CredentialError) as used:
        verify_offline(cred["qr_payload"], jwks_doc, seen=seen, issuer="xy")
    assert used.value.code == "credential_used"


def test_a_verification_that_fails_to_record_does_not_use_up_the_credential(
        app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from xinyi.credentials import verification

    me = citizen(client)
    library = partner(app, client)
    [cred] = issue(client, me)
    real_append = verification.append_after

    def failing_append(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(verification, "append_after", failing_append)
    failed = verify(client, library, cred["qr_payload"])
    assert failed.status_code == 500 and "disk full" not in failed.get_data(as_text=True)
    assert count(app, AccessLogEntry) == 0
    monkeypatch.setattr(verification, "append_after", real_append)
    assert verify(client, library, cred["qr_payload"]).status_code == 200


def test_second_use_is_refused_even_if_redis_forgot_the_first(
        app: Flask, client: FlaskClient, redis_client: Any) -> None:
    me = citizen(client)
    library = partner(app, client)
    [cred] = issue(client, me)
    assert verify(client, library, cred["qr_payload"]).status_code == 200
    for key in redis_client.scan_iter("cred:used:*"):
        redis_client.delete(key)
    again = verify(client, library, cred["qr_payload"])
    assert again.status_code == 409 and again.get_json()["code"] == "credential_used"
    assert count(app, AccessLogEntry) == 1


def first_lookup_misses(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[int]]:
    """The verification's first look for an earlier answer under its Idempotency-Key misses
    it, as if the other request had not committed yet (one test transaction cannot run two
    requests at once). Returns the real look-up and the list of calls."""
    from xinyi.credentials import verification

    real_previous = verification._previous
    calls: list[int] = []

    def missed_once(*args: Any) -> Any:
        calls.append(1)
        return None if len(calls) == 1 else real_previous(*args)

    monkeypatch.setattr(verification, "_previous", missed_once)
    return real_previous, calls


def test_losing_a_race_for_an_idempotency_key_does_not_use_up_the_credential(
        app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two requests under one key with different credentials: the one whose insert loses is
    told the key was reused, and its credential, of which nothing was recorded, still works."""
    from xinyi.credentials import verification

    me = citizen(client)
    library = partner(app, client)
    [first], [second] = issue(client, me), issue(client, me)
    assert verify(client, library, first["qr_payload"], key="scan-7").status_code == 200
    real_previous, _ = first_lookup_misses(monkeypatch)
    lost = verify(client, library, second["qr_payload"], key="scan-7")
    assert lost.status_code == 422, lost.get_json()
    assert lost.get_json()["code"] == "idempotency_key_reused"
    monkeypatch.setattr(verification, "_previous", real_previous)
    assert count(app, AccessLogEntry) == 1
    assert verify(client, library, second["qr_payload"], key="scan-8").status_code == 200
    assert count(app, AccessLogEntry) == 2


def test_a_retry_that_meets_its_first_request_in_flight_gets_that_answer(
        app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client retries under the same Idempotency-Key while its first request is still being
    recorded: the retry waits for that answer instead of calling the credential used."""
    from xinyi.credentials import verification

    me = citizen(client)
    library = partner(app, client)
    [cred] = issue(client, me)
    first = verify(client, library, cred["qr_payload"], key="scan-9")
    assert first.status_code == 200
    real_previous, calls = first_lookup_misses(monkeypatch)
    monkeypatch.setattr(verification, "IN_FLIGHT_POLL_SECONDS", 0.001)
    retry = verify(client, library, cred["qr_payload"], key="scan-9")
    assert retry.status_code == 200, retry.get_json()
    assert retry.get_json() == first.get_json()
    assert len(calls) == 2
    assert count(app, AccessLogEntry) == 1
    # Another key (or none) on the same credential is a second use, not a retry.
    monkeypatch.setattr(verification, "_previous", real_previous)
    for key in ("scan-10", None):
        again = verify(client, library, cred["qr_payload"], key=key)
        assert again.status_code == 409 and again.get_json()["code"] == "credential_used"


def test_a_retry_whose_first_request_is_still_running_is_told_to_retry(
        app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from xinyi.credentials import verification

    me = citizen(client)
    library = partner(app, client)
    [cred] = issue(client, me)
    assert verify(client, library, cred["qr_payload"], key="scan-11").status_code == 200
    monkeypatch.setattr(verification, "_previous", lambda *args: None)  # never committed
    monkeypatch.setattr(verification, "IN_FLIGHT_WAIT_SECONDS", 0.05)
    monkeypatch.setattr(verification, "IN_FLIGHT_POLL_SECONDS", 0.01)
    retry = verify(client, library, cred["qr_payload"], key="scan-11")
    assert retry.status_code == 409, retry.get_json()
    assert retry.get_json()["code"] == "verification_in_progress"
    assert retry.headers["Retry-After"] == "1"
    assert count(app, AccessLogEntry) == 1
