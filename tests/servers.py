"""`xinyi serve` (gunicorn) as a subprocess, for the tests that need real HTTP and sockets.

A context manager rather than a fixture, so each module picks its database and workers. The
server's stderr goes to a file (a pipe nobody reads would stall a chatty server), and when the
server stops its lines join CAPTURED_LOGS, so the final log scan covers gunicorn's own logger
and the app as it logs in production.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import requests
from sqlalchemy import text

from tests.factories import CAPTURED_LOGS, TEST_DATABASE_URL
from xinyi.db import make_engine

XINYI = str(Path(sys.executable).with_name("xinyi"))
BOOT_SECONDS = 90  # a loaded 2-core machine boots gunicorn slowly


@dataclasses.dataclass(frozen=True)
class LiveServer:
    url: str
    port: int
    env: dict[str, str]
    log_path: Path

    def log(self) -> str:
        """What the server wrote to stderr so far (gunicorn's error log and the app's logs)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def xinyi(self, *args: str) -> None:
        """Run another `xinyi` command against the same database and instance."""
        subprocess.run([XINYI, *args], env=self.env, check=True, capture_output=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _postgres_database(suffix: str) -> Iterator[str]:
    """A fresh PostgreSQL database next to the test one, dropped afterwards."""
    base, _, name = TEST_DATABASE_URL.rpartition("/")
    db_name = f"{name}_{suffix}"
    admin = make_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    try:
        yield f"{base}/{db_name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + BOOT_SECONDS
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]!r}")
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not become ready in {BOOT_SECONDS} s")
        time.sleep(0.2)


@contextmanager
def live_server(instance: Path, *, postgres_suffix: str | None = None,
                redis_url: str | None = None, workers: int = 1,
                private_webhooks: bool = False) -> Iterator[LiveServer]:
    """A migrated, ready server: on SQLite in `instance` unless `postgres_suffix` names a
    PostgreSQL database to create; Redis only when `redis_url` is given.
    `private_webhooks`: webhook endpoints on 127.0.0.1 are allowed (a test's receiver), as
    `scripts/run` allows them for the demo."""
    with _postgres_database(postgres_suffix) if postgres_suffix else nullcontext() as pg_url:
        env = {**os.environ, "XINYI_ENV": "development", "XINYI_INSTANCE_PATH": str(instance),
               "XINYI_DATABASE_URL": pg_url or f"sqlite:///{instance}/xinyi.db"}
        env.pop("XINYI_REDIS_URL", None)
        env.pop("XINYI_WEBHOOK_ALLOW_PRIVATE", None)
        if private_webhooks:
            env["XINYI_WEBHOOK_ALLOW_PRIVATE"] = "1"
        if redis_url:
            env["XINYI_REDIS_URL"] = redis_url
        subprocess.run([XINYI, "db", "upgrade"], env=env, check=True, capture_output=True)
        port = free_port()
        log_path = instance / "server.log"
        with log_path.open("wb") as stderr:
            proc = subprocess.Popen([XINYI, "serve", "--port", str(port), "--workers",
                                     str(workers)], env=env, stdout=subprocess.DEVNULL,
                                    stderr=stderr)
        server = LiveServer(f"http://127.0.0.1:{port}", port, env, log_path)
        try:
            _wait_ready(proc, server.url, log_path)
            yield server
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            CAPTURED_LOGS.extend(line for line in server.log().splitlines() if line.strip())

