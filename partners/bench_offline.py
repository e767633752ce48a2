"""Throughput of offline credential verification on one core.

    python partners/bench_offline.py [--count 20000]

Signs ``count`` distinct credentials with a fresh Ed25519 key, then times ``verify_offline``
over all of them with a shared :class:`SeenJtiCache` (so every check includes the replay
bookkeeping), and prints verifications per second. Target: at least 5,000/s.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
import time
from datetime import UTC, datetime

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from xinyi_partner import SeenJtiCache, verify_offline

TARGET_PER_SECOND = 5_000


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):  # pin to one core where the OS allows it
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    key = Ed25519PrivateKey.generate()
    x = _b64url(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    kid = _b64url(hashlib.sha256(canonical.encode()).digest())
    jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig"}]}

    now = datetime.now(UTC)
    iat = int(now.timestamp())
    headers = {"kid": kid, "typ": "xy-cred+jwt"}
    payloads = [
        "XY1:"
        + jwt.encode(
            {
                "iss": "https://xinyi.example.cn",
                "sub": secrets.token_urlsafe(16),
                "jti": secrets.token_urlsafe(16),
                "iat": iat,
                "exp": iat + 120,
                "tier": "AA",
                "ben": ["library.deposit_free", "bike.deposit_free", "hotel.deposit_free"],
            },
            key,
            algorithm="EdDSA",
            headers=headers,
        )
        for _ in range(args.count)
    ]
    seen = SeenJtiCache(max_entries=args.count)

    start = time.perf_counter()
    for payload in payloads:
        verify_offline(payload, jwks, seen=seen, now=now)
    elapsed = time.perf_counter() - start

    rate = args.count / elapsed
    print(
        f"{args.count} offline verifications of distinct credentials in {elapsed:.3f} s: "
        f"{rate:,.0f}/s on one core (target {TARGET_PER_SECOND:,}/s) "
        f"[{sys.implementation.name} {sys.version.split()[0]}, PyJWT {jwt.__version__}]"
    )
    return 0 if rate >= TARGET_PER_SECOND else 1


if __name__ == "__main__":
    raise SystemExit(main())
