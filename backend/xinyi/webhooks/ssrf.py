"""Endpoint URL guard (SSRF).

PLACEHOLDER with the agreed signature: the full guard (every private, loopback, link-local,
CGNAT, multicast and reserved form, v4 and v6, names resolved and checked, the checked
address used for the connection) comes from the delivery side and replaces this file. This
one checks the scheme, the host's presence and literal addresses only.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from xinyi.errors import ValidationFailed


class UnsafeUrl(ValidationFailed):
    code = "webhook_url_refused"
    title = "This URL cannot receive webhooks"


def _refuse(message: str) -> UnsafeUrl:
    return UnsafeUrl.at("url", message, detail=f"url: {message}")


def check_url(url: str, *, allow_private: bool, require_https: bool) -> None:
    """Refuse a URL webhooks must not be sent to (raises :class:`UnsafeUrl`)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise _refuse("is not a valid URL") from None
    schemes = ("https",) if require_https else ("http", "https")
    if parts.scheme not in schemes:
        raise _refuse(f"must be an {' or '.join(schemes)} URL")
    if not parts.hostname:
        raise _refuse("must name a host")
    if parts.username or parts.password:
        raise _refuse("must not carry a user or password")
    if parts.fragment:
        raise _refuse("must not have a fragment")
    if allow_private:
        return
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        raise _refuse("must not point to this machine or a private network")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if not address.is_global:
        raise _refuse("must not point to this machine or a private network")
