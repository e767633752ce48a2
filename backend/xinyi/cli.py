"""The ``xinyi`` command: serve, worker, db upgrade, seed-demo, staff create, openapi export."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from xinyi.config import ConfigError, load_settings
from xinyi.uow import UnitOfWork

log = logging.getLogger("xinyi.cli")

def _project_root() -> Path:
    """The checkout (editable install) or, in the container, the working directory."""
    for candidate in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (candidate / "alembic.ini").exists():
            return candidate
    return Path.cwd()


ROOT = _project_root()


def _settings() -> Any:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


class _Main(click.Group):
    """Turns a database the command cannot use (down, never migrated) into one line: no
    traceback, whose SQL and parameters could carry personal data."""

    def invoke(self, ctx: click.Context) -> Any:
        from sqlalchemy.exc import OperationalError, ProgrammingError

        try:
            return super().invoke(ctx)
        except (OperationalError, ProgrammingError) as exc:
            reason = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
            if "no such table" in reason or reason.startswith("relation "):
                reason += " (has `xinyi db upgrade` run?)"
            raise click.ClickException(f"database: {reason}") from None


@click.group(cls=_Main)
def main() -> None:
    """xinyi+ (信易+) backend."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64),
              help="threads per worker (gthread)")
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the API with gunicorn."""
    from xinyi.app import create_app
    from xinyi.serving import finish_unread_bodies, serve_with_gunicorn

    settings = _settings()
    if settings.redis_url is None and workers > 1:
        click.echo("no XINYI_REDIS_URL: the in-process store needs a single worker; using 1",
                   err=True)
        workers = 1
    if settings.database_url.startswith("sqlite") and workers > 1:
        click.echo("SQLite is the single-process embedded database; using 1 worker", err=True)
        workers = 1

    serve_with_gunicorn(
        # A body up to twice the limit is read to its end even when refused, so that a
        # client sending all of it before reading the answer gets the 413.
        lambda: finish_unread_bodies(create_app(settings), 2 * settings.max_body_bytes),
        bind=f"{host}:{port}", workers=workers, threads=threads)


@main.group()
def db() -> None:
    """Database schema."""


def alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    if url:
        cfg.attributes["database_url"] = url
    return cfg


_APP_ROLE = click.option(
    "--app-role", envvar="XINYI_APP_DB_ROLE", default="xinyi_app", show_default=True,
    help="The role the API and worker connect as (env XINYI_APP_DB_ROLE); its password, "
         "needed to create it or change it, comes from XINYI_APP_DB_PASSWORD only.")


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.option("--apply-roles", is_flag=True,
              help="Then apply the app role's privileges, as `xinyi db roles` does.")
@_APP_ROLE
def db_upgrade(revision: str, apply_roles: bool, app_role: str) -> None:
    """Apply migrations (alembic upgrade), as the database's owner role."""
    from alembic import command

    settings = _settings()
    if settings.database_url.startswith("sqlite:///"):
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.database_url), revision)
    click.echo(f"database at {revision}")
    if apply_roles:
        _apply_roles(settings.database_url, app_role)


@db.command("roles")
@_APP_ROLE
def db_roles(app_role: str) -> None:
    """Create or update the least-privilege app role and grant it what the app needs (no DDL,
    the access log append-only: docs/sql/production_roles.sql). Run as the owner role, after
    every upgrade; safe to repeat."""
    _apply_roles(_settings().database_url, app_role)


def _apply_roles(url: str, role: str) -> None:
    from xinyi.db import make_engine
    from xinyi.dbroles import RolesError, apply_roles

    sql = (ROOT / "docs" / "sql" / "production_roles.sql").read_text(encoding="utf-8")
    password = os.environ.get("XINYI_APP_DB_PASSWORD") or None
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            done = apply_roles(conn, sql, role=role, password=password)
    except RolesError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    how = "created" if done.created else "updated" if done.password_set else "kept"
    click.echo(f"role {done.role} {how}; {done.statements} privilege statements applied")
    _apply_sealer_role(url)


def _apply_sealer_role(url: str) -> None:
    """The access-log sealer's role (docs/sql/sealer_role.sql), when it exists or
    XINYI_SEALER_DB_PASSWORD is set to create it."""
    from sqlalchemy import text

    from xinyi.db import make_engine
    from xinyi.dbroles import RolesError, apply_roles

    role = os.environ.get("XINYI_SEALER_DB_ROLE") or "xinyi_sealer"
    password = os.environ.get("XINYI_SEALER_DB_PASSWORD") or None
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name != "postgresql":
                return
            exists = conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                                 {"r": role}) == 1
            if not exists and not password:
                click.echo(f"sealer role {role} not set up (set XINYI_SEALER_DB_PASSWORD to "
                           "create it); the sealer writes as the connecting role")
                return
            sql = (ROOT / "docs" / "sql" / "sealer_role.sql").read_text(encoding="utf-8")
            done = apply_roles(conn, sql, role=role, password=password)
    except RolesError as exc:
        raise click.ClickException(str(exc).replace("XINYI_APP_DB_PASSWORD",
                                                    "XINYI_SEALER_DB_PASSWORD")) from None
    finally:
        engine.dispose()
    how = "created" if done.created else "updated" if done.password_set else "kept"
    click.echo(f"sealer role {done.role} {how}; {done.statements} privilege statements applied")


