"""The partner SDK checks the access log's proofs as served by `xinyi serve`: signed tree
heads, a citizen's inclusion proof and the consistency proof between two heads, with entries
written by real verifications and sealed by the real sealer (`xinyi audit seal`)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from xinyi_partner.transparency import (
    ProofError,
    entry_leaf,
    verify_consistency,
    verify_inclusion,
    verify_tree_head,
)

from tests.factories import SENSITIVE_VALUES, TEST_REDIS_URL, random_phone, valid_id_number
from tests.servers import XINYI, LiveServer, live_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    redis_url = os.environ.get("XINYI_TEST_E2E_REDIS_URL",
                               TEST_REDIS_URL.rsplit("/", 1)[0] + "/10")
    with live_server(tmp_path_factory.mktemp("instance"), postgres_suffix="transparency",
                     redis_url=redis_url) as server:
        yield server


def _verify_once(http: requests.Session, url: str, me: dict[str, str], partner: str) -> None:
    [cred] = http.post(f"{url}/v1/me/credentials", json={}, headers=me).json()["items"]
    SENSITIVE_VALUES.update([cred["qr_payload"], cred["short_code"]])
    verified = http.post(f"{url}/v1/partner/verifications", headers={
        "Authorization": f"Bearer {partner}"},
        json={"credential": cred["qr_payload"], "benefit": "library.deposit_free"})
    assert verified.status_code == 200, verified.text


def test_the_sdk_verifies_inclusion_and_consistency_proofs_from_a_live_server(
        live: LiveServer, tmp_path: Path) -> None:
    url, http = live.url, requests.Session()
    assert http.get(f"{url}/v1/transparency/tree-head").status_code == 404  # none signed yet
    operator_phone = random_phone()
    live.xinyi("staff", "create", "--phone", operator_phone, "--password", "operator-pass-1",
               "--role", "operator")
    op = http.post(f"{url}/v1/auth/login", json={"phone": operator_phone,
                                                  "password": "operator-pass-1"}).json()
    library = http.post(f"{url}/v1/admin/partners", json={"name": "市图书馆", "kind": "library"},
                        headers={"Authorization": f"Bearer {op['access_token']}"}
                        ).json()["api_key"]["api_key"]
    phone = random_phone()
    assert http.post(f"{url}/v1/auth/register", json={
        "phone": phone, "password": "citizen-pass-1", "name": "王五",
        "id_number": valid_id_number(9301)}).status_code == 201
    tokens = http.post(f"{url}/v1/auth/login",
                       json={"phone": phone, "password": "citizen-pass-1"}).json()
    SENSITIVE_VALUES.update([library, op["access_token"], tokens["access_token"]])
    me = {"Authorization": f"Bearer {tokens['access_token']}"}

    for _ in range(3):
        _verify_once(http, url, me, library)
    live.xinyi("audit", "seal")
    first = http.get(f"{url}/v1/transparency/tree-head").json()
    key = first["public_jwk"]
    kept = verify_tree_head(first, key)  # what a partner keeps
    assert kept.tree_size == 3

    entries = http.get(f"{url}/v1/me/queries", headers=me).json()["items"]
    assert [e["status"] for e in entries] == ["sealed"] * 3
    for entry in entries:
        proof = http.get(f"{url}/v1/me/queries/{entry['id']}/proof", headers=me).json()
        head = verify_tree_head(proof["tree_head"], key)
        leaf = entry_leaf(proof["prev_hash"], proof["entry"])
        verify_inclusion(leaf, proof["leaf_index"], proof["tree_size"], proof["audit_path"],
                         head.root_hash)
        with pytest.raises(ProofError):  # another entry's text is not at this leaf
            verify_inclusion(entry_leaf(proof["prev_hash"], proof["entry"] + " "),
                             proof["leaf_index"], proof["tree_size"], proof["audit_path"],
                             head.root_hash)

    for _ in range(2):
        _verify_once(http, url, me, library)
    newest = http.get(f"{url}/v1/me/queries", headers=me).json()["items"][0]
    assert newest["status"] == "pending" and newest["seq"] is None
    pending = http.get(f"{url}/v1/me/queries/{newest['id']}/proof", headers=me)
    assert pending.status_code == 409 and pending.json()["code"] == "entry_pending"
    live.xinyi("audit", "seal")
    latest = verify_tree_head(http.get(f"{url}/v1/transparency/tree-head").json(), key)
    assert latest.tree_size == 5
    answer = http.get(f"{url}/v1/transparency/consistency",
                      params={"from": kept.tree_size, "to": latest.tree_size})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["from"]["root_hash"] == kept.root_hash.hex()
    verify_consistency(kept.tree_size, latest.tree_size, kept.root_hash, latest.root_hash,
                       body["proof"])
    with pytest.raises(ProofError):  # a head that forked from the one kept
        verify_consistency(kept.tree_size, latest.tree_size, bytes(32), latest.root_hash,
                           body["proof"])
    heads = http.get(f"{url}/v1/transparency/tree-heads").json()
    assert [h["tree_size"] for h in heads["items"]] == [5, 3] and heads["meta"]["total"] == 2

    for params, status, code in (({"from": 4, "to": 5}, 404, "unknown_tree_size"),
                                 ({"from": 5, "to": 3}, 422, "bad_tree_sizes"),
                                 ({"from": 0, "to": 3}, 422, "validation_error")):
        refused = http.get(f"{url}/v1/transparency/consistency", params=params)
        assert refused.status_code == status, refused.text
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.json()["code"] == code

    copy = tmp_path / "kept.json"
    copy.write_text(json.dumps(first), encoding="utf-8")
    checked = subprocess.run([XINYI, "audit", "verify", "--kept-head", str(copy)],
                             env=live.env, capture_output=True, text=True)
    assert checked.returncode == 0 and "access log intact" in checked.stdout, checked.stderr
