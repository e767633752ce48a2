"""Render a credential payload as a QR code (DESIGN.md §5: error correction M, version ≤ 15).

Speed: the ``qrcode`` library normally builds the symbol eight times to pick the mask with the
lowest penalty score; that is about two thirds of the work. We use one fixed mask instead. Any
of the eight masks is valid ISO/IEC 18004 and every decoder reads all of them; mask 4 had the
lowest mean penalty on real credential payloads (about 2 % above the per-symbol optimum), and
it triples the render rate (see ``scripts/bench_qr.py``). ISO/IEC 18004 describes picking
the lowest-penalty mask; the penalty only predicts scanning comfort, not decodability.
"""

from __future__ import annotations

import io
from typing import Final, TypeVar

import qrcode
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M
from qrcode.exceptions import DataOverflowError
from qrcode.image.base import BaseImage
from qrcode.image.pil import PilImage
from qrcode.image.svg import SvgPathImage

__all__ = ["BORDER", "MASK_PATTERN", "MAX_VERSION", "PNG_BOX_SIZE", "png_of_matrix", "render_png",
           "render_svg"]

MAX_VERSION: Final = 15
PNG_BOX_SIZE: Final = 8
SVG_BOX_SIZE: Final = 10  # SvgPathImage units: box_size / 10 mm per module; the viewBox scales
BORDER: Final = 4  # the quiet zone the standard asks for
MASK_PATTERN: Final = 4

_Image = TypeVar("_Image", bound=BaseImage)


def _build(payload: str, box_size: int, factory: type[_Image]) -> qrcode.QRCode[_Image]:
    if not isinstance(payload, str) or not payload:
        raise ValueError("payload must be a non-empty string")
    code = qrcode.QRCode(
        version=None,
        error_correction=ERROR_CORRECT_M,
        box_size=box_size,
        border=BORDER,
        image_factory=factory,
        mask_pattern=MASK_PATTERN,
    )
    # Byte mode only (optimize=0): the payload is base64url text, so mixed modes never help,
    # and the capacity is then exactly what tokens.MAX_QR_PAYLOAD_BYTES says.
    code.add_data(payload, optimize=0)
    try:
        version = code.best_fit()
    except DataOverflowError:
        raise ValueError("payload does not fit any QR version") from None
    if version > MAX_VERSION:
        raise ValueError(f"payload needs QR version {version}; at most {MAX_VERSION} is allowed")
    # best_fit() above is exactly what make(fit=True) would run; running it twice costs ~7 %.
    code.make(fit=False)
    assert code.version == version
    return code


def render_png(payload: str) -> bytes:
    """A black-on-white 1-bit PNG, 8 px per module, 4-module quiet zone.

    The symbol is qrcode's; the pixels are drawn from its module matrix in three Pillow calls
    instead of qrcode's one rectangle per dark module (4.6 ms of a 15 ms render). The image is
    pixel for pixel what ``make_image()`` with :class:`PilImage` draws (a unit test holds it).
    """
    return png_of_matrix(_build(payload, PNG_BOX_SIZE, PilImage).get_matrix(), PNG_BOX_SIZE)


def png_of_matrix(matrix: list[list[bool]], box_size: int) -> bytes:
    """A 1-bit PNG of a module matrix (quiet zone included), ``box_size`` pixels per module."""
    n = len(matrix)
    modules = Image.frombytes("L", (n, n), bytes(0 if dark else 255
                                                  for row in matrix for dark in row))
    out = io.BytesIO()
    (modules.convert("1", dither=Image.Dither.NONE)
     .resize((n * box_size, n * box_size), Image.Resampling.NEAREST)
     .save(out, format="PNG"))
    return out.getvalue()


def render_svg(payload: str) -> bytes:
    """A standalone SVG document (one ``<path>``), UTF-8 with an XML declaration."""
    image = _build(payload, SVG_BOX_SIZE, SvgPathImage).make_image()
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()
