"""The Swagger UI at ``/docs``, served from the pinned ``swagger-ui-bundle`` package.

Not from a CDN: a government network often has no internet access, and a page that loads
its scripts from another host runs whatever that host serves today. The package fixes the
Swagger UI version (``swagger-ui-bundle`` 1.1 ships Swagger UI 4.15.5), so its files may be
cached for a day.
"""

from __future__ import annotations

from typing import Final

from flask import Blueprint, Flask
from swagger_ui_bundle import swagger_ui_path

ASSETS_PATH: Final = "/docs/assets"
ASSETS_MAX_AGE_SECONDS: Final = 24 * 3600
# flask-smorest's page: the files come from here, and the UI asks no validator on the
# internet to check the document (Swagger UI would otherwise show a badge from one).
SETTINGS: Final = {
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": ASSETS_PATH + "/",
    "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
}
# Scripts, styles and images from this origin only; the page's one inline script starts it.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'")


class _Assets(Blueprint):
    def get_send_file_max_age(self, filename: str | None) -> int | None:
        return ASSETS_MAX_AGE_SECONDS


def install(app: Flask) -> None:
    """Serve the Swagger UI's files under ``/docs/assets/``; ``SETTINGS`` must be in the app's
    config before flask-smorest's ``Api`` is created."""
    app.register_blueprint(_Assets("swagger_ui", __name__, static_folder=str(swagger_ui_path),
                                   static_url_path=ASSETS_PATH))
