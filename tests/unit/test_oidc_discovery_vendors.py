"""Discovery documents in each OIDC provider's own shape (OpenID Connect Discovery
1.0 §3, §4.3): the issuer forms the IdP guides tell the IT admin to give hubgate,
and the forms hubgate must refuse. Hosts and tenant ids are invented; the field
sets follow each vendor's published document."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hubgate.sso.oidc.discovery import discovery_url, parse_discovery
from hubgate.sso.oidc.errors import IssuerMismatch

TENANT = "7f3c1e2a-0b4d-4c5e-9a8b-0c0ffee00001"
MS = "https://login.microsoftonline.com"


def entra(tenant: str) -> dict[str, Any]:
    """Entra ID's v2.0 document: no code_challenge_methods_supported, a
    front-channel logout only; for common/organizations the issuer is a template."""
    return {
        "token_endpoint": f"{MS}/{tenant}/oauth2/v2.0/token",
        "jwks_uri": f"{MS}/{tenant}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "issuer": f"{MS}/{{tenantid}}/v2.0" if tenant == "organizations" else f"{MS}/{tenant}/v2.0",
        "authorization_endpoint": f"{MS}/{tenant}/oauth2/v2.0/authorize",
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "end_session_endpoint": f"{MS}/{tenant}/oauth2/v2.0/logout",
        "frontchannel_logout_supported": True,
        "http_logout_supported": True,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "email", "name", "tid"],
        "tenant_region_scope": "EU",
    }  # fmt: skip


def standard(issuer: str, base: str, **more: Any) -> dict[str, Any]:
    return {
        "issuer": issuer, "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token", "jwks_uri": f"{base}/keys",
        "userinfo_endpoint": f"{base}/userinfo", **more,
    }  # fmt: skip


KEYCLOAK = "https://kc.acme.example/realms/acme"
AUTHENTIK = "https://auth.acme.example/application/o/hubgate/"
VENDORS: dict[str, tuple[str, dict[str, Any]]] = {
    "entra": (f"{MS}/{TENANT}/v2.0", entra(TENANT)),
    "okta org server": ("https://acme.okta.com", standard(
        "https://acme.okta.com", "https://acme.okta.com/oauth2/v1",
        code_challenge_methods_supported=["S256"],
        end_session_endpoint="https://acme.okta.com/oauth2/v1/logout",
    )),
    "okta default server": ("https://acme.okta.com/oauth2/default", standard(
        "https://acme.okta.com/oauth2/default", "https://acme.okta.com/oauth2/default/v1",
        code_challenge_methods_supported=["S256"],
    )),
    "onelogin": ("https://acme.onelogin.com/oidc/2", standard(
        "https://acme.onelogin.com/oidc/2", "https://acme.onelogin.com/oidc/2",
        code_challenge_methods_supported=["S256"],
    )),
    "jumpcloud": ("https://oauth.id.jumpcloud.com/", standard(
        "https://oauth.id.jumpcloud.com/", "https://oauth.id.jumpcloud.com/oauth2",
        code_challenge_methods_supported=["plain", "S256"],
    )),
    "keycloak": (KEYCLOAK, standard(
        KEYCLOAK, f"{KEYCLOAK}/protocol/openid-connect",
        code_challenge_methods_supported=["plain", "S256"],
        end_session_endpoint=f"{KEYCLOAK}/protocol/openid-connect/logout",
        backchannel_logout_supported=True, backchannel_logout_session_supported=True,
        authorization_response_iss_parameter_supported=True,
    )),
    "authentik": (AUTHENTIK, standard(
        AUTHENTIK, "https://auth.acme.example/application/o",
        code_challenge_methods_supported=["plain", "S256"],
        end_session_endpoint="https://auth.acme.example/application/o/hubgate/end-session/",
    )),
}  # fmt: skip


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_the_issuer_a_guide_names_is_taken(vendor: str) -> None:
    issuer, document = VENDORS[vendor]
    found = parse_discovery(json.dumps(document).encode(), issuer)
    assert found.issuer == issuer
    assert found.token_endpoint == document["token_endpoint"]
    assert found.end_session_endpoint == document.get("end_session_endpoint")


def test_keycloak_advertises_back_channel_logout() -> None:
    issuer, document = VENDORS["keycloak"]
    found = parse_discovery(json.dumps(document).encode(), issuer)
    assert found.backchannel_logout_supported and found.backchannel_logout_session_supported
    assert found.iss_parameter_supported


@pytest.mark.parametrize(
    ("issuer", "document"),
    [
        # Entra's multi-tenant endpoint: its issuer is a template, no tenant's issuer.
        (f"{MS}/organizations/v2.0", entra("organizations")),
        # A tenant named by its domain: the document names the tenant id instead.
        (f"{MS}/acme.onmicrosoft.com/v2.0", entra(TENANT)),
        # The v1.0 issuer of the same tenant is another issuer.
        (f"https://sts.windows.net/{TENANT}/", entra(TENANT)),
        # authentik and JumpCloud issuers end in a slash: without it they differ.
        (AUTHENTIK.rstrip("/"), VENDORS["authentik"][1]),
        ("https://oauth.id.jumpcloud.com", VENDORS["jumpcloud"][1]),
    ],
)
def test_an_issuer_that_is_not_the_documents_is_refused(
    issuer: str, document: dict[str, Any]
) -> None:
    with pytest.raises(IssuerMismatch):
        parse_discovery(json.dumps(document).encode(), issuer)


@pytest.mark.parametrize(
    ("issuer", "url"),
    [
        (AUTHENTIK, f"{AUTHENTIK}.well-known/openid-configuration"),
        (KEYCLOAK, f"{KEYCLOAK}/.well-known/openid-configuration"),
        (f"{MS}/{TENANT}/v2.0", f"{MS}/{TENANT}/v2.0/.well-known/openid-configuration"),
    ],
)
def test_the_discovery_url_of_each_issuer_form(issuer: str, url: str) -> None:
    assert discovery_url(issuer) == url


def test_the_refusal_names_the_documents_issuer_when_it_is_plain_text() -> None:
    """An Entra admin who named the tenant by its domain learns the issuer to give."""
    with pytest.raises(IssuerMismatch, match=f"configured: {MS}/{TENANT}/v2.0"):
        parse_discovery(json.dumps(entra(TENANT)).encode(), f"{MS}/acme.onmicrosoft.com/v2.0")
    for named in ("x" * 257, "https://a\nb", 42):
        document = json.dumps({**entra(TENANT), "issuer": named}).encode()
        with pytest.raises(IssuerMismatch) as refused:
            parse_discovery(document, f"{MS}/{TENANT}/v2.0")
        assert refused.value.message == (
            "The discovery document names another issuer than configured."
        )