@main.group()
def staff() -> None:
    """Credit-office staff accounts."""


@staff.command("create")
@click.option("--phone", required=True)
@click.option("--password", required=True, prompt=True, hide_input=True)
@click.option("--role", required=True, type=click.Choice(["operator", "reviewer", "auditor"]))
def staff_create(phone: str, password: str, role: str) -> None:
    """Create a staff account that logs in at /v1/auth/login."""
    from xinyi.auth.accounts import create_staff
    from xinyi.errors import DomainError
    from xinyi.wiring import build_deps

    deps = build_deps(_settings())
    with UnitOfWork(deps.db.sessions) as uow:
        try:
            account = create_staff(uow.session, deps, phone=phone, password=password, role=role)
        except DomainError as exc:
            raise click.ClickException(exc.detail) from None
        uow.commit()
    click.echo(f"staff {account.id} created with role {role}")


@main.command("seed-demo")
def seed_demo() -> None:
    """Create demo accounts once (idempotent); prints the logins."""
    from xinyi.seed import seed_demo as run
    from xinyi.wiring import build_deps

    deps = build_deps(_settings())
    for line in run(deps):
        click.echo(line)


@main.group()
def openapi() -> None:
    """The OpenAPI document."""


def build_openapi() -> dict[str, Any]:
    from xinyi.app import create_app
    from xinyi.config import Settings

    settings = _settings().with_overrides(database_url="sqlite://", redis_url=None)
    assert isinstance(settings, Settings)
    app = create_app(settings)
    spec: dict[str, Any] = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    return spec


@openapi.command("export")
@click.option("--output", default=str(ROOT / "openapi" / "openapi.json"), show_default=True)
def openapi_export(output: str) -> None:
    """Write the generated OpenAPI document (CI fails when the committed one drifts)."""
    text = json.dumps(build_openapi(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if output == "-":
        sys.stdout.write(text)
        return
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}")


@main.group()
def keys() -> None:
    """Signing keys for QR credentials and the access log's tree heads."""


@keys.command("rotate")
@click.option("--purpose", type=click.Choice(["credential", "audit"]), default="credential",
              show_default=True)
def keys_rotate(purpose: str) -> None:
    """Start signing with a new key; the old one stays published until its tokens expire."""
    from xinyi.signing.service import rotate
    from xinyi.wiring import build_deps

    deps = build_deps(_settings())
    with UnitOfWork(deps.db.sessions) as uow:
        row = rotate(uow.session, deps, purpose)
        uow.commit()
    click.echo(f"new {purpose} key {row.kid}")


@main.group()
def audit() -> None:
    """The tamper-evident access log."""


@audit.command("verify")
@click.option("--kept-head", "kept", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A tree head someone kept (JSON with tree_size and root_hash, e.g. a "
                   "transparency.tree_head event's data): the log must still extend it.")
def audit_verify(kept: tuple[str, ...]) -> None:
    """Recompute every chain, the Merkle tree and every signed tree head; exit 1 naming the
    first divergence."""
    from xinyi.audit.checkpoints import KeptHead, verify_all
    from xinyi.wiring import build_deps

    copies = []
    for path in kept:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
        copies.append(KeptHead(int(body["tree_size"]), bytes.fromhex(body["root_hash"])))
    deps = build_deps(_settings())
    with UnitOfWork(deps.db.sessions) as uow:  # reads only: nothing to commit
        report = verify_all(uow.session, deps, kept=copies)
    click.echo(f"{report.entries_checked} entries and {report.heads_checked} tree heads "
               "checked")
    if report.problem:
        click.echo(f"ALTERED: {report.problem}", err=True)
        sys.exit(1)
    click.echo("access log intact")


@audit.command("seal")
def audit_seal() -> None:
    """Seal every waiting entry and sign a tree head now (the worker does this continuously)."""
    from xinyi.audit.sealer import seal_all, sealing_deps
    from xinyi.wiring import build_deps

    sealed, size = seal_all(sealing_deps(build_deps(_settings())))
    click.echo(f"{sealed} entries sealed; " + (f"tree head {size} signed" if size
                                                 else "no new tree head"))


@main.group("personal-keys")
def personal_keys() -> None:
    """Per-citizen data keys (envelope encryption)."""


@personal_keys.command("backfill")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 10_000))
def personal_keys_backfill(batch_size: int) -> None:
    """Move citizens registered before personal keys under a key of their own (batched,
    idempotent; the worker runs it too)."""
    from xinyi.privacy.service import backfill
    from xinyi.wiring import build_deps

    click.echo(f"{backfill(build_deps(_settings()), batch_size)} citizens moved to personal keys")


