"""A partner's row is found by its primary key, never by walking the partner's rows.

The hot lookups ask for one row by id and check that it is the caller's (``id = :id AND
partner_id = :me``). With ``=`` the partner's index (``partner_id, created_at``) is a
candidate too, and without fresh statistics (a new table, autovacuum behind or off) the
planner ties it with the key and may pick it: every open then reads all of that partner's
verifications, every close all of its sessions, and a prepared statement keeps the plan
for the connection's life. The owner is tested ``IS NOT DISTINCT FROM`` (never an index
condition) so the key is the only way in, whatever the statistics say."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from tests.integration.test_benefit_sessions import World


def _scans(plan: dict[str, Any], table: str) -> list[dict[str, Any]]:
    found = [plan] if plan.get("Relation Name") == table and "Scan" in plan["Node Type"] else []
    for child in plan.get("Plans", []):
        found += _scans(child, table)
    return found


def _plans_of(world: World, statements: list[tuple[str, Any]], table: str) -> list[dict[str, Any]]:
    """Each captured statement that reads ``table``, explained (and rolled back) on the
    test's connection, with the parameters it ran with."""
    scans: list[dict[str, Any]] = []
    with world.deps.db.session() as s:
        conn = s.connection()
        for text, params in statements:
            nested = conn.begin_nested()
            try:
                cursor = conn.connection.driver_connection.cursor()
                cursor.execute("EXPLAIN (FORMAT JSON) " + text, params)
                raw = cursor.fetchone()[0]
                plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
                scans += _scans(plan, table)
            finally:
                nested.rollback()
    return scans


def _by_key_only(world: World, seen: list[tuple[str, Any]], table: str) -> None:
    scans = _plans_of(world, seen, table)
    assert scans, seen
    for scan in scans:
        assert scan.get("Index Name") == f"pk_{table}", scan
        assert "partner_id" not in scan.get("Index Cond", ""), scan


def _capture(world: World, marker: str, action: Any) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if marker in statement:
            seen.append((statement, params))

    engine = world.deps.db.engine
    event.listen(engine, "before_cursor_execute", grab)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    assert seen, f"no statement on {marker} was run"
    return seen


@pytest.fixture
def busy(app: Flask, client: FlaskClient) -> tuple[World, dict[str, str], dict[str, str]]:
    world = World(app, client)
    if world.deps.db.engine.dialect.name != "postgresql":
        pytest.skip("the planner in question is PostgreSQL's")
    partner, _, _ = world.partner()
    citizen, _ = world.citizen()
    for _ in range(12):  # the partner has rows of its own that a wrong plan would walk
        opened = world.opened(partner, citizen, 100)
        assert world.call(partner, opened["session_id"], "close",
                          {"outcome": "fulfilled", "amount_owed_fen": 0}).status_code == 200
    return world, partner, citizen


def test_a_close_finds_the_session_by_its_key(
        busy: tuple[World, dict[str, str], dict[str, str]]) -> None:
    world, partner, citizen = busy
    opened = world.opened(partner, citizen, 100)
    seen = _capture(world, "UPDATE benefit_sessions", lambda: world.call(
        partner, opened["session_id"], "close", {"outcome": "fulfilled", "amount_owed_fen": 0},
        key=uuid.uuid4().hex))
    _by_key_only(world, seen, "benefit_sessions")


def test_an_open_finds_the_verification_by_its_key(
        busy: tuple[World, dict[str, str], dict[str, str]]) -> None:
    world, partner, citizen = busy
    v = world.verification(citizen, partner)
    seen = _capture(world, "FROM verifications", lambda: world.open(
        partner, v["id"], 100, due=timedelta(days=7), key=uuid.uuid4().hex))
    _by_key_only(world, seen, "verifications")


def test_another_partners_session_is_still_not_found(
        busy: tuple[World, dict[str, str], dict[str, str]]) -> None:
    """The owner test is the same test written differently: another partner's id misses."""
    world, partner, citizen = busy
    other, _, _ = world.partner()
    opened = world.opened(partner, citizen, 100)
    for action in ("close", "cancel"):
        resp = world.call(other, opened["session_id"], action,
                          {"outcome": "fulfilled", "amount_owed_fen": 0}
                          if action == "close" else None)
        assert resp.status_code == 404, resp.get_json()
    v = world.verification(citizen, partner)
    assert world.open(other, v["id"], 100).status_code == 404
