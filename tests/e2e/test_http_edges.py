"""What only a real server shows: gunicorn's own log, and connections a client keeps alive."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.factories import SENSITIVE_VALUES, random_phone
from tests.servers import LiveServer, live_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("instance")) as live:
        yield live


def _send_raw(server: LiveServer, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _wait_for_log(server: LiveServer, needle: str) -> str:
    deadline = time.monotonic() + 10
    while needle not in (log := server.log()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return log


def test_a_malformed_request_line_is_logged_without_its_query(server: LiveServer) -> None:
    token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNlY3JldA"
    phone = random_phone()
    SENSITIVE_VALUES.add(token)
    # No HTTP version: gunicorn refuses the line and logs why.
    answer = _send_raw(server, f"GET /v1/me?access_token={token}&phone={phone}\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 400")
    log = _wait_for_log(server, "Invalid request from")
    assert "Invalid request from" in log, log[-2000:]
    assert "/v1/me" in log  # the path stays: it tells what was asked, and holds no values
    assert token not in log and phone not in log
    assert token[:20] not in log and phone[:7] not in log
