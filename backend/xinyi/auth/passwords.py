"""Password hashing with argon2id (argon2-cffi) and a minimal strength rule."""

from __future__ import annotations

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=argon2.Type.ID
        )
        # Verified against when the phone is unknown, so timing does not reveal registration.
        self._dummy = self._hasher.hash("not-a-real-password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def password_problems(password: str) -> list[str]:
    problems = []
    if not 8 <= len(password) <= 128:
        problems.append("must be 8 to 128 characters")
    if not any(c.isdigit() for c in password) or not any(c.isalpha() for c in password):
        problems.append("must contain letters and digits")
    return problems
