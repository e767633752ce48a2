"""The verification's hot path in round trips: what one warm verification asks of PostgreSQL
and Redis. The partner's key is authenticated from the process's cache, the credential with
its holder, score, list status and chain head is read in one query, and the writes are the
verification row (``INSERT … ON CONFLICT DO NOTHING``, no savepoint) and the access-log
entry; in production each unit adds its BEGIN and COMMIT. Redis gets the single-use mark
(``SET NX``) only."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from tests.integration.test_credentials import citizen, issue, partner, verify


class SpyKeyValue:
    def __init__(self, real: Any, seen: list[str]) -> None:
        self._real, self._seen = real, seen

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._real, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self._seen.append(name)
            return method(*args, **kwargs)

        return call


def test_a_warm_verification_is_one_read_two_inserts_and_one_redis_command(
        app: Flask, client: FlaskClient) -> None:
    deps = app.extensions["xinyi"]
    me, library = citizen(client), partner(app, client)
    creds = [issue(client, me)[0] for _ in range(3)]
    first = verify(client, library, creds[0]["qr_payload"])  # records the pseudonym
    assert first.status_code == 200, first.get_json()

    sql: list[str] = []
    full: list[str] = []
    kv: list[str] = []

    def statement(conn: Any, cursor: Any, text: str, *args: Any) -> None:
        sql.append(" ".join(text.split()[:3]))
        full.append(" ".join(text.split()))

    def savepoint(conn: Any, name: Any) -> None:
        sql.append("SAVEPOINT")

    engine = deps.db.engine
    real = deps.kv
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "savepoint", savepoint)
    deps.kv = SpyKeyValue(real, kv)
    try:
        for cred in creds[1:]:
            sql.clear()
            full.clear()
            kv.clear()
            resp = verify(client, library, cred["qr_payload"])
            assert resp.status_code == 200, resp.get_json()
            work = [s for s in full if "SAVEPOINT" not in s.upper()]
            assert work[0].startswith("SELECT"), work
            if engine.dialect.name == "postgresql":
                # The row and its access-log entry in one statement.
                assert len(work) == 2, work
                assert work[1].startswith("WITH written AS (INSERT INTO verifications"), work
                assert "INSERT INTO access_log" in work[1], work
            else:
                assert len(work) == 3, work
                assert work[1].startswith("INSERT INTO verifications"), work
                assert work[2].startswith("INSERT INTO access_log"), work
            # No savepoint of the service's own (the test harness runs each unit of work in
            # one, standing in for its BEGIN … COMMIT).
            assert sql.count("SAVEPOINT") <= 1, sql
            assert kv == ["set"], kv
    finally:
        deps.kv = real
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "savepoint", savepoint)
