"""Settings: production refuses unsafe configuration; development makes its keys exactly once."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from xinyi import config
from xinyi.config import ConfigError, Settings, load_settings, parse_data_keys


def b64key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def pem() -> str:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


def production_env(tmp_path: Path, **changes: str | None) -> dict[str, str]:
    env: dict[str, str | None] = {
        "XINYI_ENV": "production",
        "XINYI_INSTANCE_PATH": str(tmp_path / "instance"),
        "XINYI_DATABASE_URL": "postgresql+psycopg://xinyi@db/xinyi",
        "XINYI_REDIS_URL": "redis://cache:6379/0",
        "XINYI_DATA_KEYS": f"1:{b64key()},2:{b64key()}",
        "XINYI_DATA_KEY_CURRENT": "2",
        "XINYI_BLIND_INDEX_KEY": b64key(),
        "XINYI_JWT_PRIVATE_KEY": pem(),
        "XINYI_REALNAME_VERIFIER": "dev",
        "XINYI_MESSAGE_SENDER": "log",
    }
    env.update(changes)
    return {k: v for k, v in env.items() if v is not None}


def test_complete_production_settings_load(tmp_path: Path) -> None:
    settings = load_settings(production_env(tmp_path))
    assert settings.is_production
    assert sorted(settings.data_keys) == [1, 2] and settings.data_key_current == 2
    assert not (tmp_path / "instance").exists(), "production must never generate keys"


@pytest.mark.parametrize("missing", ["XINYI_DATA_KEYS", "XINYI_BLIND_INDEX_KEY",
                                     "XINYI_JWT_PRIVATE_KEY", "XINYI_REALNAME_VERIFIER",
                                     "XINYI_MESSAGE_SENDER"])
def test_production_refuses_to_start_without_each_key(tmp_path: Path, missing: str) -> None:
    env = production_env(tmp_path, **{missing: None})
    if missing == "XINYI_DATA_KEYS":
        del env["XINYI_DATA_KEY_CURRENT"]
    with pytest.raises(ConfigError):
        load_settings(env)
    assert not (tmp_path / "instance").exists(), "production must never generate keys"


def test_the_public_url_is_read_when_set(tmp_path: Path) -> None:
    assert load_settings(production_env(tmp_path)).public_url is None
    settings = load_settings(production_env(tmp_path,
                                            XINYI_PUBLIC_URL="https://api.xinyi.example.cn"))
    assert settings.public_url == "https://api.xinyi.example.cn"


@pytest.mark.parametrize("missing", ["XINYI_DATA_KEYS", "XINYI_BLIND_INDEX_KEY",
                                     "XINYI_JWT_PRIVATE_KEY", "XINYI_REDIS_URL",
                                     "XINYI_REALNAME_VERIFIER", "XINYI_MESSAGE_SENDER"])
def test_a_missing_setting_is_named_not_a_misleading_one(tmp_path: Path, missing: str) -> None:
    """Without XINYI_DATA_KEYS the refusal used to be about XINYI_DATA_KEY_CURRENT; an env file
    that sets only XINYI_DATA_KEY_CURRENT (as .env.example does) must not change that."""
    with pytest.raises(ConfigError) as refused:
        load_settings(production_env(tmp_path, **{missing: None, "XINYI_DATA_KEY_CURRENT": "1"}))
    assert str(refused.value).startswith(f"missing setting in production: {missing} ")
    assert ".env.example" in str(refused.value)


def test_every_missing_setting_is_named_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"XINYI_ENV": "production",
                       "XINYI_DATABASE_URL": "postgresql+psycopg://xinyi_app@db/xinyi"})
    assert str(refused.value).startswith(
        "missing settings in production: XINYI_DATA_KEYS, XINYI_BLIND_INDEX_KEY, "
        "XINYI_JWT_PRIVATE_KEY, XINYI_REDIS_URL, XINYI_REALNAME_VERIFIER, "
        "XINYI_MESSAGE_SENDER ")


def test_the_env_example_and_the_compose_file_carry_every_required_setting() -> None:
    root = Path(__file__).resolve().parents[2]
    example = (root / ".env.example").read_text(encoding="utf-8")
    compose = (root / "docker-compose.yml").read_text(encoding="utf-8")
    required = Settings(env="production", realname_verifier="", message_sender="").missing()
    assert len(required) == 6
    for name in required:  # each given to the app's containers ...
        assert re.search(rf"^  {name}: ", compose, re.MULTILINE), name
    from_env = set(re.findall(r"\$\{(\w+)", compose))  # ... and each taken from .env listed
    assert {"POSTGRES_PASSWORD", "XINYI_APP_DB_PASSWORD", "XINYI_DATA_KEYS"} <= from_env
    for name in from_env:
        assert re.search(rf"^(# )?{name}=", example, re.MULTILINE), name


def test_a_pem_on_one_line_with_escaped_line_breaks_is_read(tmp_path: Path) -> None:
    one_line = pem().strip().replace("\n", "\\n")
    assert "\n" not in one_line
    settings = load_settings(production_env(tmp_path, XINYI_JWT_PRIVATE_KEY=one_line))
    assert settings.jwt_private_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")


def test_production_refuses_to_start_without_redis(tmp_path: Path) -> None:
    for value in (None, ""):
        with pytest.raises(ConfigError, match="XINYI_REDIS_URL"):
            load_settings(production_env(tmp_path, XINYI_REDIS_URL=value))


@pytest.mark.parametrize("url", [None, "sqlite:///tmp/x.db", "mysql://db/xinyi"])
def test_production_refuses_to_start_without_postgresql(tmp_path: Path, url: str | None) -> None:
    with pytest.raises(ConfigError, match="PostgreSQL"):
        load_settings(production_env(tmp_path, XINYI_DATABASE_URL=url))


def test_current_data_key_must_be_one_of_the_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="XINYI_DATA_KEY_CURRENT"):
        load_settings(production_env(tmp_path, XINYI_DATA_KEY_CURRENT="3"))


@pytest.mark.parametrize("text", ["1:not-base64!", f"1:{base64.b64encode(b'short').decode()}",
                                  f"0:{b64key()}", f"256:{b64key()}", f"x:{b64key()}", b64key()])
def test_malformed_data_keys_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_data_keys(text)


def test_data_keys_parse_versions() -> None:
    one, two = secrets.token_bytes(32), secrets.token_bytes(32)
    text = f" 1:{base64.b64encode(one).decode()} , 2:{base64.b64encode(two).decode()},"
    assert parse_data_keys(text) == {1: one, 2: two}


def test_short_blind_index_key_is_refused(tmp_path: Path) -> None:
    short = base64.b64encode(secrets.token_bytes(16)).decode()
    with pytest.raises(ConfigError, match="XINYI_BLIND_INDEX_KEY"):
        load_settings(production_env(tmp_path, XINYI_BLIND_INDEX_KEY=short))


def test_unknown_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="XINYI_ENV"):
        load_settings(production_env(tmp_path, XINYI_ENV="staging"))


def test_secrets_are_kept_out_of_the_settings_repr(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    text = repr(load_settings(env))
    for name in ("XINYI_BLIND_INDEX_KEY", "XINYI_JWT_PRIVATE_KEY"):
        assert env[name].strip() not in text
    for part in env["XINYI_DATA_KEYS"].split(","):
        assert part.split(":", 1)[1] not in text


def test_development_generates_keys_once_and_reuses_them(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    env = {"XINYI_INSTANCE_PATH": str(instance)}
    first = load_settings(env)
    keyfile = instance / "dev-keys.json"
    assert keyfile.exists()
    assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600
    assert first.env == "development" and not first.is_production
    assert first.database_url == f"sqlite:///{instance.resolve()}/xinyi.db"
    assert first.redis_url is None
    written = keyfile.read_text()

    second = load_settings(env)
    assert keyfile.read_text() == written
    assert second.data_keys == first.data_keys
    assert second.blind_index_key == first.blind_index_key
    assert second.jwt_private_key_pem == first.jwt_private_key_pem
    assert json.loads(written).keys() == {"XINYI_DATA_KEYS", "XINYI_BLIND_INDEX_KEY",
                                          "XINYI_JWT_PRIVATE_KEY"}


def test_a_process_that_loses_the_race_to_create_development_keys_uses_the_winners(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes starting on a fresh instance: the second finds no file, generates its own
    keys, and meanwhile the first writes the file. It must adopt the first one's keys (not
    crash, and never run with keys that differ from the other process's)."""
    instance = tmp_path / "instance"
    env = {"XINYI_INSTANCE_PATH": str(instance)}
    other = tmp_path / "other"
    winner = load_settings({"XINYI_INSTANCE_PATH": str(other)})
    generate = config.Ed25519PrivateKey.generate

    def meanwhile() -> Any:
        instance.mkdir(parents=True, exist_ok=True)
        (instance / "dev-keys.json").write_text((other / "dev-keys.json").read_text())
        return generate()

    monkeypatch.setattr(config.Ed25519PrivateKey, "generate", meanwhile)
    loser = load_settings(env)
    assert loser.data_keys == winner.data_keys
    assert loser.blind_index_key == winner.blind_index_key
    assert loser.jwt_private_key_pem == winner.jwt_private_key_pem
    assert [p.name for p in instance.iterdir()] == ["dev-keys.json"]  # nothing left aside


