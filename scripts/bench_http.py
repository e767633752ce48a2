"""HTTP benchmark of the authorised paths: verification, credential issuance and QR rendering.

    .venv/bin/python scripts/bench_http.py [--seconds 15] [--warmup 3] [--connections 32]

Needs PostgreSQL (trust auth, user postgres) at 127.0.0.1:5432 and Redis at 127.0.0.1:6379.
It drops and recreates the database ``xinyi_bench_http``, flushes Redis db 11, migrates,
creates an operator with ``xinyi staff create``, serves ``scripts/bench_server.py`` on a free
loopback port — xinyi+ exactly as ``xinyi serve --workers 2`` builds it, under gunicorn or
(``--server granian``) granian's WSGI server, with the floor endpoints of
``scripts/floors_app.py`` mounted at ``/floors`` in the same processes — and then, over HTTP
only: creates a library partner, registers and logs in a few citizens, and measures, with one
load generator for every endpoint (wrk if installed — ``apt-get install -y wrk`` — otherwise a
Python multiprocessing keep-alive generator):

* ``GET /healthz``                              (the server's floor)
* ``POST /floors/verify-write``                 the durable floor of issue 16: one Ed25519
  verify, a Redis GET and ``SET NX``, one autocommitted single-row INSERT, nothing else
* ``POST /floors/issue``                        the issuance floor (bench_floors.py's line)
* ``POST /v1/partner/verifications``            (a different credential every request)
* ``POST /v1/me/credentials`` with count 1
* ``GET /v1/me/credentials/{id}/qr.png``
* ``POST /v1/partner/benefit-sessions`` and ``POST …/{id}/close`` (issue 13): each open on a
  fresh ``eligible`` verification of the same partner (made over HTTP just before the run, not
  measured), each close on a session the open run just opened, both with an
  ``Idempotency-Key``. The measured unit is the pair: open + close per second is
  ``1 / (1/open_rps + 1/close_rps)`` (the server time of one open plus one close), compared
  with verifications per second (one request) from the same run; target ≥ 70 %.

Before each measured run the bench database gets a ``VACUUM (ANALYZE)`` (``--no-vacuum``
skips it): what autovacuum does on a production server, and is off on this machine's
PostgreSQL, so that no line pays for the dead rows and the statistics-free plans the lines
before it left.

Each endpoint gets a warm-up run and then a fixed-duration measured run, repeated (up to
``--tries``) while one gunicorn worker did under a quarter of the work: gthread keeps a
keep-alive connection on the worker that accepted it, and all 32 can land on one. Credentials are
valid for 120 s from issue (plus 5 s leeway online), and a batch of ``count: 15`` has
*consecutive* windows (only the first one is valid now), so the verification run is fed with
``count: 1`` credentials issued just before it, sized from the warm-up's rate and used oldest
first. It prints a table and exits 1 when a measured run had errors (non-2xx, socket errors,
or a verification run that ran out of distinct credentials), 0 otherwise; the targets of
issue 4 are printed as met/missed but do not change the exit status. After a successful run
it drops the database and flushes the Redis db again (``--keep-db`` keeps them); after a failed
one it keeps them and the server log for a look.

``--profile DIR`` additionally records each gunicorn worker with py-spy (if installed) during
separate, unreported runs of the verification, issuance, session open and session close
endpoints.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import http.client
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_floors import sample_token
from benchlib import (
    Load,
    Result,
    add_load_options,
    children,
    cpu_delta,
    cpu_snapshot,
    free_port,
    log,
    run_python,
    run_wrk,
    start_server,
    stop_server,
    until_balanced,
    worker_split,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PASSWORD = "bench-password-42"
CREDENTIAL_TTL = 120  # seconds, tokens.MAX_TTL_SECONDS; the server allows 5 s leeway
# Registration is limited to 10 an hour per client address and login to 30 per 5 minutes (all
# of ours are 127.0.0.1). More citizens need the server to trust one proxy hop, so each
# registration and login can name its own address.
MAX_CITIZENS_ONE_ADDRESS = 8
MAX_CITIZENS = 1000
TARGETS = {"ratio": 0.40, "verify_p99_ms": 30.0, "issue_rps": 1000.0, "qr_rps": 80.0,
           "session_pair_ratio": 0.70,
           # issue 16: against the floors measured in the same server and run
           "floor_ratio": 0.7, "floor_p99_ratio": 2.0, "issue_floor_ratio": 0.8}
DURABLE_FLOOR = "POST /floors/verify-write (durable floor)"
ISSUE_FLOOR = "POST /floors/issue (issuance floor)"


def server_name(server: str) -> str:
    return "gunicorn gthread" if server == "gunicorn" else "granian WSGI"
VERIFICATION_USABLE_FOR = 600  # seconds: a verification opens a session within 10 minutes


# ----------------------------------------------------------------------------- plumbing



def xinyi_exe() -> str:
    beside = Path(sys.executable).parent / "xinyi"
    found = str(beside) if beside.exists() else shutil.which("xinyi")
    if not found:
        sys.exit("the xinyi command is not installed: run scripts/test or scripts/run once "
                 "and use .venv/bin/python")
    return found


class Client:
    """A keep-alive JSON client for the setup steps."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             expect: int = 200, headers: dict[str, str] | None = None) -> Any:
        headers = dict(headers or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.status != expect:
            raise RuntimeError(f"{method} {path}: {resp.status} {raw[:300]!r}")
        ctype = resp.getheader("Content-Type", "")
        return json.loads(raw) if raw and "json" in ctype else raw

    def close(self) -> None:
        self.conn.close()


def valid_id_number(n: int) -> str:
    from stdnum.cn import ric

    body = f"110101{1960 + n % 40:04d}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")



