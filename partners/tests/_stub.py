"""A stand-in xinyi+ deployment on a local port: its configuration and JWKS, and a switch
that takes it off the network."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from _support import ISSUER, Signer, jwks_of


@dataclass
class Deployment:
    signers: list[Signer]
    issuer: str = ISSUER
    cache_control: str = "public, max-age=300"
    down: bool = False
    configuration: dict[str, Any] | None = None  # None: the right one
    hits: Counter[str] = field(default_factory=Counter)
    url: str = ""

    def document(self, path: str) -> dict[str, Any] | None:
        if path == "/.well-known/jwks.json":
            return jwks_of(*self.signers)
        if path == "/.well-known/xinyi-configuration":
            return self.configuration or {
                "issuer": self.issuer, "jwks_uri": f"{self.url}/.well-known/jwks.json",
                "credential_algorithms": ["EdDSA"], "credential_prefix": "XY1:"}
        return None


@contextmanager
def deployment(*signers: Signer) -> Iterator[Deployment]:
    state = Deployment(list(signers))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] += 1
            document = state.document(self.path)
            status = 503 if state.down else 200 if document is not None else 404
            body = json.dumps(document if status == 200 else {"code": "nope"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", state.cache_control)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
