from __future__ import annotations

from typing import Any

from flask import Response, request, url_for
from flask_smorest import Blueprint

from xinyi import jwk
from xinyi.credentials import offline, service, verification
from xinyi.credentials.schemas import (
    ConfigurationOut,
    CredentialsOut,
    IdempotencyHeaders,
    IssueIn,
    JwksOut,
    OfflineUploadIn,
    OfflineUploadOut,
    VerificationOut,
    VerifyIn,
)
from xinyi.credentials.tokens import IssuedCredential, VerifierConfiguration
from xinyi.signing import service as signing
from xinyi.web import db, deps, principal, public, requires

me_blp = Blueprint("credentials", __name__, url_prefix="/v1/me/credentials",
                   description="The citizen's QR credentials (诚信卡)")
partner_blp = Blueprint("verifications", __name__, url_prefix="/v1/partner",
                        description="Partners verify credentials")
jwks_blp = Blueprint("jwks", __name__,
                     description="Public keys and configuration for offline verification")


@me_blp.route("", methods=["POST"])
@requires("citizen")
@me_blp.arguments(IssueIn, required=False)  # no body: {"count": 1}
@me_blp.response(201, CredentialsOut)
def issue(body: dict[str, Any]) -> dict[str, list[IssuedCredential]]:
    """Issue 1-15 credentials with consecutive 2-minute windows."""
    return {"items": service.issue(db(), deps(), principal().id, body["count"])}


@me_blp.route("/<string:credential_id>/qr.png", methods=["GET"])
@requires("citizen")
@me_blp.response(200, content_type="image/png")
def qr_png(credential_id: str) -> Response:
    """The credential as a PNG QR code (error correction M, version ≤ 15)."""
    png = service.render(db(), deps(), principal().id, credential_id, "png")
    return Response(png, mimetype="image/png")


@me_blp.route("/<string:credential_id>/qr.svg", methods=["GET"])
@requires("citizen")
@me_blp.response(200, content_type="image/svg+xml")
def qr_svg(credential_id: str) -> Response:
    """The credential as an SVG QR code."""
    svg = service.render(db(), deps(), principal().id, credential_id, "svg")
    return Response(svg, mimetype="image/svg+xml")


@partner_blp.route("/verifications", methods=["POST"])
@requires("partner")
@partner_blp.arguments(IdempotencyHeaders, location="headers")
@partner_blp.arguments(VerifyIn)
@partner_blp.response(200, VerificationOut)
def verify(headers: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Verify a credential for a benefit, once; a retry with the same Idempotency-Key gets
    the same answer (if the first request is still in flight, the retry waits up to 2 s for
    it, then gets 409 `verification_in_progress` with Retry-After)."""
    return verification.verify(db(), deps(), principal(), credential=body["credential"],
                               benefit=body["benefit"],
                               idempotency_key=headers.get("idempotency_key"))


@partner_blp.route("/verifications:offline", methods=["POST"])
@requires("partner")
@partner_blp.arguments(OfflineUploadIn)
@partner_blp.response(200, OfflineUploadOut)
def upload_offline(body: dict[str, Any]) -> dict[str, Any]:
    """Register what your devices verified offline: up to 500 items a call, each answered on
    its own (`recorded`, `duplicate`, `double_presentation`, `unattributable`, `invalid`).
    Idempotent per credential and partner: send a batch again after a timeout or a 5xx."""
    return {"items": offline.upload(db(), deps(), principal(), body["items"])}


@jwks_blp.route("/.well-known/jwks.json", methods=["GET"])
@public
@jwks_blp.response(200, JwksOut)
def jwks() -> tuple[dict[str, list[dict[str, str]]], dict[str, str]]:
    """Credential public keys (RFC 7517), retired keys included until their credentials expire."""
    # Offline verifiers and proxies may keep the key set for five minutes.
    return jwk.jwks(signing.public_jwks(db(), deps().clock(),
                                       retired_grace=service.RETIRED_KEY_GRACE)), {
        "Cache-Control": "public, max-age=300"}


@jwks_blp.route("/.well-known/xinyi-configuration", methods=["GET"])
@public
@jwks_blp.response(200, ConfigurationOut)
def configuration() -> tuple[VerifierConfiguration, dict[str, str]]:
    """What an offline verifier needs: the credentials' issuer (`iss`), the absolute URL of
    their keys, their algorithm and prefix. The partner SDK starts from this document."""
    settings = deps().settings
    base = settings.public_url or request.host_url
    jwks_uri = base.rstrip("/") + url_for("jwks.jwks")
    # Changes only with a redeployment: caches may keep it for an hour.
    return VerifierConfiguration(issuer=settings.credential_issuer, jwks_uri=jwks_uri), {
        "Cache-Control": "public, max-age=3600"}
