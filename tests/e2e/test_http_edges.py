"""What only a real server shows: gunicorn's own log, and connections a client keeps alive."""

from __future__ import annotations

import http.client
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


JSON = {"Content-Type": "application/json"}


def _body(size: int, chunked: bool) -> bytes | Iterator[bytes]:
    body = b'{"x": "' + b"a" * size + b'"}'
    return iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if chunked else body


@pytest.mark.parametrize(("path", "headers", "size", "chunked", "status"), [
    ("/v1/auth/login", JSON, 1100 * 1024, False, 413),  # over the body limit
    ("/v1/auth/login", JSON, 1100 * 1024, True, 413),
    ("/v1/me/credentials", JSON, 300 * 1024, False, 401),  # refused before the body is read
    ("/v1/me/credentials", JSON, 300 * 1024, True, 401),
    ("/v1/auth/login", {"Content-Type": "text/plain"}, 300 * 1024, False, 415),  # not JSON
])
def test_an_answer_given_before_the_body_was_read_leaves_the_connection_usable(
        server: LiveServer, path: str, headers: dict[str, str], size: int, chunked: bool,
        status: int) -> None:
    """gunicorn alone answered "keep-alive", drained at most 64 KiB of the unread body and
    reset the connection: the client's next request on it got no answer."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", path, body=_body(size, chunked), headers=headers,
                     encode_chunked=chunked)
        first = conn.getresponse()
        first.read()
        assert first.status == status
        assert first.getheader("Connection") == "keep-alive"  # the body was drained
        reused = conn.sock
        conn.request("GET", "/healthz")
        second = conn.getresponse()
        assert second.status == 200, second.read()
        assert conn.sock is reused
    finally:
        conn.close()


def test_a_body_too_large_to_drain_gets_its_answer_and_a_closed_connection(
        server: LiveServer) -> None:
    """Declared far over the limit, the body is not read: the answer says "close", and
    the connection ends after it instead of being reset under a next request."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n"
                     + b"a" * 4096)
        answer = b""
        while chunk := sock.recv(65536):  # ends: the server closes its side
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode().lower()
    assert head.startswith("http/1.1 413") and "connection: close" in head


def test_an_answer_after_the_body_was_read_keeps_the_connection(server: LiveServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        sockets = []
        for chunked in (False, True):
            body = b'{"phone": "not a phone", "password": "x"}'
            conn.request("POST", "/v1/auth/login", headers=JSON, encode_chunked=chunked,
                         body=iter([body]) if chunked else body)
            answer = conn.getresponse()
            answer.read()
            sockets.append(conn.sock)
            assert answer.status < 500 and answer.getheader("Connection") == "keep-alive"
        assert sockets[0] is sockets[1]
    finally:
        conn.close()
