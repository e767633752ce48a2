"""Evidence attachments: multipart, at most 2 MiB, PNG/JPEG/PDF by content, at most 5 per
case, and read only by their owner, a reviewer and the provider of the record concerned."""

from __future__ import annotations

import io
import uuid
from datetime import date, timedelta
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
from xinyi.attachments.models import Attachment
from xinyi.audit.models import AccessLogEntry

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def upload(client: FlaskClient, me: dict[str, str], content: bytes,
           name: str = "evidence.png") -> Any:
    return client.post("/v1/me/attachments", headers=me, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(content), name)})


def citizen(client: FlaskClient) -> tuple[dict[str, Any], dict[str, str]]:
    person = register_citizen(client)
    return person, bearer(login(client, person["phone"])["access_token"])


def test_upload_checks_content_and_size(app: Flask, client: FlaskClient) -> None:
    _, me = citizen(client)
    ok = upload(client, me, PNG)
    assert ok.status_code == 201 and ok.get_json()["media_type"] == "image/png"
    assert upload(client, me, PDF, "scan.pdf").get_json()["media_type"] == "application/pdf"
    fake = upload(client, me, b"MZ\x90\x00 not an image", "photo.png")
    assert fake.status_code == 415 and fake.get_json()["code"] == "attachment_type_not_allowed"
    big = upload(client, me, PNG + b"\x00" * (2 * 1024 * 1024))
    assert big.status_code == 413
    # Past the 1 MiB JSON body limit but within 2 MiB: this upload alone may be that large.
    large = upload(client, me, PNG + b"\x00" * (3 * 1024 * 1024 // 2))
    assert large.status_code == 201, large.get_json()
    assert count(app, Attachment) == 3
    mine = client.get(f"/v1/me/attachments/{ok.get_json()['id']}", headers=me)
    assert mine.status_code == 200 and mine.data == PNG and mine.mimetype == "image/png"
    _, them = citizen(client)
    assert client.get(f"/v1/me/attachments/{ok.get_json()['id']}",
                      headers=them).status_code == 404


def test_only_the_reviewer_and_the_owning_provider_read_a_cases_attachment(
        app: Flask, client: FlaskClient) -> None:
    operator = staff_headers(app, client, "operator")
    reviewer = staff_headers(app, client, "reviewer")
    provider, _ = api_client_headers(client, operator, "providers")
    other, _ = api_client_headers(client, operator, "providers")
    person, me = citizen(client)
    resp = client.post("/v1/provider/records:batch", headers=provider, json={"records": [{
        "ref": f"r-{uuid.uuid4().hex[:8]}", "id_number": person["id_number"],
        "catalogue_code": "utility.unpaid_bill", "summary": "欠费",
        "occurred_at": (date.today() - timedelta(days=3)).isoformat()}]})
    record = resp.get_json()["results"][0]["id"]
    loose = upload(client, me, PNG).get_json()["id"]
    used = upload(client, me, PDF, "receipt.pdf").get_json()["id"]
    # Not referenced by any case yet: nobody but the owner reads it.
    assert client.get(f"/v1/admin/attachments/{used}", headers=reviewer).status_code == 404
    filed = client.post("/v1/me/disputes", headers=me, json={
        "record_id": record, "reason": "已缴清", "attachment_ids": [used]})
    assert filed.status_code == 201 and [a["id"] for a in filed.get_json()["attachments"]] == [
        used]
    logged = count(app, AccessLogEntry)
    assert client.get(f"/v1/admin/attachments/{used}", headers=reviewer).data == PDF
    assert client.get(f"/v1/provider/attachments/{used}", headers=provider).status_code == 200
    assert count(app, AccessLogEntry) == logged + 2  # both reads are in the citizen's log
    assert client.get(f"/v1/provider/attachments/{used}", headers=other).status_code == 404
    assert client.get(f"/v1/admin/attachments/{loose}", headers=reviewer).status_code == 404
    assert client.get(f"/v1/admin/attachments/{used}", headers=operator).status_code == 403