def test_development_keys_are_kept_where_hard_links_are_not_supported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(*_args: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(config.os, "link", no_links)
    instance = tmp_path / "instance"
    first = load_settings({"XINYI_INSTANCE_PATH": str(instance)})
    keyfile = instance / "dev-keys.json"
    assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600
    assert [p.name for p in instance.iterdir()] == ["dev-keys.json"]
    assert load_settings({"XINYI_INSTANCE_PATH": str(instance)}).data_keys == first.data_keys


def test_development_keys_differ_per_instance(tmp_path: Path) -> None:
    a = load_settings({"XINYI_INSTANCE_PATH": str(tmp_path / "a")})
    b = load_settings({"XINYI_INSTANCE_PATH": str(tmp_path / "b")})
    assert a.blind_index_key != b.blind_index_key
    assert a.data_keys != b.data_keys


def test_explicit_keys_win_over_generated_ones_in_development(tmp_path: Path) -> None:
    explicit = b64key()
    settings = load_settings({"XINYI_INSTANCE_PATH": str(tmp_path / "i"),
                              "XINYI_BLIND_INDEX_KEY": explicit})
    assert settings.blind_index_key == base64.b64decode(explicit)


def test_validate_refuses_settings_without_a_signing_key() -> None:
    settings = Settings(data_keys={1: secrets.token_bytes(32)},
                        blind_index_key=secrets.token_bytes(32))
    with pytest.raises(ConfigError, match="XINYI_JWT_PRIVATE_KEY"):
        settings.validate()


@pytest.mark.parametrize(("name", "value"), [
    ("XINYI_DATABASE_URL", "postgresql+psycopg://xinyi:s3cret@db:notaport/xinyi"),
    ("XINYI_DATABASE_URL", "postgresql+nosuchdriver://xinyi:s3cret@db/xinyi"),
    ("XINYI_DATABASE_URL", "postgresql at db.internal, password s3cret"),
    ("XINYI_REDIS_URL", "cache.internal:6379 s3cret"),
    ("XINYI_TRUST_PROXY_HOPS", "one"),
    ("XINYI_DATA_KEY_CURRENT", "two"),
    ("XINYI_JWT_PRIVATE_KEY", "s3cret, not a key"),
    ("XINYI_JWT_PRIVATE_KEY", "密钥 s3cret"),
    ("XINYI_REALNAME_VERIFIER", "nosuch"),
    ("XINYI_MESSAGE_SENDER", "nosuch"),
    ("XINYI_PUBLIC_URL", "http://api.xinyi.example.cn"),  # production: https only
    ("XINYI_PUBLIC_URL", "https://xinyi:s3cret@api.xinyi.example.cn"),
    ("XINYI_PUBLIC_URL", "https://api.xinyi.example.cn/?key=s3cret"),
    ("XINYI_PUBLIC_URL", "https://api.xinyi.example.cn:s3cret/"),
    ("XINYI_PUBLIC_URL", "api.xinyi.example.cn s3cret"),
])
def test_unreadable_settings_are_refused_by_name_without_their_value(
        tmp_path: Path, name: str, value: str) -> None:
    """Refused as configuration (the CLI prints one line), never a crash later on, and the
    message names the variable without repeating a value that may hold a password."""
    with pytest.raises(ConfigError, match=name) as refused:
        load_settings(production_env(tmp_path, **{name: value}))
    assert "s3cret" not in str(refused.value)


def test_cli_refuses_an_unreadable_database_url_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from xinyi.cli import main

    monkeypatch.setenv("XINYI_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("XINYI_DATABASE_URL", "nosuch://xinyi:s3cret@db/xinyi")
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert result.output.strip().splitlines() == [
        "Error: configuration: XINYI_DATABASE_URL is not a database URL this service can use"]


def test_cli_reports_a_database_it_cannot_use_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database that is down, or was never migrated: one line naming the problem, exit 1,
    no traceback (whose SQL and parameters could carry personal data)."""
    from click.testing import CliRunner

    from xinyi.cli import main

    monkeypatch.setenv("XINYI_INSTANCE_PATH", str(tmp_path / "instance"))
    for url, hint in ((f"sqlite:///{tmp_path}/never-migrated.db", "xinyi db upgrade"),
                      ("postgresql+psycopg://xinyi:s3cret@127.0.0.1:1/xinyi", "127.0.0.1")):
        monkeypatch.setenv("XINYI_DATABASE_URL", url)
        result = CliRunner().invoke(main, ["audit", "verify"])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: database: "), lines
        assert hint in lines[0] and "s3cret" not in lines[0]


def test_webhook_urls_must_be_https_in_production_only_unless_set(tmp_path: Path) -> None:
    assert load_settings(production_env(tmp_path)).webhook_https_only is True
    dev = {"XINYI_ENV": "development", "XINYI_INSTANCE_PATH": str(tmp_path / "dev")}
    assert load_settings(dev).webhook_https_only is False
    assert load_settings({**dev, "XINYI_WEBHOOK_HTTPS_ONLY": "1"}).webhook_https_only is True
    with pytest.raises(ConfigError, match="XINYI_WEBHOOK_HTTPS_ONLY"):
        load_settings(production_env(tmp_path, XINYI_WEBHOOK_HTTPS_ONLY="0"))
    with pytest.raises(ConfigError, match="XINYI_WEBHOOK_HTTPS_ONLY"):
        load_settings({**dev, "XINYI_WEBHOOK_HTTPS_ONLY": "maybe"})


def test_webhook_retention_defaults_to_30_days_and_must_be_positive(tmp_path: Path) -> None:
    dev = {"XINYI_ENV": "development", "XINYI_INSTANCE_PATH": str(tmp_path / "dev")}
    assert load_settings(dev).webhook_retention_days == 30
    assert load_settings({**dev, "XINYI_WEBHOOK_RETENTION_DAYS": "7"}).webhook_retention_days == 7
    for bad in ("0", "-3", "x"):
        with pytest.raises(ConfigError, match="XINYI_WEBHOOK_RETENTION_DAYS"):
            load_settings({**dev, "XINYI_WEBHOOK_RETENTION_DAYS": bad})


def test_the_offline_link_is_kept_24_plus_48_hours_unless_set(tmp_path: Path) -> None:
    from datetime import timedelta

    from xinyi.credentials.service import link_retention

    dev = {"XINYI_ENV": "development", "XINYI_INSTANCE_PATH": str(tmp_path / "dev")}
    assert link_retention(load_settings(dev)) == timedelta(hours=72)
    assert link_retention(load_settings({**dev, "XINYI_OFFLINE_KEY_AGE_HOURS": "12",
                                         "XINYI_OFFLINE_UPLOAD_WINDOW_HOURS": "24"})) == (
        timedelta(hours=36))
    for name in ("XINYI_OFFLINE_KEY_AGE_HOURS", "XINYI_OFFLINE_UPLOAD_WINDOW_HOURS"):
        for bad in ("0", "-3", "x"):
            with pytest.raises(ConfigError, match=name):
                load_settings({**dev, name: bad})
