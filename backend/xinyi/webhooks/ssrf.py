"""The SSRF guard for webhook URLs: a partner's URL must never make us call into our own
network (loopback, private, link-local, CGNAT, multicast, reserved ranges, v4 and v6).

Two checks, one parser:

* :func:`check_url` at registration: the URL's shape (scheme, no userinfo, a host, a sane
  port) and every address its host stands for, whether written as a literal in any form the
  resolver accepts (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``, ``[::ffff:7f00:1]``)
  or as a name that resolves to one. A name that does not resolve yet is accepted: DNS may be
  set up after the endpoint, and the send-time check decides.
* :func:`resolve_checked` at send time: resolve once, refuse if any answer is refused, and
  return the addresses to connect to. The sender connects to one of those, never to the name
  again, so an answer that changes between the check and the connection (DNS rebinding) is
  never used.

``allow_private`` (``XINYI_WEBHOOK_ALLOW_PRIVATE=1``: tests and the local demo) lifts the
address rules only; the URL's shape is always checked. Messages name the rule, never the URL
(it may carry a token in its query).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from xinyi.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# IANA special-purpose IPv4 ranges that are not globally reachable, with the rule's name.
_REFUSED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "an unspecified ('this network') address"),
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("100.64.0.0/10"), "a shared (CGNAT) address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("169.254.0.0/16"), "a link-local address"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.0.0.0/24"), "an IETF protocol address"),
    (_V4("192.0.2.0/24"), "a documentation address"),
    (_V4("192.88.99.0/24"), "a reserved (6to4 relay) address"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V4("198.18.0.0/15"), "a benchmarking address"),
    (_V4("198.51.100.0/24"), "a documentation address"),
    (_V4("203.0.113.0/24"), "a documentation address"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("240.0.0.0/4"), "a reserved address"),
)

_REFUSED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "an unspecified address"),
    (_V6("::1/128"), "a loopback address"),
    (_V6("::/96"), "a reserved (IPv4-compatible) address"),
    (_V6("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (_V6("100::/64"), "a discard-only address"),
    (_V6("2001::/23"), "an IETF protocol address"),
    (_V6("2001:db8::/32"), "a documentation address"),
    (_V6("3fff::/20"), "a documentation address"),
    (_V6("5f00::/16"), "a reserved (SRv6) address"),
    (_V6("fc00::/7"), "a private (unique local) address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("fec0::/10"), "a site-local address"),
    (_V6("ff00::/8"), "a multicast address"),
)
_GLOBAL_UNICAST_V6 = _V6("2000::/3")
_NAT64 = _V6("64:ff9b::/96")

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]*|[0-9]+)")
_DEFAULT_PORTS = {"https": 443, "http": 80}


class UnsafeUrl(ValidationFailed):
    """A webhook URL we will not call. The detail names the rule that refused it."""

    code = "webhook_url_refused"
    title = "The webhook URL is refused"

    def __init__(self, rule: str, *, field: str = "url") -> None:
        self.rule = rule
        super().__init__(
            f"The webhook URL is refused: {rule}",
            errors=[{"field": field, "location": "json", "messages": [rule]}],
        )


class UnresolvableHost(UnsafeUrl):
    """At send time: the host name has no address (DNS failure). A transient condition for
    the sender (retried on the schedule), not an attack."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL, split for the sender: it connects to an address of ``host`` and sends
    ``Host: host_header`` and ``target`` (path and query) on the request line."""

    scheme: str
    host: str  # lower-case, IDNA-encoded name, or an address's canonical text
    port: int
    target: str
    literal: IPAddress | None  # the host written as an address, in any form

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def refusal(address: IPAddress) -> str | None:
    """The rule that refuses ``address``, or None for a globally reachable unicast one.
    Addresses that embed an IPv4 address (IPv4-mapped, NAT64, 6to4) are judged by it."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None:
            return refusal(embedded)
        for net6, rule in _REFUSED_V6:
            if address in net6:
                return rule
        if address not in _GLOBAL_UNICAST_V6:
            return "a reserved address"
        return None
    for net4, rule in _REFUSED_V4:
        if address in net4:
            return rule
    return None


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return None