# ----------------------------------------------------------------------------- pre-issuing


def _issue_worker(port: int, tokens: list[str], count: int, seed: int) -> list[tuple[float, str]]:
    client = Client(port)
    out: list[tuple[float, str]] = []
    try:
        for k in range(count):
            token = tokens[(seed + k) % len(tokens)]
            items = client.call("POST", "/v1/me/credentials", {"count": 1}, token, expect=201)
            out.append((time.time(), items["items"][0]["qr_payload"]))
    finally:
        client.close()
    return out


def pre_issue(port: int, tokens: list[str], total: int, parallel: int) -> tuple[list[str], float]:
    """`total` credentials (count 1, so each is valid now), oldest first; and the time taken."""
    started = time.time()
    share = [total // parallel + (1 if p < total % parallel else 0) for p in range(parallel)]
    with cf.ProcessPoolExecutor(parallel, mp_context=mp.get_context("fork")) as pool:
        futures = [pool.submit(_issue_worker, port, tokens, n, p * 7)
                   for p, n in enumerate(share) if n]
        issued = [x for f in futures for x in f.result(timeout=CREDENTIAL_TTL)]
    issued.sort()
    # Interleave citizens: consecutive requests hit different subjects' access-log chains
    # (sorted by time they already alternate, since each worker cycles the citizens).
    return [payload for _, payload in issued], time.time() - started


def _verify_worker(port: int, api_key: str, creds: list[str]) -> list[str]:
    """Verify each credential (setup, not measured); the ids of the eligible answers."""
    from benchlib import BENEFIT

    client = Client(port)
    out: list[str] = []
    try:
        for cred in creds:
            got = client.call("POST", "/v1/partner/verifications",
                              {"credential": cred, "benefit": BENEFIT}, api_key,
                              expect=200)
            if got["decision"] == "eligible":
                out.append(got["id"])
    finally:
        client.close()
    return out


def make_verifications(port: int, tokens: list[str], api_key: str, total: int,
                       parallel: int) -> tuple[list[str], float]:
    """`total` fresh eligible verification ids of the bench partner, and the time taken."""
    started = time.time()
    creds, _ = pre_issue(port, tokens, total, parallel)
    with cf.ProcessPoolExecutor(parallel, mp_context=mp.get_context("fork")) as pool:
        futures = [pool.submit(_verify_worker, port, api_key, creds[p::parallel])
                   for p in range(parallel)]
        ids = [x for f in futures for x in f.result(timeout=VERIFICATION_USABLE_FOR)]
    if len(ids) < total:
        raise RuntimeError(f"only {len(ids)} of {total} verifications were eligible for "
                           "the benefit sessions bench")
    return ids, time.time() - started


def open_items(verification_ids: list[str], run: str) -> list[str]:
    due = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7 * 86400))
    return ["/v1/partner/benefit-sessions\t" + json.dumps(
        {"verification_id": v, "amount_fen": 100, "due_at": due, "reference": f"b-{run}-{k}"},
        separators=(",", ":")) + f"\topen-{run}-{k}" for k, v in enumerate(verification_ids)]


def close_items(session_ids: list[str], run: str) -> list[str]:
    body = json.dumps({"outcome": "fulfilled", "amount_owed_fen": 0}, separators=(",", ":"))
    return [f"/v1/partner/benefit-sessions/{sid}/close\t{body}\tclose-{run}-{k}"
            for k, sid in enumerate(session_ids)]


