"""Engine settings that need no database to check."""

from __future__ import annotations

from xinyi.db import CONNECT_TIMEOUT_SECONDS, make_engine


def test_postgresql_connections_give_up_after_a_few_seconds() -> None:
    """An unreachable database host fails a request or /readyz quickly instead of hanging
    until gunicorn kills the worker; a connect_timeout already in the URL is kept."""
    for url in ("postgresql://app:pw@db.example:5432/xinyi",
                "postgresql+psycopg://app:pw@db.example:5432/xinyi?sslmode=require"):
        engine = make_engine(url)
        assert engine.url.query["connect_timeout"] == str(CONNECT_TIMEOUT_SECONDS)
        assert engine.url.password == "pw"  # the rest of the URL is untouched
        engine.dispose()
    engine = make_engine("postgresql+psycopg://app@db.example/xinyi?connect_timeout=2")
    assert engine.url.query["connect_timeout"] == "2"
    engine.dispose()
    sqlite = make_engine("sqlite://")
    assert "connect_timeout" not in sqlite.url.query
    sqlite.dispose()
