"""Offline verification end to end: the partner SDK verifies a credential with no call to
the server, queues it on disk, uploads the queue to a live server, and the citizen sees the
check in their access log."""

from __future__ import annotations

from pathlib import Path

import pytest
from xinyi_partner import OfflineQueue, OfflineVerifier, UploadClient

from tests.e2e.test_adapters_live import STAFF_PASSWORD, Http, operator
from tests.factories import SENSITIVE_VALUES, random_phone, valid_id_number
from tests.servers import live_server

pytestmark = pytest.mark.e2e


def test_the_sdk_verifies_offline_queues_uploads_and_the_citizen_sees_it(
        tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        http = Http(server)
        office = http.login(operator(server), STAFF_PASSWORD)
        created = http.ok("POST", "/v1/admin/partners", office, 201,
                          json={"name": "区图书馆", "kind": "library"})
        api_key = created["api_key"]["api_key"]
        SENSITIVE_VALUES.add(api_key)
        phone, password = random_phone(), "citizen-pass-1"
        http.ok("POST", "/v1/auth/register", status=201, json={
            "phone": phone, "password": password, "name": "王五",
            "id_number": valid_id_number()})
        citizen = http.login(phone, password)
        [cred] = http.ok("POST", "/v1/me/credentials", citizen, 201, json={"count": 1})["items"]
        SENSITIVE_VALUES.update([cred["qr_payload"], cred["short_code"]])

        # The device fetched the keys while online; the check itself calls nobody.
        with OfflineQueue(tmp_path / "offline.db") as queue:
            verifier = OfflineVerifier.from_configuration(server.url, queue=queue)
            decision = verifier.check(cred["qr_payload"], "lb")
            assert (decision.decision, decision.queued) == ("eligible", True)
            [queued] = queue.peek()
            assert (queued.jti, queued.benefit, queued.decision) == (cred["id"], "lb", "eligible")

            result = queue.upload_pending(UploadClient(server.url, api_key))
            assert (result.answered, result.remaining) == ({"recorded": 1}, 0)
            # Queued again (a device restored from a backup, say): the same single entry.
            assert queue.add(queued)
            again = queue.upload_pending(UploadClient(server.url, api_key))
            assert again.answered == {"duplicate": 1} and len(queue) == 0

        queries = http.ok("GET", "/v1/me/queries", citizen)["items"]
        assert [(q["action"], q["scope"], q["who"]["name"]) for q in queries] == [
            ("offline_verification", "benefit:library.deposit_free", "区图书馆")]
        # Online, the credential is now used.
        resp = http.call("POST", "/v1/partner/verifications", api_key,
                         json={"credential": cred["qr_payload"],
                               "benefit": "library.deposit_free"})
        assert resp.status_code == 409 and resp.json()["code"] == "credential_used"

