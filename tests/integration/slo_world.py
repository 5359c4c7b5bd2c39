"""Single logout over HTTP: an org whose IdP (the test IdP of
tests/security/saml_forge.py) publishes a SingleLogoutService, people signed in
through it, and the IdP's logout messages sent to hubgate's SingleLogoutService.

What hubgate sends back to the IdP is read as the IdP would: the query string
as received, its signature checked with ``cryptography`` against the SP
certificate of the connection, then inflated.
"""

from __future__ import annotations

import base64
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import select

from hubgate.app import create_app
from hubgate.db.models import SsoAuthentication, SsoConnection
from hubgate.runtime import Runtime
from hubgate.sso import connections
from hubgate.sso.saml.metadata import REDIRECT, certificate_body
from hubgate.sso.saml.signature import enveloped_signature, verify_enveloped
from hubgate.sso.saml.xml import parse
from tests.conftest import World
from tests.integration.sso_world import SsoOrg, person, sso_org
from tests.integration.test_saml_flow import IDP, SSO_URL
from tests.security.saml_forge import (
    Credential,
    LogoutClaims,
    build_logout_request,
    build_logout_response,
    post_value,
    redirect_query,
    session_keys,
)

__all__ = [
    "IDP_SLO",
    "IDP_SLO_ANSWERS",
    "Sent",
    "csrf_token",
    "idp_sessions",
    "logout_claims",
    "logout_query",
    "post_message",
    "post_to_slo",
    "posted_to_idp",
    "sent_to_idp",
    "signed_in",
    "signed_out",
    "slo_metadata",
    "slo_org",
    "to_slo",
]

IDP_SLO = "https://idp.acme.example/slo"
IDP_SLO_ANSWERS = "https://idp.acme.example/slo/answers"
MD, DS = "urn:oasis:names:tc:SAML:2.0:metadata", "http://www.w3.org/2000/09/xmldsig#"


def slo_metadata(
    cert_pem: str,
    *,
    entity_id: str = IDP,
    binding: str | None = REDIRECT,
    response_location: str | None = IDP_SLO_ANSWERS,
) -> bytes:
    """IdP metadata with a SingleLogoutService by ``binding`` (none when ``None``)."""
    entity = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap={"md": MD, "ds": DS})
    entity.set("entityID", entity_id)
    idp = etree.SubElement(entity, f"{{{MD}}}IDPSSODescriptor")
    key = etree.SubElement(idp, f"{{{MD}}}KeyDescriptor", use="signing")
    data = etree.SubElement(etree.SubElement(key, f"{{{DS}}}KeyInfo"), f"{{{DS}}}X509Data")
    etree.SubElement(data, f"{{{DS}}}X509Certificate").text = certificate_body(cert_pem)
    if binding is not None:
        service = etree.SubElement(idp, f"{{{MD}}}SingleLogoutService", Binding=binding)
        service.set("Location", IDP_SLO)
        if response_location is not None:
            service.set("ResponseLocation", response_location)
    etree.SubElement(idp, f"{{{MD}}}SingleSignOnService", Binding=REDIRECT, Location=SSO_URL)
    return etree.tostring(entity)


def slo_org(
    rt: Runtime,
    world: World,
    name: str = "acme",
    domain: str = "acme.example",
    *,
    metadata: bytes | None = None,
) -> SsoOrg:
    """An org in managed mode whose IdP takes single logout."""
    org = sso_org(rt, world, name, domain, metadata or slo_metadata(session_keys().idp.cert_pem))
    org.set_mode("managed")
    return org


def signed_in(rt: Runtime, org: SsoOrg, email: str, **claims: Any) -> TestClient:
    """A fresh browser signed in through ``org``'s IdP as ``email``."""
    client = TestClient(create_app(runtime=rt))
    answer = org.sign_in(client, **{**person(email), **claims})
    assert answer["status"] == 200, answer
    assert not signed_out(client)
    return client


def signed_out(client: TestClient) -> bool:
    return client.get("/api/v1/me").status_code == 401


def idp_sessions(rt: Runtime, org: SsoOrg, subject: str) -> list[str]:
    """The SessionIndex values of ``subject``'s SSO authentications, oldest first."""
    with rt.db.transaction() as db:
        found = db.scalars(
            select(SsoAuthentication.idp_session)
            .where(
                SsoAuthentication.connection_id == org.connection_id,
                SsoAuthentication.idp_subject == subject,
            )
            .order_by(SsoAuthentication.id)
        )
        return [value for value in found if value is not None]


def logout_claims(rt: Runtime, org: SsoOrg, **claims: Any) -> LogoutClaims:
    """A valid LogoutRequest (or with ``in_response_to``, answer) of ``org``'s IdP now."""
    base = {"issued": datetime.now(UTC), "issuer": IDP,
            "destination": connections.slo_url(rt, org.connection_id)}  # fmt: skip
    return LogoutClaims(**{**base, **claims})


