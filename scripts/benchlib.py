"""Shared set-up and measuring for the benchmark scripts (run as `python scripts/bench_*.py`).

bench_http.py and bench_floors.py load servers the same way (the same generators, options,
server lifecycle and CPU accounting), so their numbers can be compared; that lives here, and
no bench script imports another.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import contextlib
import http.client
import itertools
import json
import math
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

LUA = Path(__file__).resolve().parent / "bench_http.lua"
BENEFIT = "library.deposit_free"  # what a "verify" load asks for


def fresh_database(admin_url: str, name: str) -> str:
    """Drop and recreate database ``name`` on the server of ``admin_url``, migrated to head."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    from alembic import command

    from xinyi.cli import alembic_config

    command.upgrade(alembic_config(url), "head")
    return url


# ----------------------------------------------------------------------------- plumbing


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def add_load_options(parser: argparse.ArgumentParser, *, seconds: float,
                     warmup: float) -> None:
    """The load and server options bench_http.py and bench_floors.py share."""
    parser.add_argument("--seconds", type=float, default=seconds,
                        help="measured run per endpoint")
    parser.add_argument("--warmup", type=float, default=warmup, help="warm-up run per endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--server-threads", type=int, default=4,
                        help="threads per gunicorn worker (xinyi serve --threads)")


def wait_until_serving(server: subprocess.Popen[bytes], port: int, path: str,
                       log_file: Path) -> None:
    """Until ``GET path`` answers 200, or the server exits, or 60 s pass."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited; see {log_file}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            ok = conn.getresponse().status == 200
            conn.close()
            if ok:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready within 60 s; see {log_file}")


def start_server(cmd: list[str], env: dict[str, str], port: int, ready_path: str,
                 log_file: Path) -> subprocess.Popen[bytes]:
    """Serve ``cmd`` in its own process group (so stop_server reaches every worker), output to
    ``log_file``, and return once ``GET ready_path`` answers 200; stopped again if it never
    does, so a failed start leaves no server behind."""
    with log_file.open("wb") as out:
        server = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        wait_until_serving(server, port, ready_path, log_file)
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group; SIGKILL if it has not exited 15 s later."""
    if server.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(5)


# ----------------------------------------------------------------------------- CPU accounting


def _proc_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(server_pid: int, database: str) -> dict[str, float]:
    """CPU seconds so far of the server tree, PostgreSQL (our database's backends and the
    shared background processes, not other databases' backends), redis-server, this script
    and its finished children (the load generator), and the machine as a whole."""
    tck = os.sysconf("SC_CLK_TCK")
    workers = children(server_pid)
    snap = {"server": sum(_proc_ticks(p) for p in [server_pid, *workers]) / tck,
            "postgres": 0.0, "redis": 0.0}
    for k, pid in enumerate(sorted(workers)):
        snap[f"worker{k}"] = _proc_ticks(pid) / tck
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            comm = _comm(pid)
            if comm == "postgres":
                cmd = _cmdline(pid)
                is_backend = "127.0.0.1(" in cmd or "[local]" in cmd
                if not is_backend or f" {database} " in cmd:
                    snap["postgres"] += _proc_ticks(pid) / tck
            elif comm == "redis-server":
                snap["redis"] += _proc_ticks(pid) / tck
    ru = os.times()
    snap["generator"] = ru.children_user + ru.children_system + ru.user + ru.system
    snap["machine"] = _machine_busy()
    return snap


def cpu_delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    d = {k: b[k] - a[k] for k in a if k in b}
    # Everything else on the machine (other people's tests, other databases' backends).
    d["other"] = max(0.0, d.pop("machine") - d["server"] - d["postgres"] - d["redis"]
                     - d["generator"])
    return d


def lowest_worker_share(cpu: dict[str, float]) -> float:
    per = [v for k, v in cpu.items() if k.startswith("worker")]
    return min(per) / sum(per) if len(per) > 1 and sum(per) > 0 else 0.5