def _ipv4_number(part: str) -> int | None:
    """One dotted part as inet_aton reads it: ``0x`` hex, a leading ``0`` octal, else
    decimal."""
    if part[:2] in ("0x", "0X"):
        digits, base = part[2:] or "0", 16
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    try:
        return int(digits, base)
    except ValueError:
        return None


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``host`` as an IPv4 address in every form a resolver or browser accepts (1 to 4
    parts, each decimal, octal or hex; the last part fills the remaining bytes), or None if
    it is not one."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4 or not all(_NUMBER.fullmatch(p) for p in parts):
        return None
    numbers = [_ipv4_number(p) for p in parts]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    *head, last = values
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(values)):
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _ends_in_a_number(host: str) -> bool:
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    return bool(_NUMBER.fullmatch(labels[-1]))


def parse_url(url: str, *, require_https: bool) -> Target:
    """Check the URL's shape and split it. Raises :class:`UnsafeUrl` naming the rule."""
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        raise UnsafeUrl("the URL holds whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("the URL cannot be parsed (host or port is malformed)") from None
    scheme = parts.scheme.lower()
    allowed = ("https",) if require_https else ("https", "http")
    if scheme not in allowed:
        raise UnsafeUrl("the scheme must be https" if require_https
                        else "the scheme must be http or https")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise UnsafeUrl("the URL must not hold a user name or password")
    if parts.fragment or url.endswith("#"):
        raise UnsafeUrl("the URL must not hold a fragment")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise UnsafeUrl("the URL has no host")
    if port is not None and not 1 <= port <= 65535:
        raise UnsafeUrl("the port must be between 1 and 65535")
    port = port if port is not None else _DEFAULT_PORTS[scheme]
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    host, literal = _host(raw_host, bracketed="[" in parts.netloc)
    return Target(scheme, host, port, target, literal)


def _host(raw: str, *, bracketed: bool) -> tuple[str, IPAddress | None]:
    if bracketed or ":" in raw:
        if "%" in raw:
            raise UnsafeUrl("an IPv6 address must not carry a zone (scope) identifier")
        try:
            v6 = ipaddress.IPv6Address(raw)
        except ValueError:
            raise UnsafeUrl("the host is not a valid IPv6 address") from None
        return v6.compressed, v6
    try:
        name = raw.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UnsafeUrl("the host is not a valid domain name") from None
    if _ends_in_a_number(name):
        v4 = parse_ipv4(name)
        if v4 is None:
            raise UnsafeUrl("the host is not a valid IPv4 address")
        return str(v4), v4
    labels = name.removesuffix(".").split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise UnsafeUrl("the host is not a valid domain name")
    return name.removesuffix("."), None


def _check_address(address: IPAddress) -> None:
    rule = refusal(address)
    if rule is not None:
        raise UnsafeUrl(f"the host is or resolves to {rule}")


def _is_localhost(name: str) -> bool:
    # RFC 6761: these names are loopback whatever a resolver says.
    return name == "localhost" or name.endswith(".localhost")


def check_url(url: str, *, allow_private: bool, require_https: bool) -> None:
    """Registration-time check of a webhook URL. Raises :class:`UnsafeUrl` (422
    ``webhook_url_refused``) naming the rule."""
    target = parse_url(url, require_https=require_https)
    if allow_private:
        return
    if target.literal is not None:
        _check_address(target.literal)
        return
    if _is_localhost(target.host):
        raise UnsafeUrl("the host is or resolves to a loopback address")
    try:
        addresses = _resolve(target.host, target.port)
    except UnresolvableHost:
        return  # decided at send time
    for address in addresses:
        _check_address(address)


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnresolvableHost("the host name does not resolve") from None
    seen: dict[IPAddress, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        text = str(sockaddr[0]).partition("%")[0]
        try:
            seen.setdefault(ipaddress.ip_address(text), None)
        except ValueError:
            continue
    if not seen:
        raise UnresolvableHost("the host name does not resolve")
    return list(seen)


def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[IPAddress]:
    """Send-time resolution: the addresses to connect to, in the resolver's order. Refuses
    (:class:`UnsafeUrl`) if any answer is a refused address, so a name that mixes public and
    private answers is never called; :class:`UnresolvableHost` when nothing resolves."""
    literal: IPAddress | None = parse_ipv4(host) if _ends_in_a_number(host) else None
    if literal is None and ":" in host:
        try:
            literal = ipaddress.IPv6Address(host.strip("[]"))
        except ValueError:
            raise UnsafeUrl("the host is not a valid IPv6 address") from None
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    elif not allow_private and _is_localhost(host):
        raise UnsafeUrl("the host is or resolves to a loopback address")
    else:
        addresses = _resolve(host, port)
    if not allow_private:
        for address in addresses:
            _check_address(address)
    return addresses
