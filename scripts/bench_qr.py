"""Benchmark the QR credential: PNG/SVG renders per second and token issues/verifies per second.

    .venv/bin/python scripts/bench_qr.py [--seconds 2]

Also times PNG rendering with the qrcode library's own mask search (no fixed mask), which is
the reason ``xinyi.credentials.qr`` pins one mask. Single process, single thread.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.pil import PilImage

from xinyi.credentials import qr, tokens
from xinyi.jwk import SigningKey


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()  # warm up
    n = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        n += 1
    return n / elapsed


def png_with_mask_search(payload: str) -> bytes:
    code = qrcode.QRCode(
        version=None,
        error_correction=ERROR_CORRECT_M,
        box_size=qr.PNG_BOX_SIZE,
        border=qr.BORDER,
        image_factory=PilImage,
    )
    code.add_data(payload, optimize=0)
    code.make(fit=True)
    out = io.BytesIO()
    code.make_image().save(out)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()

    key = SigningKey.generate()
    keys = {key.kid: key.public_key}
    now = datetime.now(UTC)

    def issue(benefits: list[str]) -> tokens.IssuedCredential:
        return tokens.issue(key, issuer="xinyi", tier="AAA", benefits=benefits, not_before=now)

    small = issue([]).qr_payload
    full = issue(["lib", "bike", "hotel"]).qr_payload
    # The smallest real credential is ~380 bytes; ~300 bytes is a shortened stand-in.
    payloads = {"300 B (synthetic)": full[:300], f"{len(small)} B": small, f"{len(full)} B": full}

    def report(label: str, fn: Callable[[], object], per_call: int = 1) -> None:
        print(f"  {label:<24}{rate(fn, args.seconds) * per_call:9.1f} /s")

    print(f"python {sys.version.split()[0]}, {args.seconds:g} s per measurement")
    for label, payload in payloads.items():
        print(f"payload {label}:")
        report(f"PNG (fixed mask {qr.MASK_PATTERN})", partial(qr.render_png, payload))
        report("PNG (library mask search)", partial(png_with_mask_search, payload))
        report(f"SVG (fixed mask {qr.MASK_PATTERN})", partial(qr.render_svg, payload))
    print("tokens:")
    report("issue", lambda: issue(["lib", "bike"]))
    report(
        "issue_batch(15), per cred",
        lambda: tokens.issue_batch(
            key, issuer="xinyi", tier="AAA", benefits=["lib"], start=now, count=15
        ),
        per_call=15,
    )
    report("verify", lambda: tokens.verify(full, keys, issuer="xinyi", now=now))


if __name__ == "__main__":
    main()
