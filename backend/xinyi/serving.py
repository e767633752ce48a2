"""What `xinyi serve` adds to gunicorn: a logger redacted like the app's logs, and
connections kept usable when the app answers without reading a request's whole body.

gunicorn logs what it could not parse before the app sees anything, e.g. "Invalid request from
ip=…: Invalid HTTP request line: 'GET /v1/me?access_token=…&phone=…'", and its access log
quotes every request line. Query strings are where clients put tokens and phone numbers, so
neither log keeps one: request lines and URLs keep only their path, and the rest of each record
goes through the app's redaction.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gunicorn.glogging import Logger

from xinyi.logs import redact_http

# Atoms of the access log that hold a query, or a header that is a credential.
_QUERY_ATOMS = ("q", "{query_string}e")
_SECRET_HEADERS = ("authorization", "cookie", "proxy-authorization", "x-api-key")


class _RedactRecord(logging.Filter):
    """Renders each record, redacted, into its message (arguments dropped), and its traceback
    into its exception text, so no handler or formatter can render the raw values again."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_http(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact_http("".join(traceback.format_exception(
                *record.exc_info)).rstrip("\n"))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact_http(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_http(record.stack_info)
        return True


_REDACT = _RedactRecord()


class RedactingLogger(Logger):  # type: ignore[misc]
    """The gunicorn logger class (setting ``logger_class``) that never logs a query string."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # On the loggers, not their handlers: also covers handlers a log config adds.
        for log in (self.error_log, self.access_log):
            log.addFilter(_REDACT)  # no duplicate when a reload runs setup again

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any],
              request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for name in _QUERY_ATOMS:
            if atoms.get(name):
                atoms[name] = "[query]"
        for name in _SECRET_HEADERS:
            for atom in (f"{{{name}}}i", f"{{http_{name.replace('-', '_')}}}e"):
                if atoms.get(atom):
                    atoms[atom] = "[redacted]"
        # "r" quotes the request line: keep its method, path and protocol, not its query.
        atoms["r"] = " ".join([str(environ.get("REQUEST_METHOD", "-")),
                               redact_http(str(environ.get("RAW_URI", "-"))),
                               str(environ.get("SERVER_PROTOCOL", "-"))])
        return {name: redact_http(value) if isinstance(value, str) and name != "r" else value
                for name, value in atoms.items()}


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _CountingInput:
    """The request body as the app reads it, remembering whether it reached the end."""

    def __init__(self, stream: Any, length: int | None) -> None:
        self._stream, self._length = stream, length
        self._read, self._ended = 0, False

    @property
    def consumed(self) -> bool:
        return self._ended or (self._length is not None and self._read >= self._length)

    def _seen(self, data: bytes, asked: int | None) -> bytes:
        self._read += len(data)
        if not data and asked != 0:
            self._ended = True
        return data

    def read(self, size: int | None = None) -> bytes:
        data = self._stream.read() if size is None or size < 0 else self._stream.read(size)
        return self._seen(data, size)

    def readline(self, size: int | None = None) -> bytes:
        return self._seen(self._stream.readline(size), size)

    def readlines(self, hint: int | None = None) -> list[bytes]:
        lines: list[bytes] = self._stream.readlines(hint)
        self._read += sum(map(len, lines))
        self._ended = self._ended or not hint
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def drain(self, limit: int, seconds: float) -> None:
        """Read and drop what is left, unless more than ``limit`` bytes are declared left;
        stop after ``limit`` bytes or ``seconds`` (a chunked body says nothing in advance)."""
        if self._length is not None and self._length - self._read > limit:
            return
        deadline = time.monotonic() + seconds
        while not self.consumed and limit > 0 and time.monotonic() < deadline:
            try:
                limit -= len(self.read(min(CHUNK, limit)))
            except (OSError, ValueError):  # the client went away, or broke its chunking
                return


CHUNK = 64 * 1024
DRAIN_SECONDS = 10.0


def finish_unread_bodies(app: WsgiApp, drain_bytes: int) -> WsgiApp:
    """Keep a connection usable when the app answers without reading the whole body: over the
    size limit (413), or refused before parsing (401, 415).

    gunicorn would answer "keep-alive", drain at most 64 KiB of what is left and then reset
    the connection, so a client's next request met the reset, and a client still sending its
    body could not read the answer. So before the answer goes out, up to ``drain_bytes`` of
    the rest is read and dropped (the connection stays alive); a body larger than that gets
    "Connection: close" instead, set through gunicorn's response (the owner of
    ``start_response``), which ignores that header from an app.
    """

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        declared = str(environ.get("CONTENT_LENGTH") or "")
        length = int(declared) if declared.isdigit() else None
        chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
        if chunked:
            length = None  # ends where its last chunk says
        elif not length:
            return app(environ, start_response)  # no body
        body = environ["wsgi.input"] = _CountingInput(environ["wsgi.input"], length)

        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            if not body.consumed:
                body.drain(drain_bytes, DRAIN_SECONDS)
            force_close = getattr(getattr(start_response, "__self__", None), "force_close",
                                  None)
            if not body.consumed and callable(force_close):
                force_close()
            return start_response(status, headers, *exc_info)

        return app(environ, start)

    return wsgi


def serve_with_gunicorn(load: Callable[[], WsgiApp], *, bind: str, workers: int,
                        threads: int) -> None:
    """Run gunicorn as `xinyi serve` does (gthread workers, the redacting logger, no access
    log, 30 s timeout) on the WSGI app that ``load`` builds in each worker.

    With more than one worker, each counts its Prometheus metrics into files of a shared
    directory (``PROMETHEUS_MULTIPROC_DIR``, made if unset) so /metrics reports the whole
    server, and a worker that exits (recycled, crashed, or a graceful restart on HUP) is
    marked dead there, so its live gauges stop counting."""
    from gunicorn.app.base import BaseApplication

    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="xinyi-metrics-")

    def child_exit(_server: Any, worker: Any) -> None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("child_exit", child_exit)
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            self.cfg.set("accesslog", None)
            self.cfg.set("logger_class", RedactingLogger)
            self.cfg.set("timeout", 30)

        def load(self) -> Any:
            return load()

    _App().run()
