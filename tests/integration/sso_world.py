"""An org with a verified domain and an active SAML connection, driven over HTTP
with responses signed by the test IdP of tests/security/saml_forge.py."""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import func, select

from hubgate.access import OrgRole, Principal, ResourceKind, Visibility
from hubgate.audit import Actor
from hubgate.db.models import Org, SsoConnection
from hubgate.operator import operator_principal
from hubgate.orgs import resources
from hubgate.runtime import Runtime
from hubgate.sso import activation, connections, domains, policy
from tests.conftest import World
from tests.integration.test_oidc_flow import CLIENT, ISSUER, SECRET
from tests.integration.test_saml_flow import IDP, idp_metadata
from tests.security.saml_forge import Claims, Keys, SamlForge, session_keys


@dataclass
class SsoOrg:
    """``name`` with domain ``domain`` verified and one active SAML connection."""

    rt: Runtime
    world: World
    org: Org
    connection_id: int
    domain: str

    def set_mode(self, mode: str) -> None:
        with self.rt.db.transaction() as db:
            policy.set_mode(
                db, self.rt, Actor.system(), Principal.operator(), db.merge(self.org), mode
            )

    def resource(self, name: str, visibility: Visibility, team: str | None = None) -> None:
        with self.rt.db.transaction() as db:
            resources.create(
                db, Actor.system(), operator_principal(), db.merge(self.org),
                ResourceKind.MODEL, name, visibility, team,
            )  # fmt: skip

    def answer(self, request_id: str | None, *, keys: Keys | None = None, **claims: Any) -> str:
        """The test IdP's signed answer (signed with ``keys.idp``, default the session's)."""
        entity_id, acs = connections.sp_urls(self.rt, self.connection_id)
        base = Claims(
            issued=datetime.now(UTC), response_issuer=IDP, assertion_issuer=IDP,
            destination=acs, recipient=acs, audiences=(entity_id,), in_response_to=request_id,
            confirmation_in_response_to=request_id,
        )  # fmt: skip
        forge = SamlForge(keys or session_keys())
        return forge.response(forge.claims(**{**base.__dict__, **claims}))

    def sign_in(
        self, client: TestClient, *, start: str | None = None, **claims: Any
    ) -> dict[str, Any]:
        """Start at ``start`` (default the org's SSO start), post the IdP's answer to
        the ACS; the JSON answer with ``status``."""
        request_id, relay_state = self.start(client, start)
        return self.post(client, self.answer(request_id, **claims), relay_state)

    def start(self, client: TestClient, path: str | None = None) -> tuple[str, str]:
        """Follow ``path`` (default the org's SSO start) to the IdP: the AuthnRequest's
        ID and the RelayState."""
        path = path or f"/sso/{self.org.name}/start?next=/{self.org.name}"
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, response.text
        query = parse_qs(urlsplit(response.headers["location"]).query)
        request = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
        return etree.fromstring(request).get("ID"), query["RelayState"][0]

    def post(self, client: TestClient, saml_response: str, relay_state: str) -> dict[str, Any]:
        """The IdP's answer posted to the ACS; the JSON answer with ``status``."""
        answer = client.post(
            f"/sso/saml/{self.connection_id}/acs",
            data={"SAMLResponse": saml_response, "RelayState": relay_state},
            headers={"accept": "application/json"},
        )  # fmt: skip
        return {"status": answer.status_code, **answer.json()}


def person(email: str, *groups: str, name_id: str | None = None) -> dict[str, Any]:
    """Claims for one person: their NameID (their email unless given), email, groups."""
    return {"name_id": name_id or email, "email": email, "groups": groups}


def sso_org(
    rt: Runtime,
    world: World,
    name: str = "acme",
    domain: str = "acme.example",
    metadata: bytes | None = None,
) -> SsoOrg:
    """``metadata`` is the IdP's (default: the test IdP's, without single logout)."""
    org = world.org(name, world.user(f"admin@{domain}"))
    with rt.db.transaction() as db:
        row = connections.create_saml(
            db, rt, Actor.system(), operator_principal(), db.merge(org),
            metadata or idp_metadata(session_keys().idp.cert_pem),
        )  # fmt: skip
        domains.add(db, rt, Actor.system(), operator_principal(), db.merge(org), domain)
        domains.verify_by_operator(db, rt, Actor.system(), db.merge(org), domain)
        connections.mark_verified(row, rt)
        activation.activate(db, Actor.system(), Principal.operator(), row)
        connection_id = row.id
    return SsoOrg(rt, world, org, connection_id, domain)


def count(rt: Runtime, model: type, *where: object) -> int:
    with rt.db.transaction() as db:
        return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def role_of(rt: Runtime, org: Org, email: str) -> OrgRole | None:
    from hubgate.accounts import users
    from hubgate.orgs import service

    with rt.db.transaction() as db:
        user = users.find_by_email(db, email)
        member = service.membership(db, org.id, user.id) if user else None
        return OrgRole.parse(member.role) if member else None


__all__ = ["SsoConnection", "SsoOrg", "count", "person", "role_of", "sso_org"]


def oidc_org(rt: Runtime, world: World) -> SsoOrg:
    """acme with acme.example verified and one active OIDC connection."""
    org = world.org("acme", world.user("admin@acme.example"))
    provider = connections.discover(rt, ISSUER)
    with rt.db.transaction() as db:
        org = db.merge(org)
        row = connections.create_oidc(
            db, rt, Actor.system(), operator_principal(), org,
            issuer=ISSUER, client_id=CLIENT, client_secret=SECRET, provider=provider,
        )  # fmt: skip
        domains.add(db, rt, Actor.system(), operator_principal(), org, "acme.example")
        domains.verify_by_operator(db, rt, Actor.system(), org, "acme.example")
        connections.mark_verified(row, rt)
        activation.activate(db, Actor.system(), Principal.operator(), row)
        connection_id = row.id
    return SsoOrg(rt, world, org, connection_id, "acme.example")
