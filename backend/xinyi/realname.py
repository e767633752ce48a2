"""Real-name verification (实名核验) behind a port; the real one calls the public-security API."""

from __future__ import annotations

from typing import Protocol

from xinyi.pii import IdNumber


class RealNameVerifier(Protocol):
    def verify(self, id_number: IdNumber, name: str) -> bool: ...


class DevRealNameVerifier:
    """Development only: any structurally valid ID number with a non-empty name passes."""

    def verify(self, id_number: IdNumber, name: str) -> bool:
        return bool(name.strip())


def make_verifier(kind: str) -> RealNameVerifier:
    if kind == "dev":
        return DevRealNameVerifier()
    raise ValueError(f"unknown real-name verifier {kind!r}")
