"""Discovery (exact issuer) and the JWKS cache (rotation, kid floods, bad keys)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from joserfc.jwk import RSAKey

from hubgate.sso.oidc import errors
from hubgate.sso.oidc.discovery import parse_discovery
from hubgate.sso.oidc.jwks import JwksCache, parse_jwks

ISSUER = "https://idp.acme.example"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def discovery(**changes: object) -> bytes:
    document = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
        "userinfo_endpoint": f"{ISSUER}/userinfo",
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
    }
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


def test_discovery_is_read() -> None:
    found = parse_discovery(discovery(), ISSUER)
    assert found.token_endpoint == f"{ISSUER}/token" and found.iss_parameter_supported


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (discovery(issuer=f"{ISSUER}/"), errors.IssuerMismatch),
        (discovery(issuer="https://evil.example"), errors.IssuerMismatch),
        (discovery(code_challenge_methods_supported=["plain"]), errors.DiscoveryInvalid),
        (discovery(token_endpoint="javascript:alert(1)"), errors.DiscoveryInvalid),
        (discovery(jwks_uri=None), errors.DiscoveryInvalid),
        (b"[1, 2]", errors.DiscoveryInvalid),
        (b"\xff", errors.DiscoveryInvalid),
        (b"[" * 10_000 + b"]" * 10_000, errors.DiscoveryInvalid),
        (
            discovery(
                extra={"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
            ),
            errors.DiscoveryInvalid,
        ),
        (discovery(padding="x" * 1024 * 1024), errors.DiscoveryInvalid),
    ],
)
def test_bad_discovery_is_refused(document: bytes, error: type[errors.OidcError]) -> None:
    with pytest.raises(error):
        parse_discovery(document, ISSUER)


def jwks(*keys: RSAKey, extra: list[object] | None = None) -> bytes:
    return json.dumps({"keys": [k.as_dict(private=False) for k in keys] + (extra or [])}).encode()


class Provider:
    def __init__(self, document: bytes) -> None:
        self.document = document
        self.fetches = 0

    def fetch(self, _uri: str) -> bytes:
        self.fetches += 1
        return self.document


def test_bad_keys_are_skipped_and_private_parts_dropped() -> None:
    good = RSAKey.generate_key(2048, parameters={"kid": "good"})
    junk = [{"kty": "RSA", "kid": "broken", "n": "x", "e": "y"}, {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "RSA", "use": "enc", "kid": "enc"}, "not a key"]  # fmt: skip
    keys = parse_jwks(jwks(extra=[good.as_dict(private=True), *junk]))
    assert [k.kid for k in keys.keys] == ["good"]
    assert not keys.keys[0].is_private


def test_a_flood_of_unknown_kids_costs_one_fetch_per_cooldown() -> None:
    provider = Provider(jwks(RSAKey.generate_key(2048, parameters={"kid": "a"})))
    cache = JwksCache(provider.fetch, cooldown=timedelta(seconds=60))
    cache.keys_for("u", "a", NOW)
    for n in range(1000):
        cache.keys_for("u", f"random-{n}", NOW + timedelta(seconds=1))
    assert provider.fetches == 2, "a flood of unknown kids costs one refetch"
    for n in range(1000):
        cache.keys_for("u", f"random-{n}", NOW + timedelta(seconds=30))
    assert provider.fetches == 2, "and nothing more within the cooldown"
    for n in range(1000):
        cache.keys_for("u", f"random-{n}", NOW + timedelta(seconds=62))
    assert provider.fetches == 3, "after it, again exactly one"


def test_rotation_between_two_sign_ins_just_works() -> None:
    old, new = (RSAKey.generate_key(2048, parameters={"kid": k}) for k in ("old", "new"))
    provider = Provider(jwks(old))
    cache = JwksCache(provider.fetch, cooldown=timedelta(seconds=10))
    assert [k.kid for k in cache.keys_for("u", "old", NOW).keys] == ["old"]
    provider.document = jwks(new)
    assert [k.kid for k in cache.keys_for("u", "new", NOW + timedelta(seconds=1)).keys] == ["new"]
    stale = cache.keys_for("u", None, NOW + timedelta(hours=2))
    assert [k.kid for k in stale.keys] == ["new"] and provider.fetches == 3


@pytest.mark.parametrize(
    "document",
    [
        b'{"keys": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        json.dumps(
            {
                "keys": [
                    {
                        "kty": "RSA",
                        "x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
                    }
                ]
            }
        ).encode(),
        json.dumps({"keys": [], "padding": "x" * 1024 * 1024}).encode(),
    ],
    ids=["10000-deep", "33-deep", "over-1-MiB"],
)
def test_a_nested_or_oversized_key_set_is_refused(document: bytes) -> None:
    with pytest.raises(errors.KeyNotFound, match="refused"):
        parse_jwks(document)
