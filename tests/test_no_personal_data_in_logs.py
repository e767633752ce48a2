"""Runs last (see conftest): scans every log record the suite produced for personal data.

That is the in-process records (before redaction) and, through tests/servers.py, everything
each live `xinyi serve` wrote: gunicorn's own error log and the app's logs as deployed.
"""

from __future__ import annotations

import re

from tests.factories import CAPTURED_LOGS, SENSITIVE_VALUES

PATTERNS = {
    "id number": re.compile(
        r"(?<![0-9A-Za-z])\d{6}(?:19|20)\d{2}[01]\d[0-3]\d\d{3}[\dXx](?![0-9A-Za-z])"),
    # Not inside a longer token: a UUID's hex may hold 11 digits starting with 13-19.
    "phone number": re.compile(r"(?<![0-9A-Za-z_.-])1[3-9]\d{9}(?![0-9A-Za-z_.-])"),
    "jwt": re.compile(r"eyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]+"),
    "api key or refresh token": re.compile(r"xy[kr]_[\w-]{8,}"),
    "webhook secret": re.compile(r"whsec_[\w+/=]{8,}"),
    "password hash": re.compile(r"\$argon2(?:id|i|d)\$"),
}


def test_no_personal_data_in_logs() -> None:
    assert len(CAPTURED_LOGS) > 20, "the suite should have produced logs to scan"
    assert any('"event": "login"' in entry for entry in CAPTURED_LOGS)
    # The paths the issue found leaking must be among what is scanned.
    assert any('"event": "unhandled"' in entry for entry in CAPTURED_LOGS), "no unhandled error"
    assert any("Booting worker" in entry for entry in CAPTURED_LOGS), "no gunicorn log"
    assert any("Invalid request from" in entry for entry in CAPTURED_LOGS), \
        "no malformed request in gunicorn's log"
    assert len(SENSITIVE_VALUES) > 10
    leaks = []
    for entry in CAPTURED_LOGS:
        for value in SENSITIVE_VALUES:
            if value in entry:
                leaks.append(f"known value in: {entry[:200]}")
        for name, pattern in PATTERNS.items():
            if pattern.search(entry):
                leaks.append(f"{name} pattern in: {entry[:200]}")
    assert not leaks, "\n".join(leaks[:20])