def logout_query(
    rt: Runtime,
    org: SsoOrg,
    *,
    signer: Credential | None = None,
    response: bool = False,
    sig_alg: str = "rsa-sha256",
    relay_state: str | None = None,
    **claims: Any,
) -> str:
    """The IdP's LogoutRequest (LogoutResponse with ``response``) by HTTP-Redirect."""
    made = logout_claims(rt, org, **claims)
    message = build_logout_response(made) if response else build_logout_request(made)
    return redirect_query(
        message, signer or session_keys().idp, sig_alg=sig_alg, relay_state=relay_state,
        parameter="SAMLResponse" if response else "SAMLRequest",
    )  # fmt: skip


def to_slo(client: TestClient, org: SsoOrg, query: str, accept: str = "application/json") -> Any:
    """The browser brings the IdP's message to hubgate's SingleLogoutService."""
    return client.get(
        f"/sso/saml/{org.connection_id}/slo?{query}", headers={"accept": accept},
        follow_redirects=False,
    )  # fmt: skip


def post_message(
    client: TestClient,
    org: SsoOrg,
    rt: Runtime,
    *,
    signer: Credential | None = None,
    unsigned: bool = False,
    **claims: Any,
) -> Any:
    """The IdP's LogoutRequest by HTTP-POST, signed enveloped (unless ``unsigned``)."""
    message = build_logout_request(logout_claims(rt, org, **claims))
    value = post_value(message, None if unsigned else signer or session_keys().idp)
    return client.post(
        f"/sso/saml/{org.connection_id}/slo", data={"SAMLRequest": value},
        headers={"accept": "application/json"}, follow_redirects=False,
    )  # fmt: skip


@dataclass(frozen=True)
class Sent:
    """A message hubgate sent the IdP by HTTP-Redirect, its signature verified."""

    url: str
    parameter: str
    root: Any
    relay_state: str | None


def sent_to_idp(rt: Runtime, org: SsoOrg, location: str) -> Sent:
    """Read hubgate's redirect to the IdP as the IdP does: the signature over the
    raw query string with the connection's SP certificate, then the message."""
    parts = urlsplit(location)
    raw = dict(pair.split("=", 1) for pair in parts.query.split("&"))
    parameter = "SAMLRequest" if "SAMLRequest" in raw else "SAMLResponse"
    names = [parameter, *(n for n in ("RelayState", "SigAlg") if n in raw)]
    octets = "&".join(f"{name}={raw[name]}" for name in names).encode()
    assert unquote_plus(raw["SigAlg"]) == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    with rt.db.transaction() as db:
        pem = db.get_one(SsoConnection, org.connection_id).sp_certificate
    key: Any = x509.load_pem_x509_certificate(pem.encode()).public_key()
    signature = base64.b64decode(unquote_plus(raw["Signature"]))
    key.verify(signature, octets, padding.PKCS1v15(), hashes.SHA256())  # raises if forged
    query = parse_qs(parts.query)
    root = etree.fromstring(zlib.decompress(base64.b64decode(query[parameter][0]), -15))
    relay = query.get("RelayState", [None])[0]
    return Sent(f"{parts.scheme}://{parts.netloc}{parts.path}", parameter, root, relay)


def csrf_token(client: TestClient) -> str:
    page = client.get("/", headers={"accept": "text/html"}).text
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert found is not None
    return found.group(1)


def posted_to_idp(rt: Runtime, org: SsoOrg, page: Any) -> tuple[str, Any, dict[str, str]]:
    """Read hubgate's auto-submit form to the IdP (HTTP-POST binding) as the IdP
    does: its action, the message with its enveloped signature verified with the
    connection's SP certificate, and the form's fields."""
    assert page.status_code == 200, page.text
    action = re.search(r'<form id="saml-post" method="post" action="([^"]+)"', page.text)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
    assert action is not None, page.text
    message = "SAMLRequest" if "SAMLRequest" in fields else "SAMLResponse"
    root = parse(base64.b64decode(fields[message]))
    with rt.db.transaction() as db:
        pem = db.get_one(SsoConnection, org.connection_id).sp_certificate
    signature = enveloped_signature(root)
    assert signature is not None
    verify_enveloped(root, signature, (pem,), datetime.now(UTC))  # raises if forged
    return action.group(1), root, fields


def post_to_slo(client: TestClient, org: SsoOrg, field: str, value: str, accept: str) -> Any:
    return client.post(
        f"/sso/saml/{org.connection_id}/slo", data={field: value}, headers={"accept": accept},
        follow_redirects=False,
    )  # fmt: skip