def _post_worker(port: int, auth: str, items: list[str]) -> int:
    """POST each "path\tbody\tkey" item (setup, not measured); how many were answered 2xx."""
    client = Client(port)
    try:
        for item in items:
            path, body, key = item.split("\t", 2)
            try:
                client.call("POST", path, json.loads(body), expect=201 if path.endswith(
                    "benefit-sessions") else 200, headers={"Authorization": auth,
                                                           "Idempotency-Key": key})
            except RuntimeError as exc:
                # A leftover closed meanwhile by a request of the run just ended that the
                # server was still answering when the generator stopped: already closed.
                if "benefit_session_closed" not in str(exc):
                    raise
    finally:
        client.close()
    return len(items)


def post_all(port: int, auth: str, items: list[str], parallel: int) -> None:
    with cf.ProcessPoolExecutor(parallel, mp_context=mp.get_context("fork")) as pool:
        for f in [pool.submit(_post_worker, port, auth, items[p::parallel])
                  for p in range(parallel)]:
            f.result(timeout=VERIFICATION_USABLE_FOR)


def pair_rate(open_rps: float, close_rps: float) -> float:
    """Open + close pairs per second: one over the server time of one open plus one close."""
    return 1 / (1 / open_rps + 1 / close_rps) if open_rps and close_rps else 0.0


