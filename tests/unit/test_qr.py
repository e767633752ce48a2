"""QR rendering (DESIGN.md §5: error correction M, version ≤ 15), read back by zxing-cpp."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from xinyi.credentials import qr, tokens
from xinyi.credentials.tokens import issue, verify
from xinyi.jwk import SigningKey

ISSUER = "xinyi"
NOW = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


def extra(barcode: zxingcpp.Barcode) -> dict[str, Any]:
    info = barcode.extra
    assert isinstance(info, dict)
    return info


def decode_one(image: Image.Image) -> zxingcpp.Barcode:
    # QR codes only: about 1 symbol in 400 also contains a run of modules that zxing reads as
    # a (false) Codabar barcode, which says nothing about the QR code.
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(found) == 1, found
    barcode = found[0]
    assert barcode.valid
    assert barcode.format == zxingcpp.BarcodeFormat.QRCode
    return barcode


def test_png_decodes_to_the_payload_and_verifies(key: SigningKey) -> None:
    cred = issue(key, issuer=ISSUER, tier="AAA", benefits=["lib", "bike"], not_before=NOW)
    png = qr.render_png(cred.qr_payload)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    barcode = decode_one(image)
    assert barcode.text == cred.qr_payload
    assert barcode.ec_level == "M"
    assert int(extra(barcode)["Version"]) <= 15
    claims = verify(barcode.text, {key.kid: key.public_key}, issuer=ISSUER, now=NOW)
    assert claims.jti == cred.jti and claims.benefits == ("lib", "bike")


def test_png_geometry(key: SigningKey) -> None:
    payload = issue(key, issuer=ISSUER, tier="A", benefits=[], not_before=NOW).qr_payload
    image = Image.open(io.BytesIO(qr.render_png(payload)))
    barcode = decode_one(image)
    version = int(extra(barcode)["Version"])
    assert extra(barcode)["DataMask"] == qr.MASK_PATTERN
    modules = 4 * version + 17 + 2 * qr.BORDER
    assert image.size == (modules * qr.PNG_BOX_SIZE, modules * qr.PNG_BOX_SIZE)
    # the quiet zone is white
    rgb = image.convert("L")
    quiet = qr.BORDER * qr.PNG_BOX_SIZE
    assert all(rgb.getpixel((x, y)) == 255 for x in range(image.size[0]) for y in range(quiet))


def test_png_is_pixel_for_pixel_what_qrcode_draws(key: SigningKey) -> None:
    # render_png draws the module matrix itself; it must not differ from the library's image.
    from qrcode.image.pil import PilImage

    for benefits in ([], ["lib"], ["lib", "bike", "hotel"]):
        payload = issue(key, issuer=ISSUER, tier="AA", benefits=benefits,
                        not_before=NOW).qr_payload
        ours = Image.open(io.BytesIO(qr.render_png(payload)))
        reference = io.BytesIO()
        qr._build(payload, qr.PNG_BOX_SIZE, PilImage).make_image().save(reference)
        theirs = Image.open(io.BytesIO(reference.getvalue()))
        assert ours.mode == theirs.mode == "1" and ours.size == theirs.size
        assert ours.tobytes() == theirs.tobytes()


def test_many_credentials_decode(key: SigningKey) -> None:
    # Guards the fixed mask: every symbol must still read back.
    for i in range(12):
        benefits = ["lib", "bike", "hotel"][: i % 4]
        payload = issue(key, issuer=ISSUER, tier="AA", benefits=benefits, not_before=NOW).qr_payload
        image = Image.open(io.BytesIO(qr.render_png(payload)))
        assert decode_one(image).text == payload


def test_largest_allowed_payload_fits_version_15() -> None:
    payload = "XY1:" + "a" * (tokens.MAX_QR_PAYLOAD_BYTES - 4)
    barcode = decode_one(Image.open(io.BytesIO(qr.render_png(payload))))
    assert barcode.text == payload
    assert extra(barcode)["Version"] == "15" and barcode.ec_level == "M"


def test_payload_needing_more_than_version_15_is_refused() -> None:
    payload = "XY1:" + "a" * (tokens.MAX_QR_PAYLOAD_BYTES - 3)
    with pytest.raises(ValueError, match="version"):
        qr.render_png(payload)
    with pytest.raises(ValueError, match="version"):
        qr.render_svg(payload)
    with pytest.raises(ValueError):
        qr.render_png("x" * 10_000)  # beyond version 40 too


def test_empty_payload_is_refused() -> None:
    with pytest.raises(ValueError):
        qr.render_png("")
    with pytest.raises(ValueError):
        qr.render_svg("")


def rasterise_svg(root: ET.Element, scale: int = 8) -> Image.Image:
    """Draw the rectangles of SvgPathImage's single path (``M x,y H x2 V y2 H x z``)."""
    x0, y0, width, height = (float(v) for v in root.attrib["viewBox"].split())
    assert (x0, y0) == (0, 0)
    paths = root.findall(f"{SVG_NS}path")
    assert len(paths) == 1
    d = paths[0].attrib["d"]
    rects = re.findall(r"M([\d.]+),([\d.]+)H([\d.]+)V([\d.]+)H[\d.]+z", d)
    assert rects
    image = Image.new("L", (round(width * scale), round(height * scale)), 255)
    draw = ImageDraw.Draw(image)
    for x1, y1, x2, y2 in rects:
        draw.rectangle(
            (
                round(float(x1) * scale),
                round(float(y1) * scale),
                round(float(x2) * scale) - 1,
                round(float(y2) * scale) - 1,
            ),
            fill=0,
        )
    return image


def test_svg_is_well_formed_and_encodes_the_payload(key: SigningKey) -> None:
    cred = issue(key, issuer=ISSUER, tier="AAA", benefits=["lib", "bike"], not_before=NOW)
    svg = qr.render_svg(cred.qr_payload)
    assert isinstance(svg, bytes)
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag == f"{SVG_NS}svg"
    assert "viewBox" in root.attrib
    barcode = decode_one(rasterise_svg(root))
    assert barcode.text == cred.qr_payload
    assert barcode.ec_level == "M" and int(extra(barcode)["Version"]) <= 15


def test_svg_and_png_carry_the_same_symbol(key: SigningKey) -> None:
    payload = issue(key, issuer=ISSUER, tier="B", benefits=[], not_before=NOW).qr_payload
    png = decode_one(Image.open(io.BytesIO(qr.render_png(payload))))
    svg = decode_one(rasterise_svg(ET.fromstring(qr.render_svg(payload))))  # noqa: S314
    assert png.text == svg.text == payload
    assert extra(png)["Version"] == extra(svg)["Version"]
