"""discover and OfflineVerifier against a stand-in deployment on a local port."""

from __future__ import annotations

from pathlib import Path

import pytest
from _stub import deployment
from _support import ISSUER, NOW, Signer
from xinyi_partner import CredentialError, DiscoveryError, OfflineVerifier, discover

JWKS = "/.well-known/jwks.json"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_discover_reads_the_issuer_and_the_keys_url(signer: Signer) -> None:
    with deployment(signer) as server:
        configuration = discover(server.url + "/")
    assert configuration.issuer == ISSUER
    assert configuration.jwks_uri == server.url + JWKS
    assert configuration.credential_algorithms == ("EdDSA",)
    assert configuration.credential_prefix == "XY1:"


@pytest.mark.parametrize(("change", "message"), [
    ({"credential_prefix": "XY2:"}, "do not start with 'XY1:'"),
    ({"credential_algorithms": ["RS256"]}, "not signed with EdDSA"),
    ({"issuer": ""}, "must be strings"),
    ({"jwks_uri": "file:///etc/passwd"}, r"not an http\(s\) URL"),
])
def test_discover_refuses_credentials_it_cannot_verify(signer: Signer, change: dict[str, object],
                                                       message: str) -> None:
    with deployment(signer) as server:
        good = server.document("/.well-known/xinyi-configuration")
        assert good is not None
        server.configuration = {**good, **change}
        with pytest.raises(DiscoveryError, match=message):
            discover(server.url)


def test_discover_says_which_url_failed(signer: Signer) -> None:
    with deployment(signer) as server:
        server.down = True
        with pytest.raises(DiscoveryError, match=r"xinyi-configuration failed"):
            discover(server.url)


def test_the_verifier_uses_the_published_issuer_and_keys(signer: Signer) -> None:
    with deployment(signer) as server:
        verifier = OfflineVerifier.from_configuration(server.url)
        credential = verifier.verify(signer.token(), now=NOW)
    assert credential.issuer == ISSUER and verifier.issuer == ISSUER


def test_a_deployment_with_another_issuer_is_refused_for_the_issuer(signer: Signer) -> None:
    with deployment(signer) as server:
        server.issuer = "xy"
        verifier = OfflineVerifier.from_configuration(server.url)
        with pytest.raises(CredentialError) as refused:
            verifier.verify(signer.token(), now=NOW)
    assert (refused.value.code, refused.value.reason) == ("credential_invalid", "issuer")


def test_a_credential_verifies_once(signer: Signer) -> None:
    with deployment(signer) as server:
        verifier = OfflineVerifier.from_configuration(server.url)
        payload = signer.token()
        verifier.verify(payload, now=NOW)
        with pytest.raises(CredentialError) as refused:
            verifier.verify(payload, now=NOW)
    assert refused.value.reason == "replay"


def test_keys_are_refetched_when_their_max_age_has_passed(signer: Signer) -> None:
    clock = Clock()
    with deployment(signer) as server:
        server.cache_control = "public, max-age=120"
        verifier = OfflineVerifier.from_configuration(server.url, clock=clock)
        for _ in range(3):
            verifier.verify(signer.token(), now=NOW)
        assert server.hits[JWKS] == 1
        clock.now += 121
        verifier.verify(signer.token(), now=NOW)
        assert server.hits[JWKS] == 2


def test_a_new_key_is_fetched_once_when_a_credential_names_it(signer: Signer) -> None:
    clock = Clock()
    rotated = Signer()
    with deployment(signer) as server:
        verifier = OfflineVerifier.from_configuration(server.url, clock=clock)
        server.signers.append(rotated)
        clock.now += 31  # at most one refetch per min_refresh_seconds (30)
        assert verifier.verify(rotated.token(), now=NOW).kid == rotated.kid
        assert server.hits[JWKS] == 2
        stranger = Signer()
        clock.now += 31
        for _ in range(3):  # an unknown kid cannot make the verifier hammer the server
            with pytest.raises(CredentialError) as refused:
                verifier.verify(stranger.token(), now=NOW)
            assert refused.value.reason == "unknown_key"
        assert server.hits[JWKS] == 3


def test_offline_the_last_keys_serve_until_they_are_too_old(signer: Signer) -> None:
    clock = Clock()
    with deployment(signer) as server:
        verifier = OfflineVerifier.from_configuration(server.url, clock=clock,
                                                      max_key_age_seconds=3600)
        server.down = True
        clock.now += 3000
        assert verifier.verify(signer.token(), now=NOW).issuer == ISSUER
        clock.now += 601
        with pytest.raises(CredentialError) as refused:
            verifier.verify(signer.token(), now=NOW)
        assert (refused.value.code, refused.value.reason) == ("stale_keys", "stale_keys")
        server.down = False
        clock.now += 61  # the next attempt after a failed one
        assert verifier.verify(signer.token(), now=NOW).issuer == ISSUER
        assert verifier.keys_age_seconds == 0


def test_a_restart_without_network_starts_from_the_cache_file(signer: Signer,
                                                              tmp_path: Path) -> None:
    clock, cache = Clock(), tmp_path / "xinyi-jwks.json"
    with deployment(signer) as server:
        OfflineVerifier.from_configuration(server.url, cache_path=cache, clock=clock)
        server.down = True
        with pytest.raises(DiscoveryError):
            OfflineVerifier.from_configuration(server.url, clock=clock)  # no cache: no keys
        clock.now += 600
        restarted = OfflineVerifier.from_configuration(server.url, cache_path=cache,
                                                       clock=clock, max_key_age_seconds=900)
        assert restarted.issuer == ISSUER and restarted.keys_age_seconds == 600
        assert restarted.verify(signer.token(), now=NOW).kid == signer.kid
        clock.now += 301
        with pytest.raises(CredentialError) as refused:
            restarted.verify(signer.token(), now=NOW)
        assert refused.value.reason == "stale_keys"


def test_an_unreadable_cache_file_is_no_cache(signer: Signer, tmp_path: Path) -> None:
    cache = tmp_path / "xinyi-jwks.json"
    cache.write_text("{not json")
    with deployment(signer) as server:
        verifier = OfflineVerifier.from_configuration(server.url, cache_path=cache)
        assert verifier.verify(signer.token(), now=NOW).kid == signer.kid
        server.down = True
        cache.write_text('{"jwks": {"keys": "not a list"}}')
        with pytest.raises(DiscoveryError):
            OfflineVerifier.from_configuration(server.url, cache_path=cache)
