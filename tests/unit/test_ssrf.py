"""The SSRF guard for webhook URLs: every form of a refused address, names that resolve to
one, and the URL's shape."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from xinyi.webhooks import ssrf
from xinyi.webhooks.ssrf import UnresolvableHost, UnsafeUrl, check_url, parse_ipv4, resolve_checked

# Each host is refused as a literal; the second item is a word the rule's message holds.
REFUSED_HOSTS = [
    ("127.0.0.1", "loopback"),
    ("127.1", "loopback"),  # short form
    ("127.0.1", "loopback"),
    ("2130706433", "loopback"),  # decimal
    ("0x7f000001", "loopback"),  # one hex number
    ("0x7f.1", "loopback"),  # hex short form
    ("0177.0.0.1", "loopback"),  # octal
    ("0177.0.0.01", "loopback"),
    ("017700000001", "loopback"),  # one octal number
    ("127.0.0.1.", "loopback"),  # trailing dot
    ("0x7F.0X0.0.1", "loopback"),  # mixed case hex
    ("[::1]", "loopback"),
    ("[0:0:0:0:0:0:0:1]", "loopback"),
    ("[::ffff:127.0.0.1]", "loopback"),  # IPv4-mapped IPv6
    ("[::ffff:7f00:1]", "loopback"),  # IPv4-mapped, hex
    ("[64:ff9b::7f00:1]", "loopback"),  # NAT64 of 127.0.0.1
    ("[2002:7f00:1::]", "loopback"),  # 6to4 of 127.0.0.1
    ("10.0.0.1", "private"),
    ("10.1", "private"),
    ("172.16.5.4", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("0xc0.0xa8.1.1", "private"),
    ("3232235777", "private"),  # 192.168.1.1 in decimal
    ("[::ffff:192.168.0.1]", "private"),
    ("[::ffff:10.0.0.1]", "private"),
    ("[fc00::1]", "private"),
    ("[fd12:3456:789a::1]", "private"),
    ("169.254.169.254", "link-local"),  # cloud metadata
    ("0xa9.0xfe.0xa9.0xfe", "link-local"),
    ("[fe80::1]", "link-local"),
    ("[::ffff:169.254.169.254]", "link-local"),
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.254", "CGNAT"),
    ("0.0.0.0", "unspecified"),  # noqa: S104
    ("0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("[::]", "unspecified"),
    ("192.0.0.8", "IETF"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.1", "benchmarking"),
    ("192.0.2.1", "documentation"),
    ("[2001:db8::1]", "documentation"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("[ff02::1]", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("[::127.0.0.1]", "IPv4-compatible"),
    ("[fec0::1]", "site-local"),
    ("[100::1]", "discard"),
    ("[4000::1]", "reserved"),  # outside global unicast
]


@pytest.mark.parametrize(("host", "word"), REFUSED_HOSTS)
def test_refused_address_forms(host: str, word: str) -> None:
    with pytest.raises(UnsafeUrl) as caught:
        check_url(f"https://{host}/hook", allow_private=False, require_https=True)
    assert caught.value.code == "webhook_url_refused"
    assert caught.value.status == 422
    assert word in caught.value.detail
    assert host not in caught.value.detail  # the rule, never the URL


def test_the_table_is_large_enough() -> None:
    assert len(REFUSED_HOSTS) >= 25


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_allow_private_lifts_the_address_rules(host: tuple[str, str]) -> None:
    check_url(f"https://{host[0]}/hook", allow_private=True, require_https=True)


@pytest.mark.parametrize("host", ["8.8.8.8", "1.1.1.1", "[2606:4700:4700::1111]",
                                  "[::ffff:8.8.8.8]", "134744072", "0x8.0x8.0x8.0x8",
                                  "100.128.0.1", "172.32.0.1", "192.169.0.1"])
def test_public_addresses_are_accepted(host: str) -> None:
    check_url(f"https://{host}/hook", allow_private=False, require_https=True)


@pytest.mark.parametrize(("text", "expected"), [
    ("127.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("2130706433", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"), ("1.2.3", "1.2.0.3"), ("1.0x10000", "1.1.0.0"),
    ("0x", "0.0.0.0"),  # noqa: S104
    ("1.2.3.256", None), ("4294967296", None), ("1.2.3.4.5", None),
    ("08.1.1.1", None), ("example.com", None), ("1.2.3.0x", "1.2.3.0"),
])
def test_ipv4_parsing_follows_the_resolver(text: str, expected: str | None) -> None:
    parsed = parse_ipv4(text)
    assert (str(parsed) if parsed else None) == expected


@pytest.mark.parametrize(("url", "word"), [
    ("http://example.com/hook", "https"),
    ("ftp://example.com/hook", "https"),
    ("file:///etc/passwd", "https"),
    ("gopher://example.com/", "https"),
    ("https://user:pw@example.com/hook", "user name"),
    ("https://user@example.com/hook", "user name"),
    ("https://example.com\\@127.0.0.1/", "backslash"),
    ("https:///hook", "no host"),
    ("https://example.com:0/", "port"),
    ("https://example.com:99999/", "malformed"),
    ("https://example.com:abc/", "malformed"),
    ("https://example.com/hook#frag", "fragment"),
    ("https://exa mple.com/", "whitespace"),
    ("https://1.2.3.256/", "IPv4"),
    ("https://example.123/", "IPv4"),
    ("https://[::1%25eth0]/", "zone"),
    ("https://[fe80::1%eth0]/", "zone"),
    ("https://[not-v6]/", "malformed"),
    ("https://-bad-.example.com/", "domain"),
    ("https://localhost/hook", "loopback"),
    ("https://api.localhost/hook", "loopback"),
    ("https://LOCALHOST./hook", "loopback"),
])
def test_malformed_or_refused_urls(url: str, word: str) -> None:
    with pytest.raises(UnsafeUrl) as caught:
        check_url(url, allow_private=False, require_https=True)
    assert word in caught.value.detail


def test_http_is_accepted_outside_production() -> None:
    check_url("http://8.8.8.8/hook", allow_private=False, require_https=False)
    with pytest.raises(UnsafeUrl, match="http or https"):
        check_url("ftp://8.8.8.8/hook", allow_private=False, require_https=False)


def test_allow_private_still_checks_the_shape() -> None:
    with pytest.raises(UnsafeUrl, match="user name"):
        check_url("https://u:p@127.0.0.1/", allow_private=True, require_https=True)
    with pytest.raises(UnsafeUrl, match="https"):
        check_url("http://127.0.0.1/", allow_private=True, require_https=True)


def _fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        out = []
        for addr in answers[host]:
            fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
            sockaddr = (addr, port, 0, 0) if fam == socket.AF_INET6 else (addr, port)
            out.append((fam, socket.SOCK_STREAM, 6, "", sockaddr))
        return out

    monkeypatch.setattr(ssrf.socket, "getaddrinfo", getaddrinfo)


def test_a_name_resolving_to_a_refused_address_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                          ) -> None:
    _fake_dns(monkeypatch, {"evil.example": ["93.184.216.34", "127.0.0.1"],
                            "meta.example": ["fe80::1%2"],
                            "good.example": ["93.184.216.34", "2606:2800:220:1::1"]})
    with pytest.raises(UnsafeUrl, match="loopback"):
        check_url("https://evil.example/h", allow_private=False, require_https=True)
    with pytest.raises(UnsafeUrl, match="link-local"):
        check_url("https://meta.example/h", allow_private=False, require_https=True)
    check_url("https://good.example/h", allow_private=False, require_https=True)
    check_url("https://evil.example/h", allow_private=True, require_https=True)
    # Unresolvable at registration: accepted, decided when sending.
    check_url("https://later.example/h", allow_private=False, require_https=True)


def test_resolve_checked_returns_the_checked_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dns(monkeypatch, {"good.example": ["93.184.216.34", "93.184.216.34",
                                             "2606:2800:220:1::1"],
                            "evil.example": ["127.0.0.1"]})
    assert resolve_checked("good.example", 443, allow_private=False) == [
        ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("2606:2800:220:1::1")]
    with pytest.raises(UnsafeUrl, match="loopback") as caught:
        resolve_checked("evil.example", 443, allow_private=False)
    assert not isinstance(caught.value, UnresolvableHost)
    assert resolve_checked("evil.example", 443, allow_private=True) == [
        ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(UnresolvableHost):
        resolve_checked("nowhere.example", 443, allow_private=False)
    with pytest.raises(UnsafeUrl, match="loopback"):
        resolve_checked("localhost", 443, allow_private=False)
    with pytest.raises(UnsafeUrl, match="loopback"):
        resolve_checked("0x7f.1", 443, allow_private=False)


def test_parse_url_splits_for_the_sender() -> None:
    t = ssrf.parse_url("https://Example.COM:8443/a/b?x=1", require_https=True)
    assert (t.scheme, t.host, t.port, t.target, t.literal) == (
        "https", "example.com", 8443, "/a/b?x=1", None)
    assert t.host_header == "example.com:8443"
    t = ssrf.parse_url("http://[::1]/", require_https=False)
    assert (t.host, t.port, t.host_header) == ("::1", 80, "[::1]")
    t = ssrf.parse_url("https://bücher.example/", require_https=True)
    assert t.host == "xn--bcher-kva.example"
