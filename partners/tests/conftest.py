"""Fixtures shared by the tests."""

from __future__ import annotations

import pytest
from _support import Signer, jwks_of


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def jwks(signer: Signer) -> dict[str, list[dict[str, str]]]:
    return jwks_of(signer)