@main.command("restore-check")
def restore_check() -> None:
    """After restoring the database from a backup: close again every account on the shred
    list (XINYI_SHRED_LIST), destroying the keys the backup brought back. Idempotent."""
    from xinyi.privacy.service import replay_shred_list
    from xinyi.wiring import build_deps

    settings = _settings()
    done = replay_shred_list(build_deps(settings))
    click.echo(f"shred list {settings.shred_list}: {done.entries} entries, "
               f"{done.reapplied} re-applied")


@main.group()
def scores() -> None:
    """Credit scores."""


@scores.command("recompute")
def scores_recompute() -> None:
    """Recompute every subject's score in one set-based pass."""
    import time

    from xinyi.scoring.service import recompute_all
    from xinyi.timeutil import china_today
    from xinyi.wiring import build_deps

    deps = build_deps(_settings())
    started = time.perf_counter()
    now = deps.clock()
    with UnitOfWork(deps.db.sessions) as uow:
        count = recompute_all(uow.session, now=now, today=china_today(now))
        uow.commit()
    click.echo(f"recomputed {count} scores in {time.perf_counter() - started:.1f} s")


@main.group()
def subjects() -> None:
    """People known by ID number."""


@subjects.command("backfill-districts")
@click.option("--batch", type=click.IntRange(1, 100_000), default=1000, show_default=True)
def subjects_backfill_districts(batch: int) -> None:
    """Record the district of every subject stored before districts were kept (the coverage
    statistics): each ID number decrypted in memory, a unit of work per batch. Resumable and
    idempotent; run once after the upgrade that added the column (more runs find nothing)."""
    from xinyi.subjects.service import backfill_districts
    from xinyi.wiring import build_deps

    deps = build_deps(_settings())
    filled = unreadable = 0
    after: bytes | None = None
    while True:
        with UnitOfWork(deps.db.sessions) as uow:
            done = backfill_districts(uow.session, deps, after=after, batch=batch)
            uow.commit()
        filled, unreadable = filled + done.filled, unreadable + done.unreadable
        if done.last is None:
            break
        after = done.last
    click.echo(f"districts recorded for {filled} subjects"
               + (f"; {unreadable} ID numbers no longer decrypt" if unreadable else ""))


@main.command("import-records")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--provider", "provider_id", required=True, type=click.UUID,
              help="The data provider's client id (as shown by /v1/admin/providers).")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]),
              help="Default: jsonl for .jsonl/.ndjson files, csv otherwise.")
@click.option("--reject-file", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV of rejected rows: line, ref, reason (never personal data).")
@click.option("--batch-size", default=10_000, show_default=True, type=click.IntRange(1, 200_000))
def import_records(file: Path, provider_id: Any, fmt: str | None, reject_file: Path | None,
                   batch_size: int) -> None:
    """Import a provider's records from CSV or JSON Lines (restartable; see records/importing)."""
    from xinyi.errors import DomainError
    from xinyi.records.importing import import_file
    from xinyi.wiring import build_deps

    deps = build_deps(_settings())
    try:
        summary = import_file(deps, provider_id, file, fmt=fmt, reject_path=reject_file,
                              batch_size=batch_size)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    except OSError as exc:  # e.g. the reject file's folder does not exist
        raise click.ClickException(str(exc)) from None
    click.echo(summary.describe())
    if summary.rejected and reject_file is None:
        click.echo("rejected rows were not written anywhere: pass --reject-file", err=True)


@main.command()
@click.option("--once", is_flag=True, help="Run every due job once and exit.")
@click.option("--interval", default=30, show_default=True, type=click.IntRange(min=1),
              help="seconds between rounds of jobs")
@click.option("--no-deliveries", is_flag=True,
              help="Run the periodic jobs only, not the webhook delivery loop.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="Serve this process's Prometheus metrics (webhook attempts, dead letters) "
                   "on 127.0.0.1 at this port.")
def worker(once: bool, interval: int, no_deliveries: bool, metrics_port: int | None) -> None:
    """Background jobs (housekeeping, sweeps) and the webhook delivery loop."""
    from xinyi.wiring import build_deps
    from xinyi.worker import deliver_webhooks, run_forever, run_once

    deps = build_deps(_settings())
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    if once:
        for line in run_once(deps):
            click.echo(line)
        if not no_deliveries:
            click.echo(deliver_webhooks(deps))
    else:
        run_forever(deps, interval, deliveries=not no_deliveries)
