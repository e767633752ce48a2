"""The citizen's inbox: notices written in the caller's unit, deduplicated, read/unread, private;
the SMS goes out only after the unit commits."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import bearer, login, recording_sender, register_citizen
from xinyi.citizens.service import citizen_bidx
from xinyi.notifications.service import notify
from xinyi.uow import UnitOfWork

PARAMS = {"partner": "市图书馆", "benefit": "免押金借书", "due_date": "2026-12-20"}


def _citizen(client: FlaskClient) -> tuple[dict[str, Any], dict[str, str]]:
    citizen = register_citizen(client)
    return citizen, bearer(login(client, citizen["phone"])["access_token"])


def _bidx(app: Flask, headers: dict[str, str], client: FlaskClient) -> bytes:
    deps = app.extensions["xinyi"]
    account = uuid.UUID(client.get("/v1/me", headers=headers).get_json()["id"])
    with deps.db.session() as s:
        return citizen_bidx(s, account)


def _notify(app: Flask, bidx: bytes, *, commit: bool = True, **kwargs: Any) -> bool:
    deps = app.extensions["xinyi"]
    with UnitOfWork(deps.db.sessions) as uow:
        done = notify(uow.session, deps, bidx, "benefit_session_overdue", PARAMS,
                      now=deps.clock(), **kwargs)
        if commit:
            uow.commit()
    return done


def test_a_notice_reaches_the_inbox_and_is_marked_read_once(app: Flask,
                                                            client: FlaskClient) -> None:
    _c, me = _citizen(client)
    bidx = _bidx(app, me, client)
    sent = recording_sender(app)
    assert _notify(app, bidx, ref="benefit_session:1", sms=True)
    inbox = client.get("/v1/me/notifications", headers=me).get_json()
    assert inbox["unread"] == 1 and inbox["meta"]["total"] == 1
    [notice] = inbox["items"]
    assert notice["template"] == "benefit_session_overdue" and not notice["read"]
    assert "市图书馆" in notice["text"] and "2026-12-20" in notice["text"]
    assert notice["ref"] == "benefit_session:1"
    assert [m.template for _, m in sent] == ["benefit_session_overdue"]

    read = client.post(f"/v1/me/notifications/{notice['id']}/read", headers=me)
    assert read.status_code == 200 and read.get_json()["read"]
    first = read.get_json()["read_at"]
    again = client.post(f"/v1/me/notifications/{notice['id']}/read", headers=me)
    assert again.get_json()["read_at"] == first
    after = client.get("/v1/me/notifications?unread=true", headers=me).get_json()
    assert after["unread"] == 0 and after["items"] == []
    assert len(client.get("/v1/me/notifications?unread=false",
                          headers=me).get_json()["items"]) == 1


def test_a_dedupe_key_writes_once_and_a_rolled_back_notice_sends_nothing(
        app: Flask, client: FlaskClient) -> None:
    _c, me = _citizen(client)
    bidx = _bidx(app, me, client)
    sent = recording_sender(app)
    assert _notify(app, bidx, dedupe_key="overdue:1")
    assert not _notify(app, bidx, dedupe_key="overdue:1")
    assert _notify(app, bidx, commit=False, sms=True)  # written, then rolled back
    assert client.get("/v1/me/notifications", headers=me).get_json()["meta"]["total"] == 1
    assert sent == []


def test_another_citizens_notice_is_not_found(app: Flask, client: FlaskClient) -> None:
    _a, me = _citizen(client)
    _b, other = _citizen(client)
    _notify(app, _bidx(app, me, client))
    [notice] = client.get("/v1/me/notifications", headers=me).get_json()["items"]
    resp = client.post(f"/v1/me/notifications/{notice['id']}/read", headers=other)
    assert resp.status_code == 404
    assert client.get("/v1/me/notifications", headers=other).get_json()["items"] == []
    assert client.get("/v1/me/notifications", headers=me).get_json()["unread"] == 1


def test_an_unknown_template_is_a_programming_error(app: Flask, client: FlaskClient) -> None:
    _c, me = _citizen(client)
    deps = app.extensions["xinyi"]
    with UnitOfWork(deps.db.sessions) as uow, pytest.raises(ValueError):
        notify(uow.session, deps, _bidx(app, me, client), "no_such_template", {},
               now=deps.clock())
