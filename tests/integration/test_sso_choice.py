"""Several active connections in one org, as a signed-out newcomer meets them: the
choice page at ``/sso/{org}/start``, the join link and an invitation's link, routed
by the email's domain or by a connection picked from the list (issue 20 item 1)."""

from __future__ import annotations

import dataclasses
import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from hubgate.access import OrgRole, Principal
from hubgate.audit import Actor
from hubgate.db.models import AuditEvent, Ephemeral, SsoConnection
from hubgate.operator import operator_principal
from hubgate.runtime import Runtime
from hubgate.sso import activation, connections, domains, invitations
from tests.conftest import World
from tests.integration.sso_world import SsoOrg, count, person, role_of, sso_org
from tests.integration.test_saml_flow import idp_metadata
from tests.security.saml_forge import session_keys


@dataclasses.dataclass
class TwoIdps:
    """acme with two active connections: "Acme Okta" (no domain assigned) and
    "Labs Entra" serving the verified domain labs.acme.example."""

    okta: SsoOrg
    labs: SsoOrg


def add_connection(rt: Runtime, acme: SsoOrg, name: str, state: str = "active") -> int:
    """Another connection of acme through the test IdP, named ``name``, in ``state``."""
    with rt.db.transaction() as db:
        row = connections.create_saml(
            db, rt, Actor.system(), operator_principal(), db.merge(acme.org),
            idp_metadata(session_keys().idp.cert_pem),
        )  # fmt: skip
        row.name = name
        if state != "draft":
            connections.mark_verified(row, rt)
        if state in ("active", "inactive"):
            activation.activate(db, Actor.system(), Principal.operator(), row)
        db.flush()
        row.state = state
        return row.id


@pytest.fixture
def two(rt: Runtime, world: World) -> TwoIdps:
    return two_idps(rt, world)


def two_idps(rt: Runtime, world: World) -> TwoIdps:
    """:class:`TwoIdps`, made through the services."""
    okta = sso_org(rt, world)
    with rt.db.transaction() as db:
        db.execute(
            update(SsoConnection)
            .where(SsoConnection.id == okta.connection_id)
            .values(name="Acme Okta")
        )
    labs_id = add_connection(rt, okta, "Labs <Entra>")
    with rt.db.transaction() as db:
        org = db.merge(okta.org)
        domains.add(db, rt, Actor.system(), operator_principal(), org, "labs.acme.example")
        domains.verify_by_operator(db, rt, Actor.system(), org, "labs.acme.example")
        domains.assign_connection(
            db, Actor.system(), operator_principal(), org, "labs.acme.example", labs_id
        )
    return TwoIdps(okta, dataclasses.replace(okta, connection_id=labs_id))


def _links(page: str) -> dict[str, str]:
    """The choice page's connection links: display name -> href."""
    found = re.findall(r'<li><a class="button secondary" href="([^"]+)">([^<]+)</a></li>', page)
    return {html.unescape(name): html.unescape(href) for href, name in found}


def _pending(rt: Runtime) -> int:
    return count(rt, Ephemeral, Ephemeral.purpose == "saml_request")


def test_a_signed_out_visitor_chooses_among_the_active_connections_by_name(
    client: TestClient, rt: Runtime, two: TwoIdps
) -> None:
    two.okta.set_mode("managed")
    page = client.get("/sso/acme/start?next=/acme/models", follow_redirects=False)
    assert page.status_code == 200 and _pending(rt) == 0
    assert 'method="get" action="/sso/acme/start"' in page.text
    assert 'name="next" value="/acme/models"' in page.text
    okta, labs = two.okta.connection_id, two.labs.connection_id
    assert _links(page.text) == {
        "Acme Okta": f"/sso/acme/start?connection={okta}&next=%2Facme%2Fmodels",
        "Labs <Entra>": f"/sso/acme/start?connection={labs}&next=%2Facme%2Fmodels",
    }
    answer = two.labs.sign_in(
        client, start=_links(page.text)["Labs <Entra>"], **person("ada@labs.acme.example")
    )
    assert answer["status"] == 200, answer


def test_the_email_form_routes_by_the_domain_and_else_shows_the_list_again(
    client: TestClient, rt: Runtime, two: TwoIdps
) -> None:
    two.okta.set_mode("managed")
    routed = client.get(
        "/sso/acme/start?email=Ada@Labs.Acme.Example&next=/acme", follow_redirects=False
    )
    assert routed.status_code == 303 and _pending(rt) == 1
    answer = two.labs.post(client, *_answered(two.labs, routed.headers["location"]))
    assert answer["status"] == 200 and answer["next"] == "/acme"
    client.cookies.clear()  # signed out again: nothing but the address routes
    for address in ("ada@elsewhere.example", "not an address", "x" * 320):
        again = client.get("/sso/acme/start", params={"email": address}, follow_redirects=False)
        assert again.status_code == 200 and "serves that address" in again.text
        assert len(_links(again.text)) == 2
    too_long = client.get("/sso/acme/start", params={"email": "x" * 321})
    assert too_long.status_code == 400 and _pending(rt) == 0


