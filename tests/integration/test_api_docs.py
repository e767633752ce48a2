"""/docs works on a network without internet: the Swagger UI comes from the app itself."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from tests.factories import make_settings
from xinyi.app import create_app

_ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.fixture(scope="module")
def docs_app() -> Flask:
    return create_app(make_settings("sqlite://", None))


def test_the_docs_page_references_no_other_host(docs_app: Flask) -> None:
    page = docs_app.test_client().get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assets = _ASSET.findall(html)
    assert {a.rsplit(".", 1)[-1] for a in assets} == {"css", "js"}
    assert all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    assert "://" not in html and "//cdn" not in html
    policy = page.headers["Content-Security-Policy"]
    assert "https:" not in policy and "http:" not in policy
    assert "default-src 'self'" in policy


def test_every_asset_of_the_docs_page_is_served_by_the_app(docs_app: Flask) -> None:
    client = docs_app.test_client()
    assets = _ASSET.findall(client.get("/docs").get_data(as_text=True))
    assert len(assets) == 3  # the stylesheet, the standalone preset and the bundle
    for url in assets:
        resp = client.get(url)
        assert resp.status_code == 200, url
        assert resp.mimetype in ("text/css", "text/javascript", "application/javascript"), url
        assert len(resp.get_data()) > 1000, url
        assert "max-age=86400" in resp.headers["Cache-Control"], url
        resp.close()


def test_a_file_outside_the_assets_is_not_served(docs_app: Flask) -> None:
    client = docs_app.test_client()
    for url in ("/docs/assets/../__init__.py", "/docs/assets/%2e%2e/__init__.py",
                "/docs/assets/nothing.js"):
        assert client.get(url).status_code == 404, url
