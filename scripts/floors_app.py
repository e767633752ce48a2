"""The floors of issue 4 as bare Flask endpoints, served by ``scripts/bench_floors.py``.

Not part of xinyi+: each endpoint does only the named work, with no authentication, no
validation and no error handling, so that what it costs is a floor for any implementation of
the real endpoint on the same stack (gunicorn gthread, Flask, PyJWT, redis-py, psycopg).

* ``GET  /hello``             Flask hello
* ``POST /verify``            + JSON body, one Ed25519 (EdDSA) JWT verification, one Redis GET
* ``POST /verify-write``      + Redis ``SET NX`` and one single-row ``INSERT`` (autocommit)
* ``POST /verify-read-write`` + one primary-key ``SELECT`` before the insert
* ``POST /issue``             a credential issuance: verify the bearer access token (EdDSA),
                              two primary-key ``SELECT`` (session, score), sign a new EdDSA
                              JWT, one ``INSERT``, one Redis ``SET``
* ``POST /raw/verify-write``   the same work as ``/verify-write`` in a bare WSGI callable,
                              without Flask
* ``/xinyi/...``              the real xinyi+ application (its ``/healthz``), for a ratio to
                              the same server's health check as the target is stated

Configuration from the environment: ``FLOORS_PUBLIC_KEY`` and ``FLOORS_PRIVATE_KEY`` (PEM),
``FLOORS_DATABASE_URL`` (a libpq URL), ``FLOORS_REDIS_URL``; xinyi+ reads its own ``XINYI_*``
settings.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from typing import Any

import jwt
import psycopg
import redis
from flask import Flask, jsonify, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from xinyi.app import create_app as create_xinyi


def create() -> Flask:
    """The floors, with xinyi+ mounted at ``/xinyi`` (``scripts/bench_floors.py``)."""
    app = floors()
    app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, {"/xinyi": create_xinyi()})
    return app


def floors() -> Flask:
    """The floor endpoints alone (``scripts/bench_server.py`` mounts them beside xinyi+)."""
    app = Flask(__name__)
    public_key = os.environ["FLOORS_PUBLIC_KEY"]
    private_key = os.environ["FLOORS_PRIVATE_KEY"]
    kv = redis.Redis.from_url(os.environ["FLOORS_REDIS_URL"])
    database_url = os.environ["FLOORS_DATABASE_URL"]
    local = threading.local()

    def conn() -> psycopg.Connection[Any]:
        c: psycopg.Connection[Any] | None = getattr(local, "conn", None)
        if c is None:
            # Autocommit: each statement is its own transaction, durable when it returns,
            # with no BEGIN/COMMIT round trips: the cheapest durable write there is.
            c = local.conn = psycopg.connect(database_url, autocommit=True)
        return c

    def verify() -> dict[str, Any]:
        token = (request.get_json() or {})["credential"]
        claims: dict[str, Any] = jwt.decode(token, public_key, algorithms=["EdDSA"],
                                            audience="xinyi-partners")
        kv.get("floors:seen:" + claims["jti"])
        return claims

    def write(claims: dict[str, Any], *, read: bool) -> None:
        kv.set("floors:used:" + uuid.uuid4().hex, b"1", nx=True, ex=120)
        c = conn()
        if read:
            c.execute("SELECT id FROM floor_log WHERE id = %s", (uuid.uuid4(),)).fetchone()
        c.execute("INSERT INTO floor_log (id, at, jti) VALUES (%s, now(), %s)",
                  (uuid.uuid4(), claims["jti"]))

    @app.get("/hello")
    def hello() -> str:
        return "ok"

    @app.post("/verify")
    def verify_only() -> Any:
        return jsonify(decision="eligible", tier=verify()["tier"])

    @app.post("/verify-write")
    def verify_write() -> Any:
        claims = verify()
        write(claims, read=False)
        return jsonify(decision="eligible", tier=claims["tier"])

    @app.post("/verify-read-write")
    def verify_read_write() -> Any:
        claims = verify()
        write(claims, read=True)
        return jsonify(decision="eligible", tier=claims["tier"])

    @app.post("/issue")
    def issue() -> Any:
        bearer = request.headers["Authorization"].removeprefix("Bearer ")
        access: dict[str, Any] = jwt.decode(bearer, public_key, algorithms=["EdDSA"],
                                            audience="xinyi-partners")
        c = conn()
        c.execute("SELECT id FROM floor_log WHERE id = %s", (uuid.uuid4(),)).fetchone()
        c.execute("SELECT id FROM floor_log WHERE id = %s", (uuid.uuid4(),)).fetchone()
        jti = uuid.uuid4().hex
        token = jwt.encode({**access, "jti": jti, "sub": uuid.uuid4().hex}, private_key,
                           algorithm="EdDSA", headers={"kid": "0" * 43})
        c.execute("INSERT INTO floor_log (id, at, jti) VALUES (%s, now(), %s)",
                  (uuid.uuid4(), jti))
        kv.set("floors:short:" + uuid.uuid4().hex, jti.encode(), ex=120)
        return jsonify(items=[{"id": jti, "qr_payload": "XY1:" + token}]), 201

    def raw_verify_write(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        token = json.loads(environ["wsgi.input"].read(size))["credential"]
        claims: dict[str, Any] = jwt.decode(token, public_key, algorithms=["EdDSA"],
                                            audience="xinyi-partners")
        kv.get("floors:seen:" + claims["jti"])
        write(claims, read=False)
        body = json.dumps({"decision": "eligible", "tier": claims["tier"]}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, {"/raw/verify-write": raw_verify_write})
    return app