def worker_split(cpu: dict[str, float]) -> str:
    """Each gunicorn worker's share of the workers' CPU: keep-alive connections stay with the
    worker that accepted them, so one worker may serve most of them."""
    per = [v for k, v in sorted(cpu.items()) if k.startswith("worker")]
    total = sum(per)
    return "/".join(f"{100 * v / total:.0f}" for v in per) if total else "-"


# ----------------------------------------------------------------------------- load generators


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    exhausted: bool = False
    cpu: dict[str, float] = field(default_factory=dict)
    tries: int = 1

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors + (1 if self.exhausted else 0)


@dataclass
class Load:
    """What to send: one static request, a cycle of GETs, one credential per request, or
    one distinct POST per request ("posts": items are "path\tbody\tidempotency key")."""

    mode: str  # static | list | verify | posts
    path: str = "/healthz"
    method: str = "GET"
    auth: str | None = None
    body: str | None = None
    items: list[str] = field(default_factory=list)  # list: "path\tauth"; verify: payloads
    #                                                   posts: "path\tbody\tkey"


def run_wrk(load: Load, port: int, seconds: float, connections: int, threads: int,
            workdir: Path) -> dict[str, Any]:
    env = dict(os.environ, BENCH_MODE=load.mode, BENCH_THREADS=str(threads),
               BENCH_PATH=load.path, BENCH_METHOD=load.method, BENCH_BENEFIT=BENEFIT)
    if load.auth:
        env["BENCH_AUTH"] = load.auth
    if load.body:
        env["BENCH_BODY"] = load.body
    if load.items:
        items_file = workdir / f"items-{load.mode}-{time.monotonic_ns()}.txt"
        items_file.write_text("\n".join(load.items) + "\n")
        env["BENCH_FILE"] = str(items_file)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--timeout", "10s", "-s", str(LUA), f"http://127.0.0.1:{port}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=seconds + 60, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
    raw: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    return {
        "requests": raw["requests"], "seconds": raw["duration_us"] / 1e6,
        "non2xx": raw["status"], "socket_errors": raw["connect"] + raw["read"] + raw["write"]
        + raw["timeout"], "p50_ms": raw["p50_us"] / 1e3, "p90_ms": raw["p90_us"] / 1e3,
        "p99_ms": raw["p99_us"] / 1e3, "max_ms": raw["max_us"] / 1e3,
        "exhausted": raw["exhausted_threads"] > 0,
    }


