"""An SSO connection as its org's admins and the setup portal see it: state, the
SP values to paste into the IdP, the IdP's settings and certificate expiries
(secrets never shown)."""

from __future__ import annotations

from typing import Any

from hubgate.db.models import SsoConnection
from hubgate.runtime import Runtime
from hubgate.sso import certificate_expiry as expiry
from hubgate.sso.connections import (
    EDITABLE,
    jwks_uri,
    redirect_uri,
    shown_oidc_settings,
    single_logout,
    sp_urls,
    stored_settings,
)
from hubgate.sso.flows.oidc_logout import registration
from hubgate.sso.saml.keys import certificate_expiry

__all__ = ["describe"]


def describe(rt: Runtime, connection: SsoConnection) -> dict[str, Any]:
    """The connection as admins see it: state, SP values, IdP settings, cert expiries."""
    settings = stored_settings(connection)
    if connection.kind == "oidc":
        return _describe_oidc(rt, connection)
    entity_id, acs_url = sp_urls(rt, connection.id)
    certificates = settings.get("idp_certificates", [])
    return {
        "id": connection.id, "kind": connection.kind, "state": connection.state,
        "name": connection.name, "sp_entity_id": entity_id, "acs_url": acs_url,
        "sp_metadata_url": entity_id,
        "sp_certificate_expires": certificate_expiry(connection.sp_certificate),
        "idp_entity_id": settings.get("idp_entity_id"), "idp_sso_url": settings.get("idp_sso_url"),
        "idp_certificates_expire": [certificate_expiry(pem) for pem in certificates],
        "certificates": expiry.shown(connection, rt.now()),
        "certificate_alarm": _alarm(rt, connection),
        "settings": {k: settings[k] for k in EDITABLE if k in settings},
        "logout": _saml_logout(rt, connection),
    }  # fmt: skip


def _alarm(rt: Runtime, connection: SsoConnection) -> str | None:
    """The threshold the last IdP certificate has reached (active connections only)."""
    found = expiry.alarm_of(connection, rt.now())
    return found.threshold if found is not None else None


def _saml_logout(rt: Runtime, connection: SsoConnection) -> dict[str, Any]:
    """Single logout: whether it runs, the URL to give the IdP, the IdP's own."""
    found = single_logout(rt, connection)
    return {
        "active": found.active,
        "sp_slo_url": found.sp_slo_url,
        "idp_slo_url": found.idp_slo_url,
    }


def _describe_oidc(rt: Runtime, connection: SsoConnection) -> dict[str, Any]:
    settings = stored_settings(connection)
    return {
        "id": connection.id, "kind": "oidc", "state": connection.state,
        "name": connection.name, "redirect_uri": redirect_uri(rt, connection.id),
        "jwks_uri": jwks_uri(rt, connection.id),
        "issuer": settings["provider"]["issuer"], "client_id": settings["client_id"],
        "token_auth": settings["token_auth"], "settings": shown_oidc_settings(settings),
        "logout": _oidc_logout(rt, connection),
    }  # fmt: skip


def _oidc_logout(rt: Runtime, connection: SsoConnection) -> dict[str, Any]:
    """RP-initiated logout (on when the provider advertises it and the setting
    allows), and the two URIs to register at the provider."""
    found = registration(rt, connection)
    return {
        "rp_logout_active": found.rp_logout_active,
        "backchannel_logout_uri": found.backchannel_logout_uri,
        "post_logout_redirect_uri": found.post_logout_redirect_uri,
    }