# ----------------------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="xinyi-bench-http-"))
        self.server: subprocess.Popen[bytes] | None = None
        self.port = args.port or free_port()
        self.db_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{args.database}"
        self.redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
        self.env = dict(
            os.environ, XINYI_ENV="development", XINYI_INSTANCE_PATH=str(self.tmp / "instance"),
            XINYI_DATABASE_URL=self.db_url, XINYI_REDIS_URL=self.redis_url)
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.floor_key = Ed25519PrivateKey.generate()
        self.env.update(
            FLOORS_PUBLIC_KEY=self.floor_key.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
            FLOORS_PRIVATE_KEY=self.floor_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()).decode(),
            FLOORS_DATABASE_URL=self.db_url.replace("postgresql+psycopg://", "postgresql://"),
            FLOORS_REDIS_URL=self.redis_url)
        self.proxied_logins = args.citizens > MAX_CITIZENS_ONE_ADDRESS
        if self.proxied_logins:
            self.env["XINYI_TRUST_PROXY_HOPS"] = "1"
        use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk"))
        if args.generator == "wrk" and not shutil.which("wrk"):
            sys.exit("wrk is not installed: apt-get install -y wrk")
        if not use_wrk and args.generator == "auto":
            log("wrk not found (apt-get install -y wrk); using the Python generator for "
                "every endpoint")
        self.generator = "wrk" if use_wrk else "python"
        self.results: list[Result] = []
        self.measured: list[Result] = []  # every measured run, retries included

    # -- lifecycle

    def prepare_stores(self) -> None:
        import psycopg
        import redis

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.args.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.args.database}"')
        r = redis.Redis.from_url(self.redis_url)
        r.flushdb()
        r.close()
        subprocess.run([xinyi_exe(), "db", "upgrade"], env=self.env, check=True,
                       capture_output=True)
        with psycopg.connect(self.env["FLOORS_DATABASE_URL"], autocommit=True) as conn:
            conn.execute("CREATE TABLE floor_log (id uuid PRIMARY KEY, at timestamptz NOT NULL, "
                         "jti text NOT NULL)")
        self.operator_phone = f"139{random.randrange(10**8):08d}"
        subprocess.run([xinyi_exe(), "staff", "create", "--phone", self.operator_phone,
                        "--password", PASSWORD, "--role", "operator"], env=self.env,
                       check=True, capture_output=True)

    def drop_stores(self) -> None:
        """The database is useless once the temp instance (its keys) is gone: drop it."""
        import psycopg
        import redis

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.args.database}" WITH (FORCE)')
        r = redis.Redis.from_url(self.redis_url)
        r.flushdb()
        r.close()

    def start_server(self) -> None:
        self.server = start_server(
            [sys.executable, str(Path(__file__).with_name("bench_server.py")),
             "--server", self.args.server, "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "2", "--threads", str(self.args.server_threads)],
            self.env, self.port, "/readyz", self.tmp / "server.log")

    def stop_server(self) -> None:
        if self.server is not None:
            stop_server(self.server)

    def worker_pids(self) -> list[int]:
        assert self.server is not None
        return children(self.server.pid)

    # -- HTTP setup

    def setup_principals(self) -> None:
        c = Client(self.port)
        op = c.call("POST", "/v1/auth/login", {"phone": self.operator_phone,
                                                "password": PASSWORD})["access_token"]
        created = c.call("POST", "/v1/admin/partners", {"name": "性能测试图书馆",
                                                        "kind": "library"}, op, expect=201)
        self.api_key = created["api_key"]["api_key"]
        c.close()
        n = self.args.citizens
        base = random.randrange(10**8 - n)
        people = [{"phone": f"138{base + k:08d}", "password": PASSWORD, "name": "性能测试",
                   "id_number": valid_id_number(base + k)} for k in range(n)]

        def register_and_login(person: dict[str, str]) -> str:
            cl = Client(self.port)
            k = int(person["phone"]) - 13800000000 - base
            forwarded = ({"X-Forwarded-For": f"10.{k >> 16 & 255}.{k >> 8 & 255}.{k & 255}"}
                         if self.proxied_logins else {})
            try:
                cl.call("POST", "/v1/auth/register", person, expect=201, headers=forwarded)
                token: str = cl.call("POST", "/v1/auth/login", {
                    "phone": person["phone"], "password": PASSWORD},
                    headers=forwarded)["access_token"]
                return token
            finally:
                cl.close()

        with cf.ThreadPoolExecutor(8) as pool:
            self.tokens = list(pool.map(register_and_login, people))

    # -- measuring

    def measure(self, name: str, load: Load, *, seconds: float | None = None,
                warmup: bool = False) -> Result:
        secs = seconds if seconds is not None else self.args.seconds
        if not warmup and self.args.vacuum:
            self.vacuum_analyze()
        before = cpu_snapshot(self.server.pid if self.server else 0, self.args.database)
        if self.generator == "wrk":
            raw = run_wrk(load, self.port, secs, self.args.connections, self.args.threads,
                          self.tmp)
        else:
            raw = run_python(load, self.port, secs, self.args.connections,
                             self.args.py_processes)
        after = cpu_snapshot(self.server.pid if self.server else 0, self.args.database)
        res = Result(name=name, cpu=cpu_delta(before, after), **raw)
        if not warmup:
            self.measured.append(res)
        kind = "warm-up" if warmup else "measured"
        log(f"{kind:8} {name}: {res.rps:,.0f} req/s, p50 {res.p50_ms:.1f} ms, "
            f"p99 {res.p99_ms:.1f} ms, non-2xx {res.non2xx}, socket errors "
            f"{res.socket_errors}, worker CPU split {worker_split(res.cpu)}"
            f"{', RAN OUT OF CREDENTIALS' if res.exhausted else ''}")
        return res

    def vacuum_analyze(self) -> None:
        """What autovacuum does on a production server as tables grow (it is off on this
        machine's PostgreSQL, and a new bench database has no statistics): done before each
        measured run, outside it, so that no line pays for the dead rows and stale plans of
        the lines before it."""
        import psycopg

        url = self.db_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")

    def measure_balanced(self, name: str, make_load: Callable[[], Load]) -> Result:
        """The measured run, repeated while the workers' shares are unbalanced (see
        benchlib.until_balanced); the last try is the one reported."""
        res = until_balanced(lambda: self.measure(name, make_load()), self.args.tries)
        self.results.append(res)
        return res

    def bench_static(self, name: str, load: Load) -> Result:
        self.measure(name, load, seconds=self.args.warmup, warmup=True)
        return self.measure_balanced(name, lambda: load)

    def bench_verification(self, healthz_rps: float, issue_rps: float) -> Result:
        name = "POST /v1/partner/verifications"
        auth = f"Bearer {self.api_key}"
        # Pre-issuing runs at about the measured issuance rate; keep the oldest credential of
        # a batch well inside its 120 s window at the end of the run it feeds.
        budget = max(5.0, CREDENTIAL_TTL - self.args.seconds - 20)
        cap = int(max(issue_rps, 50) * budget)
        # Warm-up: enough for 5× the issuance rate (or the healthz rate, an upper bound, if
        # lower). Should the warm-up run out, the measured run is sized from healthz instead.
        n_warm = int(min(max(500, healthz_rps * self.args.warmup * 1.1), cap,
                         issue_rps * self.args.warmup * 5 + 500))
        creds, took = pre_issue(self.port, self.tokens, n_warm, self.args.issue_parallel)
        log(f"pre-issued {len(creds)} credentials for the warm-up in {took:.1f} s")
        warm = self.measure(name, Load("verify", path="/v1/partner/verifications",
                                       method="POST", auth=auth, items=creds),
                            seconds=self.args.warmup, warmup=True)
        estimate = warm.rps if not warm.exhausted and warm.errors == 0 else healthz_rps
        n_run = int(estimate * self.args.seconds * 2.0) + 50 * self.args.connections
        if n_run > cap:
            log(f"only {cap} credentials fit the validity window at {issue_rps:,.0f} issues/s; "
                "the run may run out (reported as an error)")
            n_run = cap
        self.verify_sent_ok = warm.requests - warm.non2xx

        def fresh_credentials() -> Load:
            creds, took = pre_issue(self.port, self.tokens, n_run, self.args.issue_parallel)
            oldest_age_at_end = took + self.args.seconds + 2
            log(f"pre-issued {len(creds)} credentials in {took:.1f} s "
                f"({len(creds) / took:,.0f}/s over HTTP); the oldest will be "
                f"~{oldest_age_at_end:.0f} s old at the end of the run (valid {CREDENTIAL_TTL} s)")
            if oldest_age_at_end > CREDENTIAL_TTL:
                log("WARNING: some credentials may expire during the run (422 errors); "
                    "use fewer --seconds")
            return Load("verify", path="/v1/partner/verifications", method="POST", auth=auth,
                        items=creds)

        before = len(self.results)
        res = self.measure_balanced(name, fresh_credentials)
        assert len(self.results) == before + 1
        # Every try's 2xx answers wrote rows; the durable check counts them all.
        self.verify_sent_ok += self.verify_ok_in_tries(name)
        return res

    def open_sessions(self) -> list[str]:
        """The ids of the bench partner's open sessions, oldest first (what to close)."""
        import psycopg

        url = self.db_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT id FROM benefit_sessions WHERE state = 'open' "
                                "ORDER BY created_at").fetchall()
        return [str(r[0]) for r in rows]

    def bench_sessions(self, verify_rps: float) -> tuple[Result, Result]:
        """Open then close benefit sessions (see the module docstring): a warm-up pair and
        a measured pair, each open run fed with fresh eligible verifications."""
        auth = f"Bearer {self.api_key}"
        o_name, c_name = "POST /v1/partner/benefit-sessions", "POST …/benefit-sessions/{id}/close"
        par = self.args.issue_parallel
        n_warm = int(max(500, verify_rps * self.args.warmup * 2.5))
        ids, took = make_verifications(self.port, self.tokens, self.api_key, n_warm, par)
        log(f"made {len(ids)} eligible verifications for the warm-up in {took:.1f} s")
        warm = self.measure(o_name, Load("posts", auth=auth, items=open_items(ids, "w")),
                            seconds=self.args.warmup, warmup=True)
        warm_close = self.measure(c_name, Load("posts", auth=auth,
                                               items=close_items(self.open_sessions(), "w")),
                                  seconds=self.args.warmup, warmup=True)
        estimate = warm.rps if not warm.exhausted and warm.errors == 0 else 2.5 * verify_rps
        n_run = int(estimate * self.args.seconds * 2.0) + 50 * self.args.connections
        tries = iter(range(1, 100))

        def fresh_verifications() -> Load:
            self.close_leftovers(auth)
            ids, took = make_verifications(self.port, self.tokens, self.api_key, n_run, par)
            log(f"made {len(ids)} eligible verifications in {took:.1f} s (usable for "
                f"{VERIFICATION_USABLE_FOR} s)")
            if took + self.args.seconds + 5 > VERIFICATION_USABLE_FOR:
                log("WARNING: some verifications may be too old to open a session")
            return Load("posts", auth=auth, items=open_items(ids, f"m{next(tries)}"))

        opened = self.measure_balanced(o_name, fresh_verifications)
        n_close = int(max(warm_close.rps, opened.rps) * self.args.seconds * 2.0) \
            + 50 * self.args.connections

        def open_sessions_to_close() -> Load:
            sessions = self.open_sessions()
            if len(sessions) < n_close:  # top up, unmeasured (a retry, or closes outpace)
                more, _ = make_verifications(self.port, self.tokens, self.api_key,
                                             n_close - len(sessions), par)
                post_all(self.port, auth, open_items(more, f"t{next(tries)}"), par)
                sessions = self.open_sessions()
            log(f"{len(sessions)} sessions open to close")
            return Load("posts", auth=auth, items=close_items(sessions, f"m{next(tries)}"))

        closed = self.measure_balanced(c_name, open_sessions_to_close)
        return opened, closed

    def close_leftovers(self, auth: str) -> None:
        """Close, unmeasured, what an earlier run left open (each citizen's exposure is
        capped: keep every measured open run on the same footing)."""
        left = self.open_sessions()
        if left:
            post_all(self.port, auth, close_items(left, f"c{time.monotonic_ns()}"),
                     self.args.issue_parallel)

    def verify_ok_in_tries(self, name: str) -> int:
        return sum(r.requests - r.non2xx for r in self.measured if r.name == name)

    def issue_load(self) -> Load:
        return Load("static", path="/v1/me/credentials", method="POST", body='{"count": 1}',
                    auth=f"Bearer {self.tokens[0]}")

    def qr_items(self) -> list[str]:
        """15 live credentials (windows up to 30 min ahead) for each of up to 4 citizens."""
        c = Client(self.port)
        items = []
        for token in self.tokens[:4]:
            got = c.call("POST", "/v1/me/credentials", {"count": 15}, token, expect=201)
            items += [f"/v1/me/credentials/{i['id']}/qr.png\tBearer {token}"
                      for i in got["items"]]
        c.close()
        random.Random(4).shuffle(items)
        return items

    def durable_check(self) -> dict[str, int]:
        import psycopg

        url = self.db_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url) as conn:
            verifications = conn.execute("SELECT count(*) FROM verifications").fetchone()
            logged = conn.execute(
                "SELECT count(*) FROM access_log WHERE action = 'verification'").fetchone()
        return {"verifications": int(verifications[0]) if verifications else -1,
                "access_log": int(logged[0]) if logged else -1}

    def profile(self, out_dir: Path) -> None:
        pyspy = os.environ.get("PY_SPY") or shutil.which("py-spy")
        if not pyspy:
            log("py-spy not found (pip install py-spy, or set PY_SPY=/path/to/py-spy): "
                "skipping --profile")
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        secs = self.args.seconds

        def record(tag: str) -> list[subprocess.Popen[bytes]]:
            return [subprocess.Popen(
                [pyspy, "record", "--pid", str(pid), "--duration", str(round(secs)),
                 "--rate", "200", "--format", "raw", "--nonblocking",
                 "--output", str(out_dir / f"{tag}-worker{k}.txt"),
                 *os.environ.get("PY_SPY_ARGS", "").split()],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for k, pid in enumerate(self.worker_pids())]

        healthz = next(r.rps for r in self.results if r.name == "GET /healthz")
        verify = next(r.rps for r in self.results if r.name.startswith("POST /v1/partner"))
        issue = next(r.rps for r in self.results if r.name.startswith("POST /v1/me"))
        n = min(int(verify * secs * 1.35) + 1600, int(issue * (CREDENTIAL_TTL - secs - 20)))
        creds, _ = pre_issue(self.port, self.tokens, n, self.args.issue_parallel)
        procs = record("verification")
        self.measure("profiled verification", Load(
            "verify", path="/v1/partner/verifications", method="POST",
            auth=f"Bearer {self.api_key}", items=creds))
        for p in procs:
            p.wait(secs + 30)
        procs = record("issuance")
        self.measure("profiled issuance", self.issue_load())
        for p in procs:
            p.wait(secs + 30)
        auth = f"Bearer {self.api_key}"
        self.close_leftovers(auth)
        opened = next(r.rps for r in self.results if r.name.endswith("benefit-sessions"))
        ids, _ = make_verifications(self.port, self.tokens, self.api_key,
                                    int(opened * secs * 2) + 50 * self.args.connections,
                                    self.args.issue_parallel)
        procs = record("session-open")
        self.measure("profiled session open", Load("posts", auth=auth,
                                                   items=open_items(ids, "p")))
        for p in procs:
            p.wait(secs + 30)
        procs = record("session-close")
        self.measure("profiled session close", Load(
            "posts", auth=auth, items=close_items(self.open_sessions(), "p")))
        for p in procs:
            p.wait(secs + 30)
        log(f"py-spy raw (collapsed) stacks in {out_dir}, one file per worker and endpoint "
            f"(healthz was {healthz:,.0f}/s unprofiled)")

    def run(self) -> int:
        a = self.args
        log(f"generator {self.generator}, {a.connections} connections, {a.warmup:g} s warm-up + "
            f"{a.seconds:g} s per endpoint; temp dir {self.tmp}")
        self.prepare_stores()
        self.start_server()
        log(f"server on 127.0.0.1:{self.port}, workers {self.worker_pids()}")
        self.setup_principals()
        log(f"partner and {len(self.tokens)} citizens ready")

        healthz = self.bench_static("GET /healthz", Load("static", path="/healthz"))
        token = sample_token(self.floor_key)
        body = json.dumps({"credential": token, "benefit": "library.deposit_free"})
        self.durable_floor = self.bench_static(DURABLE_FLOOR, Load(
            "static", path="/floors/verify-write", method="POST", body=body))
        self.issue_floor = self.bench_static(ISSUE_FLOOR, Load(
            "static", path="/floors/issue", method="POST", body=body,
            auth=f"Bearer {token}"))
        issue = self.bench_static("POST /v1/me/credentials (count 1)", self.issue_load())
        verify = self.bench_verification(healthz.rps, issue.rps)
        qr = self.bench_static("GET /v1/me/credentials/{id}/qr.png",
                               Load("list", items=self.qr_items()))
        opened, closed = self.bench_sessions(verify.rps)
        durable = self.durable_check()
        if a.profile:
            self.profile(Path(a.profile))
        self.report(healthz, verify, issue, qr, durable, opened, closed)
        failed = sorted({r.name for r in self.measured if r.errors})
        if durable["verifications"] < self.verify_sent_ok or \
                durable["access_log"] != durable["verifications"]:
            failed.append("durable access log check")
        if failed:
            print(f"\nFAILED: errors in {', '.join(failed)}")
            return 1
        return 0

    def report(self, healthz: Result, verify: Result, issue: Result, qr: Result,
               durable: dict[str, int], opened: Result, closed: Result) -> None:
        a = self.args
        cpu_model = next((ln.split(":", 1)[1].strip() for ln in
                          Path("/proc/cpuinfo").read_text().splitlines()
                          if ln.startswith("model name")), platform.processor())
        print()
        print(f"xinyi+ HTTP bench — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs "
              f"({cpu_model}), Python {platform.python_version()}, generator {self.generator} "
              f"(-t{a.threads} -c{a.connections}), "
              f"{server_name(a.server)} 2 workers × {a.server_threads} threads, "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
              f"{a.seconds:g} s per endpoint after {a.warmup:g} s warm-up")
        print()
        head = (f"| {'endpoint':<36} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | "
                f"{'requests':>8} | {'non-2xx':>7} | {'sock err':>8} | "
                f"{'CPU ms/req: server / pg / redis / wrk':>38} | {'worker %':>8} | "
                f"{'other cores':>11} | tries |")
        print(head)
        print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
        order = ["GET /healthz", DURABLE_FLOOR, "POST /v1/partner/verifications", ISSUE_FLOOR,
                 "POST /v1/me", "GET /v1/me", "POST /v1/partner/benefit", "POST …/benefit"]
        for r in sorted(self.results, key=lambda r: next(
                (i for i, o in enumerate(order) if r.name.startswith(o)), 9)):
            k = 1000 / r.requests if r.requests else 0.0
            cpu = " / ".join(f"{r.cpu.get(x, 0) * k:.2f}"
                             for x in ("server", "postgres", "redis", "generator"))
            other = r.cpu.get("other", 0) / r.seconds if r.seconds else 0.0
            print(f"| {r.name:<36} | {r.rps:>8,.0f} | {r.p50_ms:>7.1f} | {r.p99_ms:>7.1f} | "
                  f"{r.requests:>8} | {r.non2xx:>7} | {r.socket_errors:>8} | {cpu:>38} | "
                  f"{worker_split(r.cpu):>8} | {other:>11.2f} | {r.tries:>5} |")
        ratio = verify.rps / healthz.rps if healthz.rps else 0.0
        print("(CPU per request: CPU seconds during the run / requests. worker %: each gunicorn "
              "worker's share of the server CPU. other cores: the rest of the machine's busy CPU "
              "during the run — other processes, other databases' backends. tries: measured "
              "runs needed for both workers to get ≥ 25 % of the work.)")
        print()
        print(f"verification / healthz = {ratio:.2f}")
        print(f"durable check: {durable['verifications']} verification rows and "
              f"{durable['access_log']} access-log entries for {self.verify_sent_ok} "
              f"2xx answers (warm-up + measured; the rows may exceed by in-flight requests)")

        def verdict(ok: bool) -> str:
            return "met" if ok else "MISSED"

        t = TARGETS
        floor, ifloor = self.durable_floor, self.issue_floor
        v_ratio = verify.rps / floor.rps if floor.rps else 0.0
        p99_ratio = verify.p99_ms / floor.p99_ms if floor.p99_ms else 0.0
        i_ratio = issue.rps / ifloor.rps if ifloor.rps else 0.0
        print()
        print(f"issue 16, same server and run: verification {verify.rps:,.0f}/s = {v_ratio:.2f} × "
              f"the durable floor ({floor.rps:,.0f}/s; target ≥ {t['floor_ratio']:.1f}) — "
              f"{verdict(v_ratio >= t['floor_ratio'])}")
        print(f"issue 16: verification p99 {verify.p99_ms:.1f} ms = {p99_ratio:.2f} × the floor's "
              f"({floor.p99_ms:.1f} ms; target ≤ {t['floor_p99_ratio']:g}) — "
              f"{verdict(p99_ratio <= t['floor_p99_ratio'])}")
        print(f"issue 16: issuance {issue.rps:,.0f}/s = {i_ratio:.2f} × the issuance floor "
              f"({ifloor.rps:,.0f}/s; target ≥ {t['issue_floor_ratio']:.1f}) — "
              f"{verdict(i_ratio >= t['issue_floor_ratio'])}")
        print()
        print(f"target verification ≥ {t['ratio']:.0%} of healthz: {ratio:.0%} — "
              f"{verdict(ratio >= t['ratio'])}")
        p99_ok = verify.p99_ms < t["verify_p99_ms"]
        print(f"target verification p99 < {t['verify_p99_ms']:g} ms at {a.connections} "
              f"connections: {verify.p99_ms:.1f} ms — {verdict(p99_ok)}")
        print(f"target issuance ≥ {t['issue_rps']:,.0f}/s: {issue.rps:,.0f}/s — "
              f"{verdict(issue.rps >= t['issue_rps'])}")
        print(f"target QR PNG ≥ {t['qr_rps']:g}/s: {qr.rps:,.0f}/s — "
              f"{verdict(qr.rps >= t['qr_rps'])}")
        pairs = pair_rate(opened.rps, closed.rps)
        pair_ratio = pairs / verify.rps if verify.rps else 0.0
        print(f"benefit sessions: open {opened.rps:,.0f}/s, close {closed.rps:,.0f}/s → "
              f"{pairs:,.0f} open+close pairs/s (two requests each) = {pair_ratio:.2f} × "
              f"verifications/s ({verify.rps:,.0f}/s, one request each); per request "
              f"{2 * pairs / verify.rps if verify.rps else 0.0:.2f} ×")
        print(f"target open+close pairs ≥ {t['session_pair_ratio']:.0%} of verifications: "
              f"{pair_ratio:.0%} — {verdict(pair_ratio >= t['session_pair_ratio'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_options(parser, seconds=15.0, warmup=3.0)
    parser.add_argument("--server", choices=["gunicorn", "granian"], default="gunicorn",
                        help="the WSGI server (granian: pip install -e '.[bench]')")
    parser.add_argument("--py-processes", type=int, default=4,
                        help="processes of the Python generator")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--citizens", type=int, default=16, help=(
        "citizens whose credentials are verified; more than "
        f"{MAX_CITIZENS_ONE_ADDRESS} serves with XINYI_TRUST_PROXY_HOPS=1 so each login "
        "can come from its own X-Forwarded-For address (the per-address login limit)"))
    parser.add_argument("--issue-parallel", type=int, default=6,
                        help="client processes pre-issuing credentials")
    parser.add_argument("--tries", type=int, default=3, help=(
        "measure again while one gunicorn worker did < 25%% of the work (keep-alive "
        "connections stay on the worker that accepted them)"))
    parser.add_argument("--database", default="xinyi_bench_http")
    parser.add_argument("--redis-db", type=int, default=11)
    parser.add_argument("--keep-db", action="store_true",
                        help="keep the database and Redis db after a successful run")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-vacuum", dest="vacuum", action="store_false", help=(
        "skip the VACUUM (ANALYZE) of the bench database before each measured run (as "
        "under autovacuum = off, with no statistics and every dead row kept)"))
    parser.add_argument("--profile", metavar="DIR",
                        help="also record the workers with py-spy (separate, unreported runs)")
    parser.add_argument("--time-limit", type=float, default=900,
                        help="abort after this many seconds")
    args = parser.parse_args()
    if not 1 <= args.citizens <= MAX_CITIZENS:
        parser.error(f"--citizens must be 1 to {MAX_CITIZENS}")
    if args.seconds + 30 > CREDENTIAL_TTL:
        parser.error(f"--seconds must leave room in the {CREDENTIAL_TTL} s credential window")

    bench = Bench(args)

    def on_alarm(_sig: int, _frame: Any) -> None:
        raise TimeoutError(f"time limit of {args.time_limit:g} s reached")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.time_limit))
    status = 1
    try:
        status = bench.run()
        return status
    finally:
        signal.alarm(0)
        bench.stop_server()
        if status == 0:
            shutil.rmtree(bench.tmp, ignore_errors=True)
            if not args.keep_db:
                bench.drop_stores()
        else:
            print(f"server log kept in {bench.tmp / 'server.log'}")


if __name__ == "__main__":
    sys.exit(main())