def _answered(idp: SsoOrg, location: str) -> tuple[str, str]:
    """The IdP's answer to the AuthnRequest at ``location``, and its RelayState."""
    import base64
    import zlib
    from urllib.parse import parse_qs, urlsplit

    from lxml import etree

    query = parse_qs(urlsplit(location).query)
    request = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    claims = person("ada@labs.acme.example")
    return idp.answer(etree.fromstring(request).get("ID"), **claims), query["RelayState"][0]


def test_the_join_link_keeps_the_join_through_the_chosen_connection(
    client: TestClient, rt: Runtime, two: TwoIdps
) -> None:
    two.okta.set_mode("managed")
    with rt.db.transaction() as db:
        key = invitations.rotate_join_link(
            db, rt, Actor.system(), Principal.operator(), db.merge(two.okta.org)
        )
    page = client.get(f"/sso/join/{key}", follow_redirects=False)
    assert page.status_code == 200 and _pending(rt) == 0
    assert f'action="/sso/join/{key}"' in page.text and 'name="next"' not in page.text
    href = _links(page.text)["Acme Okta"]
    assert href == f"/sso/join/{key}?connection={two.okta.connection_id}"
    answer = two.okta.sign_in(client, start=href, **person("new@acme.example"))
    assert answer["status"] == 200 and answer["next"] == "/acme"
    assert role_of(rt, two.okta.org, "new@acme.example") is OrgRole.WRITE
    # admitted by the join link (not just in time): the join survived the choice
    assert count(rt, AuditEvent, AuditEvent.action == "sso.join") == 1


def test_an_invitation_link_offers_the_same_choice(
    client: TestClient, rt: Runtime, two: TwoIdps
) -> None:
    with rt.db.transaction() as db:
        row = invitations.invite(
            db, rt, Actor.system(), Principal.operator(), db.merge(two.okta.org),
            "guest@labs.acme.example", OrgRole.READ,
        )  # fmt: skip
        key = rt.sealer.unseal(row.key_sealed)
    page = client.get(f"/sso/invite/{key}", follow_redirects=False)
    assert page.status_code == 200
    href = _links(page.text)["Labs <Entra>"]
    assert href == f"/sso/invite/{key}?connection={two.labs.connection_id}"
    routed = client.get(f"/sso/invite/{key}?email=guest@labs.acme.example", follow_redirects=False)
    assert routed.status_code == 303 and _pending(rt) == 1
    client.cookies.clear()
    two.okta.set_mode("managed")
    answer = two.labs.sign_in(client, start=href, **person("guest@labs.acme.example"))
    assert answer["status"] == 200 and answer["next"] == "/acme"
    assert role_of(rt, two.okta.org, "guest@labs.acme.example") is OrgRole.READ


@pytest.mark.parametrize("which", ["other_org", "inactive", "draft", "unknown"])
def test_a_join_link_refuses_a_connection_that_is_not_one_of_the_orgs_active_ones(
    client: TestClient, rt: Runtime, world: World, two: TwoIdps, which: str
) -> None:
    """An attacker edits the ``connection`` of a join link to send the newcomer
    through another org's IdP, a switched-off one or one under test: refused with
    a code, nothing started, no browser cookie set."""
    other = sso_org(rt, world, "other", "other.example")
    wanted = {
        "other_org": other.connection_id,
        "inactive": add_connection(rt, two.okta, "Old", "inactive"),
        "draft": add_connection(rt, two.okta, "Trial", "draft"),
        "unknown": 999_999,
    }[which]
    with rt.db.transaction() as db:
        key = invitations.rotate_join_link(
            db, rt, Actor.system(), Principal.operator(), db.merge(two.okta.org)
        )
    refused = client.get(f"/sso/join/{key}?connection={wanted}", follow_redirects=False)
    assert refused.status_code == 400 and "connection_not_offered" in refused.text
    assert _pending(rt) == 0 and "set-cookie" not in refused.headers


def test_start_refuses_another_orgs_or_an_inactive_connection(
    client: TestClient, rt: Runtime, world: World, two: TwoIdps
) -> None:
    other = sso_org(rt, world, "other", "other.example")
    inactive = add_connection(rt, two.okta, "Old", "inactive")
    for wanted in (other.connection_id, inactive, 0, "x"):
        refused = client.get(f"/sso/acme/start?connection={wanted}", follow_redirects=False)
        assert refused.status_code == 400 and _pending(rt) == 0


def test_a_hostile_next_is_replaced_on_the_choice_page(client: TestClient, two: TwoIdps) -> None:
    for hostile in ("//evil.example", "https://evil.example/", "/\\evil.example"):
        page = client.get("/sso/acme/start", params={"next": hostile})
        assert page.status_code == 200 and "evil" not in page.text
        assert all(h.endswith("&next=%2F") for h in _links(page.text).values())


def test_one_active_connection_still_starts_at_once(
    client: TestClient, rt: Runtime, world: World
) -> None:
    acme = sso_org(rt, world)
    add_connection(rt, acme, "Trial", "draft")
    assert client.get("/sso/acme/start", follow_redirects=False).status_code == 303