def _py_connection(port: int, reqs: list[tuple[str, str, dict[str, str], bytes | None]],
                   deadline: float, wrap_is_error: bool, out: dict[str, Any],
                   shared: collections.deque[Any] | None = None) -> None:
    """One keep-alive connection: cycles through ``reqs``, or, given ``shared`` (the
    requests of its process, each sent once), takes the next one from there and stops when
    none is left (the run is then reported as having run out)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    lat: list[float] = out["lat"]
    i = 0
    while True:
        now = time.perf_counter()
        if now >= deadline:
            break
        if shared is not None:
            try:
                method, path, headers, body = shared.popleft()
            except IndexError:
                out["exhausted"] = True
                break
        else:
            if i == len(reqs):
                i = 0
                if wrap_is_error:
                    out["exhausted"] = True
            method, path, headers, body = reqs[i]
            i += 1
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            out["socket_errors"] += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        lat.append(time.perf_counter() - now)
        if not 200 <= resp.status < 400:
            out["non2xx"] += 1
            out["statuses"][resp.status] = out["statuses"].get(resp.status, 0) + 1
    conn.close()


def _py_process(port: int, per_conn: list[list[tuple[str, str, dict[str, str], bytes | None]]],
                start_at: float, seconds: float, wrap_is_error: bool) -> dict[str, Any]:
    # Every process starts at the same wall-clock instant and stops `seconds` later.
    time.sleep(max(0.0, start_at - time.time()))
    deadline = time.perf_counter() + seconds
    outs = [{"lat": [], "non2xx": 0, "socket_errors": 0, "exhausted": False, "statuses": {}}
            for _ in per_conn]
    # Requests sent once each (verify, posts) are shared by the process's connections: a
    # connection that is served faster takes more, instead of running out of its own share
    # while the others still hold theirs (and replaying, which is cheaper than the real work).
    shared: collections.deque[Any] | None = None
    if wrap_is_error:
        shared = collections.deque(
            r for group in itertools.zip_longest(*per_conn) for r in group if r is not None)
    workers = [threading.Thread(target=_py_connection, args=(port, reqs, deadline,
                                                             wrap_is_error, out, shared))
               for reqs, out in zip(per_conn, outs, strict=True)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"lat": [x for o in outs for x in o["lat"]],
            "non2xx": sum(o["non2xx"] for o in outs),
            "socket_errors": sum(o["socket_errors"] for o in outs),
            "exhausted": any(o["exhausted"] for o in outs),
            "statuses": {k: sum(o["statuses"].get(k, 0) for o in outs)
                         for k in {k for o in outs for k in o["statuses"]}}}


def run_python(load: Load, port: int, seconds: float, connections: int,
               processes: int) -> dict[str, Any]:
    """Fallback generator: `processes` processes × keep-alive connections as threads."""
    json_headers = {"Content-Type": "application/json"}
    per_conn: list[list[tuple[str, str, dict[str, str], bytes | None]]] = []
    for c in range(connections):
        if load.mode == "static":
            headers = dict(json_headers if load.body else {})
            if load.auth:
                headers["Authorization"] = load.auth
            per_conn.append([(load.method, load.path, headers,
                              load.body.encode() if load.body else None)])
        elif load.mode == "list":
            rows = [item.split("\t", 1) for item in load.items]
            rows = rows[c % len(rows):] + rows[:c % len(rows)]
            per_conn.append([("GET", p, {"Authorization": a}, None) for p, a in rows])
        elif load.mode == "posts":
            posts = [item.split("\t", 2) for item in load.items[c::connections]]
            per_conn.append([
                ("POST", p, {**json_headers, "Authorization": load.auth or "",
                             "Idempotency-Key": k}, b.encode()) for p, b, k in posts])
        else:
            per_conn.append([
                ("POST", load.path, {**json_headers, "Authorization": load.auth or ""},
                 json.dumps({"credential": cred, "benefit": BENEFIT}).encode())
                for cred in load.items[c::connections]])
    groups = [per_conn[p::processes] for p in range(processes)]
    start_at = time.time() + 1.0
    with cf.ProcessPoolExecutor(processes, mp_context=mp.get_context("fork")) as pool:
        futures = [pool.submit(_py_process, port, g, start_at, seconds,
                               load.mode in ("verify", "posts"))
                   for g in groups if g]
        parts = [f.result(timeout=seconds + 60) for f in futures]
    lat = sorted(x for p in parts for x in p["lat"])
    statuses: dict[int, int] = {}
    for p in parts:
        for k, v in p["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    if statuses:
        log(f"non-2xx statuses: {dict(sorted(statuses.items()))}")

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, math.ceil(q * len(lat)) - 1)] * 1e3 if lat else 0.0

    return {"requests": len(lat), "seconds": seconds,
            "non2xx": sum(p["non2xx"] for p in parts),
            "socket_errors": sum(p["socket_errors"] for p in parts),
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "max_ms": lat[-1] * 1e3 if lat else 0.0,
            "exhausted": any(p["exhausted"] for p in parts)}


def until_balanced(measure: Callable[[], Result], tries: int) -> Result:
    """The measured run, repeated (up to ``tries``) while one gunicorn worker did less than a
    quarter of the work: gthread keeps each keep-alive connection on the worker that accepted
    it, so all the connections can land on one worker and one core."""
    for attempt in range(1, tries + 1):
        res = measure()
        res.tries = attempt
        if lowest_worker_share(res.cpu) >= 0.25 or res.errors:
            break
        if attempt < tries:
            log(f"unbalanced workers ({worker_split(res.cpu)}): measuring again")
    return res
