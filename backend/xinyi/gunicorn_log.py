"""gunicorn's logger, redacted like the app's logs (`xinyi serve` installs it).

gunicorn logs what it could not parse before the app sees anything, e.g. "Invalid request from
ip=…: Invalid HTTP request line: 'GET /v1/me?access_token=…&phone=…'", and its access log
quotes every request line. Query strings are where clients put tokens and phone numbers, so
neither log keeps one: request lines and URLs keep only their path, and the rest of each record
goes through the app's redaction.
"""

from __future__ import annotations

import logging
import traceback
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
