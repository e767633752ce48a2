"""One settings object, read from ``XINYI_*`` environment variables.

In ``development`` the app generates its secrets once and keeps them under ``instance/`` so a
newcomer needs nothing; in ``production`` it refuses to start without explicit keys, Redis and
PostgreSQL, because a silently generated key there would lose data on the next deploy.
"""

from __future__ import annotations

import base64
import json
import math
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENVIRONMENTS = ("development", "test", "production")


class ConfigError(RuntimeError):
    """The settings cannot run the service safely."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _decode_key(text: str, name: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ConfigError(f"{name} is not valid base64") from exc
    if len(raw) != 32:
        raise ConfigError(f"{name} must be 32 bytes (base64)")
    return raw


def _whole(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number") from None


def _flag(text: str | None, name: str) -> bool | None:
    """An optional on/off setting: unset (or empty) is None, the default applies."""
    if not text:
        return None
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no"):
        return False
    raise ConfigError(f"{name} must be 1 or 0")


def _seconds(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a number of seconds")
    return value


def _ed25519_pem(pem: bytes) -> bool:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return isinstance(key, Ed25519PrivateKey)


def _pem(text: str) -> bytes:
    r"""A PEM from the environment. One line with "\n" for its line breaks works too (a PEM
    never holds a backslash), as env files without multi-line values must write it."""
    return text.replace(r"\n", "\n").encode()


def _redis_scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme
    except ValueError:
        return ""


def parse_data_keys(text: str) -> dict[int, bytes]:
    """Parse ``"1:<base64>,2:<base64>"`` into versioned AES-256 keys."""
    keys: dict[int, bytes] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        version, _, encoded = part.partition(":")
        if not version.isdigit() or not 0 < int(version) < 256:
            raise ConfigError("XINYI_DATA_KEYS entries must look like '<1-255>:<base64 key>'")
        keys[int(version)] = _decode_key(encoded, "XINYI_DATA_KEYS")
    return keys


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = "sqlite:///instance/xinyi.db"
    redis_url: str | None = None
    data_keys: Mapping[int, bytes] = field(default_factory=dict, repr=False)
    data_key_current: int = 1
    blind_index_key: bytes = field(default=b"", repr=False)
    jwt_private_key_pem: bytes = field(default=b"", repr=False)
    jwt_issuer: str = "https://xinyi.example.gov.cn"
    jwt_audience: str = "xinyi-api"
    # Short on purpose: the QR credential must fit a version-15 QR at level M (DESIGN §5).
    credential_issuer: str = "xy"
    access_token_seconds: int = 15 * 60
    refresh_token_days: int = 30
    # Webhook endpoints: ``allow_private`` lifts the private-address check (tests, the local
    # demo); ``https`` is required in production and, unless set, only there; delivered
    # events and their attempt logs are purged after ``retention_days``.
    webhook_allow_private: bool = False
    # Delivery worker: how long a leased delivery stays claimed (it must outlast one attempt,
    # 15 s, with a margin), requests in flight per worker process and per endpoint.
    webhook_lease_seconds: int = 60
    webhook_concurrency: int = 32
    webhook_in_flight_per_endpoint: int = 4
    webhook_require_https: bool | None = None
    webhook_retention_days: int = 30
    # The access-log sealer signs a tree head this often when the tree grew; ``audit verify``
    # calls an entry still unsealed after ``seal_alert_seconds`` a divergence.
    tree_head_interval_seconds: float = 5.0
    # The sealer connects as its own role (docs/sql/sealer_role.sql) when this is set.
    sealer_database_url: str | None = None
    seal_alert_seconds: float = 300.0
    realname_verifier: str = "dev"
    # SMS / push sender (``notify.make_sender``); production must choose one explicitly.
    message_sender: str = "log"
    # The ``http`` verifier's endpoint and contract: see xinyi.realname.
    realname_url: str = ""
    realname_api_key: str = field(default="", repr=False)
    realname_timeout_seconds: float = 3.0
    realname_retries: int = 2
    realname_breaker_failures: int = 5
    realname_breaker_seconds: float = 30.0
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 64 * 1024
    # Login attempts: tight per (phone, address), so that guessing from one address cannot
    # lock the owner out elsewhere; loose per phone, against a broad attack from many
    # addresses; and per address, against one address trying many phones.
    login_limit_per_phone_address: str = "5/5minute"
    login_limit_per_phone: str = "50/15minute"
    login_limit_per_address: str = "30/5minute"
    register_limit_per_address: str = "10/hour"
    register_limit_per_phone: str = "3/hour"
    # Reports of dishonest behaviour (有奖举报) a citizen may file.
    report_limit_per_citizen: str = "5/day"
    # Days between a provider's report that a commitment was broken (the citizen is notified)
    # and the record it becomes.
    commitment_breach_grace_days: int = 7
    max_body_bytes: int = 1024 * 1024
    # Offline verifications: the partner SDK grants nothing once its copy of the keys is this
    # old, and a partner has this long after that to upload what it verified offline. The
    # jti → holder link is kept for both together, so that a late upload is still attributed.
    offline_key_age_hours: int = 24
    offline_upload_window_hours: int = 48
    # The citizen's export: past this many rows the synchronous ``GET /v1/me/export`` refuses
    # (413 ``export_too_large``) and points to the background export; exports per citizen.
    export_sync_max_rows: int = 5000
    export_limit_per_citizen: str = "10/hour"
    # Deadlines in working days (official calendar): a repair is decided within 3 (R9), an
    # objection resolved within this many.
    repair_working_days: int = 3
    dispute_working_days: int = 15
    trust_proxy_hops: int = 0
    # Where clients reach this service (``https://api.xinyi.example.cn``): absolute links in
    # public documents use it; unset, they follow the request's host.
    public_url: str | None = None
    instance_path: str = "instance"
    # The shred list (closed accounts, one JSON line each), kept outside the database so that
    # a restored backup can be made to forget them again (`xinyi restore-check`). Unset, it
    # is ``shred-list.jsonl`` under the instance path.
    shred_list_path: str | None = None
    log_level: str = "INFO"

    @property
    def shred_list(self) -> Path:
        return Path(self.shred_list_path or Path(self.instance_path) / "shred-list.jsonl")

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def webhook_https_only(self) -> bool:
        """Endpoint URLs must be https: always in production, elsewhere only if set."""
        if self.webhook_require_https is None:
            return self.is_production
        return self.webhook_require_https

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def missing(self) -> list[str]:
        """The required settings that are not set at all, by their variable names."""
        required: list[tuple[str, object]] = [
            ("XINYI_DATA_KEYS", self.data_keys), ("XINYI_BLIND_INDEX_KEY", self.blind_index_key),
            ("XINYI_JWT_PRIVATE_KEY", self.jwt_private_key_pem)]
        if self.is_production:  # the dev verifier accepts any name: production chooses one
            required += [("XINYI_REDIS_URL", self.redis_url),
                         ("XINYI_REALNAME_VERIFIER", self.realname_verifier),
                         ("XINYI_MESSAGE_SENDER", self.message_sender)]
        return [name for name, value in required if not value]

    def validate(self) -> None:
        if self.env not in ENVIRONMENTS:
            raise ConfigError(f"XINYI_ENV must be one of {', '.join(ENVIRONMENTS)}")
        # Every unset one named at once: a first deployment learns all it lacks in one go
        # (and not, for missing keys, that XINYI_DATA_KEY_CURRENT names a key that is absent).
        if missing := self.missing():
            where = " in production" if self.is_production else ""
            raise ConfigError(f"missing setting{'s' if len(missing) > 1 else ''}{where}: "
                              f"{', '.join(missing)} (.env.example lists each, with the "
                              "command that generates it)")
        if self.data_key_current not in self.data_keys:
            raise ConfigError("XINYI_DATA_KEY_CURRENT names a key that XINYI_DATA_KEYS lacks")
        if len(self.blind_index_key) != 32:
            raise ConfigError("XINYI_BLIND_INDEX_KEY must be 32 bytes (base64)")
        if not _ed25519_pem(self.jwt_private_key_pem):
            raise ConfigError("XINYI_JWT_PRIVATE_KEY must be an Ed25519 private key (PKCS#8 PEM)")
        if not 1 <= self.repair_working_days <= 60 or not 1 <= self.dispute_working_days <= 60:
            raise ConfigError("XINYI_REPAIR_WORKING_DAYS and XINYI_DISPUTE_WORKING_DAYS must "
                              "be whole numbers of working days from 1 to 60")
        if self.is_production and not self.database_url.startswith("postgresql"):
            raise ConfigError("production requires a PostgreSQL XINYI_DATABASE_URL")
        # Checked here, so a bad value is a one-line refusal (never echoing a URL's password)
        # rather than a traceback from whichever component first reads it.
        try:
            make_url(self.database_url).get_dialect()
        except (ArgumentError, ValueError):
            raise ConfigError(
                "XINYI_DATABASE_URL is not a database URL this service can use") from None
        if self.redis_url and _redis_scheme(self.redis_url) not in ("redis", "rediss", "unix"):
            raise ConfigError("XINYI_REDIS_URL must be a redis://, rediss:// or unix:// URL")
        if self.webhook_lease_seconds < 20:
            raise ConfigError("XINYI_WEBHOOK_LEASE_SECONDS must be at least 20 (one attempt "
                              "takes up to 15 s)")
        if not 1 <= self.webhook_in_flight_per_endpoint <= self.webhook_concurrency:
            raise ConfigError("XINYI_WEBHOOK_IN_FLIGHT_PER_ENDPOINT must be between 1 and "
                              "XINYI_WEBHOOK_CONCURRENCY")
        if self.is_production and self.webhook_require_https is False:
            raise ConfigError("XINYI_WEBHOOK_HTTPS_ONLY cannot be turned off in production")
        if self.export_sync_max_rows < 1:
            raise ConfigError("XINYI_EXPORT_SYNC_MAX_ROWS must be at least 1")
        if self.offline_key_age_hours < 1 or self.offline_upload_window_hours < 1:
            raise ConfigError("XINYI_OFFLINE_KEY_AGE_HOURS and XINYI_OFFLINE_UPLOAD_WINDOW_HOURS "
                              "must be at least 1")
        if self.webhook_retention_days < 1:
            raise ConfigError("XINYI_WEBHOOK_RETENTION_DAYS must be at least 1")
        if self.public_url is not None:
            _check_public_url(self.public_url, https=self.is_production)
        from xinyi.realname import make_verifier

        try:
            make_verifier(self)
        except ValueError as exc:  # its message names the setting, never a value
            raise ConfigError(str(exc)) from None
        from xinyi.notify import SENDERS

        if self.message_sender and self.message_sender not in SENDERS:
            raise ConfigError("XINYI_MESSAGE_SENDER names no known sender")


def _check_public_url(url: str, *, https: bool) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        parts = None
    schemes = ("https",) if https else ("http", "https")
    if (parts is None or parts.scheme not in schemes or not parts.hostname
            or parts.query or parts.fragment or parts.username or parts.password):
        raise ConfigError(f"XINYI_PUBLIC_URL must be an {' or '.join(schemes)} URL such as "
                          "https://api.xinyi.example.cn, without query or user")


def _generated_secrets(instance: Path) -> dict[str, str]:
    """Development keys, generated once and kept so restarts can still decrypt data."""
    path = instance / "dev-keys.json"
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    instance.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    generated = {
        "XINYI_DATA_KEYS": f"1:{_b64(secrets.token_bytes(32))}",
        "XINYI_BLIND_INDEX_KEY": _b64(secrets.token_bytes(32)),
        "XINYI_JWT_PRIVATE_KEY": pem.decode("ascii"),
    }
    # Several processes may start together on a fresh instance (gunicorn workers loading the
    # app themselves, a server and a worker): the file appears complete or not at all
    # (written aside, then hard-linked into place, which fails if it exists), and whoever
    # loses the race uses the winner's keys, so that every process encrypts alike.
    fd, aside = tempfile.mkstemp(prefix=".dev-keys-", dir=instance)  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(generated, fh)
            fh.flush()
            os.fsync(fh.fileno())
        placed = _place(Path(aside), path)
    finally:
        os.unlink(aside)
    if not placed:
        won: dict[str, str] = json.loads(path.read_text())
        return won
    return generated


def _place(aside: Path, path: Path) -> bool:
    """Put the finished file at ``path`` unless one is there (False: another process won)."""
    try:
        os.link(aside, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # a filesystem without hard links (some bind mounts): exclusive create
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as out:
            out.write(aside.read_bytes())
        return True


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    mode = env.get("XINYI_ENV", "development")
    instance = Path(env.get("XINYI_INSTANCE_PATH", "instance"))
    if mode != "production":
        for name, value in _generated_secrets(instance).items():
            env.setdefault(name, value)
    data_keys = parse_data_keys(env.get("XINYI_DATA_KEYS", ""))
    current = env.get("XINYI_DATA_KEY_CURRENT")
    settings = Settings(
        env=mode,
        database_url=env.get("XINYI_DATABASE_URL", f"sqlite:///{instance.resolve()}/xinyi.db"),
        redis_url=env.get("XINYI_REDIS_URL") or None,
        data_keys=data_keys,
        data_key_current=(_whole(current, "XINYI_DATA_KEY_CURRENT") if current
                          else max(data_keys, default=1)),
        blind_index_key=_decode_key(env["XINYI_BLIND_INDEX_KEY"], "XINYI_BLIND_INDEX_KEY")
        if env.get("XINYI_BLIND_INDEX_KEY")
        else b"",
        jwt_private_key_pem=_pem(env.get("XINYI_JWT_PRIVATE_KEY", "")),
        jwt_issuer=env.get("XINYI_JWT_ISSUER", Settings.jwt_issuer),
        webhook_allow_private=env.get("XINYI_WEBHOOK_ALLOW_PRIVATE", "") in ("1", "true", "yes"),
        webhook_lease_seconds=_whole(env.get("XINYI_WEBHOOK_LEASE_SECONDS", "60"),
                                     "XINYI_WEBHOOK_LEASE_SECONDS"),
        webhook_concurrency=_whole(env.get("XINYI_WEBHOOK_CONCURRENCY", "32"),
                                   "XINYI_WEBHOOK_CONCURRENCY"),
        webhook_in_flight_per_endpoint=_whole(
            env.get("XINYI_WEBHOOK_IN_FLIGHT_PER_ENDPOINT", "4"),
            "XINYI_WEBHOOK_IN_FLIGHT_PER_ENDPOINT"),
        webhook_require_https=_flag(env.get("XINYI_WEBHOOK_HTTPS_ONLY"),
                                    "XINYI_WEBHOOK_HTTPS_ONLY"),
        webhook_retention_days=_whole(env.get("XINYI_WEBHOOK_RETENTION_DAYS", "30"),
                                      "XINYI_WEBHOOK_RETENTION_DAYS"),
        tree_head_interval_seconds=_seconds(env.get("XINYI_TREE_HEAD_INTERVAL_SECONDS", "5"),
                                            "XINYI_TREE_HEAD_INTERVAL_SECONDS"),
        sealer_database_url=env.get("XINYI_SEALER_DATABASE_URL") or None,
        seal_alert_seconds=_seconds(env.get("XINYI_SEAL_ALERT_SECONDS", "300"),
                                    "XINYI_SEAL_ALERT_SECONDS"),
        realname_verifier=env.get("XINYI_REALNAME_VERIFIER",
                                  "" if mode == "production" else "dev"),
        message_sender=env.get("XINYI_MESSAGE_SENDER", "" if mode == "production" else "log"),
        realname_url=env.get("XINYI_REALNAME_URL", ""),
        realname_api_key=env.get("XINYI_REALNAME_API_KEY", ""),
        realname_timeout_seconds=_seconds(env.get("XINYI_REALNAME_TIMEOUT_SECONDS", "3"),
                                          "XINYI_REALNAME_TIMEOUT_SECONDS"),
        realname_retries=_whole(env.get("XINYI_REALNAME_RETRIES", "2"),
                                "XINYI_REALNAME_RETRIES"),
        realname_breaker_failures=_whole(env.get("XINYI_REALNAME_BREAKER_FAILURES", "5"),
                                         "XINYI_REALNAME_BREAKER_FAILURES"),
        realname_breaker_seconds=_seconds(env.get("XINYI_REALNAME_BREAKER_SECONDS", "30"),
                                          "XINYI_REALNAME_BREAKER_SECONDS"),
        repair_working_days=_whole(env.get("XINYI_REPAIR_WORKING_DAYS", "3"),
                                   "XINYI_REPAIR_WORKING_DAYS"),
        dispute_working_days=_whole(env.get("XINYI_DISPUTE_WORKING_DAYS", "15"),
                                    "XINYI_DISPUTE_WORKING_DAYS"),
        trust_proxy_hops=_whole(env.get("XINYI_TRUST_PROXY_HOPS", "0"),
                                "XINYI_TRUST_PROXY_HOPS"),
        export_sync_max_rows=_whole(env.get("XINYI_EXPORT_SYNC_MAX_ROWS", "5000"),
                                    "XINYI_EXPORT_SYNC_MAX_ROWS"),
        offline_key_age_hours=_whole(env.get("XINYI_OFFLINE_KEY_AGE_HOURS", "24"),
                                     "XINYI_OFFLINE_KEY_AGE_HOURS"),
        offline_upload_window_hours=_whole(env.get("XINYI_OFFLINE_UPLOAD_WINDOW_HOURS", "48"),
                                           "XINYI_OFFLINE_UPLOAD_WINDOW_HOURS"),
        public_url=env.get("XINYI_PUBLIC_URL") or None,
        instance_path=str(instance),
        shred_list_path=env.get("XINYI_SHRED_LIST") or None,
        log_level=env.get("XINYI_LOG_LEVEL", "INFO"),
    )
    settings.validate()
    return settings
