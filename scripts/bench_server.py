"""The server that ``scripts/bench_http.py`` measures: xinyi+ exactly as ``xinyi serve`` builds
it, with the floor endpoints of ``scripts/floors_app.py`` mounted at ``/floors`` in the same
worker processes, so that a real endpoint and its floor are measured in one server and one run.

    python scripts/bench_server.py --server gunicorn|granian --port P [--workers 2] [--threads 4]

* ``gunicorn``: :func:`xinyi.serving.serve_with_gunicorn`, the very configuration of ``xinyi
  serve`` (gthread, 2 workers × 4 threads by default, the Prometheus multiprocess directory).
* ``granian``: granian's WSGI interface (``pip install -e '.[bench]'``), as many
  workers, each with ``--threads`` blocking threads running the app, the same
  ``PROMETHEUS_MULTIPROC_DIR`` set up.

The floors read ``FLOORS_*`` from the environment (see floors_app.py), xinyi+ its ``XINYI_*``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def create() -> Any:
    from floors_app import floors
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from xinyi.app import create_app
    from xinyi.config import load_settings
    from xinyi.serving import finish_unread_bodies

    settings = load_settings()
    xinyi = finish_unread_bodies(create_app(settings), 2 * settings.max_body_bytes)
    return DispatcherMiddleware(xinyi, {"/floors": floors()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["gunicorn", "granian"], default="gunicorn")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="xinyi-metrics-")
    if args.server == "gunicorn":
        from xinyi.serving import serve_with_gunicorn

        serve_with_gunicorn(create, bind=f"{args.host}:{args.port}", workers=args.workers,
                            threads=args.threads)
        return
    from granian import Granian  # type: ignore[import-not-found, unused-ignore]

    Granian("bench_server:create", address=args.host, port=args.port, interface="wsgi",
            factory=True, workers=args.workers, blocking_threads=args.threads,
            working_dir=Path(__file__).resolve().parent, log_access=False,
            log_level="warning").serve()


if __name__ == "__main__":
    main()
