"""The offline queue: durable across a crash, uploaded in chunks of ≤ 500, kept on failure,
and what the verifier queues (nothing while its keys are stale)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from _stub import deployment
from _support import NOW, Signer
from test_discovery import Clock
from xinyi_partner import ApiError, OfflineItem, OfflineQueue, OfflineVerifier, UploadClient


@dataclass
class Server:
    """A stand-in upload endpoint: answers ``status`` (with ``Retry-After``), and for a 200
    what a server would (``recorded`` once per jti, then ``duplicate``)."""

    status: int = 200
    retry_after: str | None = None
    calls: list[list[dict[str, Any]]] = field(default_factory=list)
    recorded: set[str] = field(default_factory=set)
    url: str = ""

    def answer(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            status = "duplicate" if item["jti"] in self.recorded else "recorded"
            self.recorded.add(item["jti"])
            out.append({"jti": item["jti"], "status": status, "verification_id": None,
                        "reason": None})
        return out


@contextmanager
def upload_server() -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert self.path == "/v1/partner/verifications:offline"
            assert self.headers["Authorization"] == "Bearer xyk_test"
            items = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["items"]
            state.calls.append(items)
            if state.status == 200:
                body = json.dumps({"items": state.answer(items)}).encode()
            else:
                body = json.dumps({"code": "nope", "detail": "no"}).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            if state.retry_after:
                self.send_header("Retry-After", state.retry_after)
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


def items(n: int, prefix: str = "j") -> list[OfflineItem]:
    return [OfflineItem(f"{prefix}{i:05d}", "lb", "eligible", NOW + timedelta(seconds=i))
            for i in range(n)]


def test_items_queued_by_a_process_that_crashes_are_still_there(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    program = (
        "import os, sys\n"
        "from datetime import UTC, datetime\n"
        "from xinyi_partner import OfflineItem, OfflineQueue\n"
        "queue = OfflineQueue(sys.argv[1])\n"
        "for i in range(3):\n"
        "    queue.add(OfflineItem(f'jti{i}', 'lb', 'eligible', datetime.now(UTC)))\n"
        "os._exit(9)  # no close, no cleanup: a crash\n")
    done = subprocess.run([sys.executable, "-c", program, str(path)], check=False)  # noqa: S603
    assert done.returncode == 9
    with OfflineQueue(path) as queue:
        assert [i.jti for i in queue.peek()] == ["jti0", "jti1", "jti2"]
        assert queue.add(OfflineItem("jti0", "lb", "eligible", NOW)) is False  # once per jti


def test_upload_sends_chunks_of_at_most_500_and_empties_the_queue(tmp_path: Path) -> None:
    with OfflineQueue(tmp_path / "q.db") as queue, upload_server() as server:
        for item in items(1200):
            queue.add(item)
        result = queue.upload_pending(UploadClient(server.url, "xyk_test"))
        assert [len(c) for c in server.calls] == [500, 500, 200]
        assert server.calls[0][0] == {"jti": "j00000", "benefit": "lb", "decision": "eligible",
                                      "verified_at": NOW.isoformat()}
        assert (result.sent, result.answered, result.remaining) == (1200, {"recorded": 1200}, 0)
        assert result.retry_after is None and len(queue) == 0


@pytest.mark.parametrize(("status", "retry_after", "expected"),
                         [(503, "7", 7.0), (429, "30", 30.0), (500, None, 60.0)])
def test_a_5xx_or_429_keeps_everything_for_later(tmp_path: Path, status: int,
                                                 retry_after: str | None,
                                                 expected: float) -> None:
    with OfflineQueue(tmp_path / "q.db") as queue, upload_server() as server:
        for item in items(3):
            queue.add(item)
        server.status, server.retry_after = status, retry_after
        result = queue.upload_pending(UploadClient(server.url, "xyk_test"))
        assert (result.sent, result.remaining, result.retry_after) == (0, 3, expected)
        server.status, server.retry_after = 200, None
        assert queue.upload_pending(UploadClient(server.url, "xyk_test")).remaining == 0


def test_no_network_keeps_everything_and_a_refusal_is_raised(tmp_path: Path) -> None:
    with OfflineQueue(tmp_path / "q.db") as queue:
        for item in items(2):
            queue.add(item)
        with upload_server() as server:
            url = server.url
        result = queue.upload_pending(UploadClient(url, "xyk_test", timeout=2))  # port closed
        assert (result.remaining, result.retry_after) == (2, 60.0) and result.error
        with upload_server() as server:
            server.status = 401
            with pytest.raises(ApiError) as refused:
                queue.upload_pending(UploadClient(server.url, "xyk_test"))
            assert refused.value.status == 401 and len(queue) == 2


def test_a_crash_after_the_answer_only_sends_the_items_again(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    with OfflineQueue(tmp_path / "q.db") as queue, upload_server() as server:
        for item in items(4):
            queue.add(item)

        def crash(jtis: object) -> None:
            raise KeyboardInterrupt  # the process dies before it forgets what was answered

        monkeypatch.setattr(queue, "remove", crash)
        with pytest.raises(KeyboardInterrupt):
            queue.upload_pending(UploadClient(server.url, "xyk_test"))
        monkeypatch.undo()
        assert len(queue) == 4  # nothing lost
        result = queue.upload_pending(UploadClient(server.url, "xyk_test"))
        assert result.answered == {"duplicate": 4} and result.remaining == 0
        assert len(server.recorded) == 4


def test_check_queues_what_it_verified_and_grants_nothing_on_stale_keys(
        signer: Signer, tmp_path: Path) -> None:
    clock = Clock()
    with deployment(signer) as xinyi, OfflineQueue(tmp_path / "q.db") as queue:
        verifier = OfflineVerifier.from_configuration(xinyi.url, clock=clock, queue=queue)
        token = signer.token(ben=["lb"])
        granted = verifier.check(token, "lb", now=NOW)
        assert (granted.decision, granted.queued, granted.error) == ("eligible", True, None)
        [queued] = queue.peek()
        assert (queued.benefit, queued.decision, queued.verified_at) == ("lb", "eligible", NOW)
        assert granted.credential is not None and queued.jti == granted.credential.jti
        replay = verifier.check(token, "lb", now=NOW)
        assert replay.decision == "standard_terms" and replay.error is not None
        assert replay.error.code == "credential_used" and len(queue) == 1
        # Another benefit than the card lists: standard terms, still registered.
        other = verifier.check(signer.token(ben=["lb"]), "bk", now=NOW)
        assert (other.decision, other.queued) == ("standard_terms", True)
        # Offline for more than 24 h (the default key-age limit): nothing is granted any
        # more, however valid the card, and nothing is queued.
        xinyi.down = True
        clock.now += 24 * 3600 + 1
        stale = verifier.check(signer.token(ben=["lb"]), "lb", now=NOW)
        assert stale.decision == "standard_terms" and stale.error is not None
        assert stale.error.code == "stale_keys" and len(queue) == 2
