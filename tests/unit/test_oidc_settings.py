"""hubgate.sso.oidc.settings and client_keys, without a server: what an admin may
set on an OIDC connection, and the key a private_key_jwt client publishes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from hubgate.sso.oidc.client_keys import public_jwks, signing_key
from hubgate.sso.oidc.config import OidcConfig, TokenAuth
from hubgate.sso.oidc.discovery import ProviderMetadata
from hubgate.sso.oidc.errors import SettingInvalid
from hubgate.sso.oidc.flow import token_request
from hubgate.sso.oidc.settings import checked_changes, checked_issuer
from hubgate.sso.saml.keys import new_key_pair

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PROVIDER = ProviderMetadata(
    "https://idp.example", "https://idp.example/authorize", "https://idp.example/token",
    "https://idp.example/jwks", None, True,
)  # fmt: skip


def test_accepted_values_come_back_normalized() -> None:
    checked = checked_changes(
        {"algorithms": ["RS256", "ES256", "RS256"], "token_auth": TokenAuth.PRIVATE_KEY_JWT,
         "scopes": ["openid", "https://graph.example/User.Read"], "groups_claim": "wids"}
    )  # fmt: skip
    assert checked == {
        "algorithms": ["ES256", "RS256"], "token_auth": "private_key_jwt",
        "scopes": ["openid", "https://graph.example/User.Read"], "groups_claim": "wids",
    }  # fmt: skip


@pytest.mark.parametrize(
    "changes",
    [
        {"algorithms": ["none"]},
        {"algorithms": ["HS256"]},
        {"algorithms": [None]},
        {"scopes": ["profile"]},
        {"scopes": ["openid", "a\\b"]},
        {"scopes": ["openid", "é"]},
        {"token_auth": ["client_secret_basic"]},
        {"email_claim": "e mail"},
        {"client_secret": "tab\t"},
        {"clock_skew_seconds": 30},
        {"scopes": ["openid"], "name_claim": 7},
    ],
)
def test_refused_values(changes: dict[str, Any]) -> None:
    with pytest.raises(SettingInvalid) as caught:
        checked_changes(changes)
    assert caught.value.code == "invalid_setting" and caught.value.status == 400
    assert caught.value.details["setting"] in changes


@pytest.mark.parametrize(
    "issuer",
    ["", "idp.example", "https://", "https://idp.example?x", "https://[::1", "http://a:0x"],
)
def test_issuers_that_are_no_urls(issuer: str) -> None:
    with pytest.raises(SettingInvalid):
        checked_issuer(issuer)


def test_an_issuer_with_a_path_is_fine() -> None:
    assert (
        checked_issuer("https://login.example/tenant/v2.0") == "https://login.example/tenant/v2.0"
    )


def test_the_published_key_verifies_the_client_assertion() -> None:
    """RFC 7523: the assertion's kid is the thumbprint of the published key."""
    private_pem, certificate = new_key_pair("hubgate acme", NOW)
    config = OidcConfig(
        connection_id=1, provider=PROVIDER, client_id="hubgate", client_secret="",
        redirect_uri="https://hubgate.example/cb", token_auth=TokenAuth.PRIVATE_KEY_JWT,
        private_key_pem=private_pem,
    )  # fmt: skip
    form = token_request(config, "code", "verifier", NOW).form
    jwks = public_jwks(certificate)
    (key,) = jwks["keys"]
    assert key["kid"] == signing_key(private_pem).kid and key["use"] == "sig"
    decoded = jwt.decode(form["client_assertion"], KeySet.import_key_set(jwks))
    assert decoded.header["alg"] == "RS256" and decoded.header["kid"] == key["kid"]
    assert decoded.claims["aud"] == PROVIDER.token_endpoint
    _, other_certificate = new_key_pair("someone else", NOW)
    assert public_jwks(other_certificate)["keys"][0]["kid"] != key["kid"]
