"""``hubgate dev-idp`` against hubgate's real SAML SP and OIDC RP.

SAML runs both apps in process (two TestClients: hubgate never calls the IdP
during a SAML sign-in); OIDC and the loopback-SP SAML case run the dev IdP as
a real subprocess on a free loopback port, since hubgate's RP fetches its
discovery, JWKS, token and userinfo over HTTP. Refusals are driven at the
dev IdP directly: every bad input is a 4xx, never a 500.
"""

from __future__ import annotations

import base64
import html
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate import demo
from hubgate.access import OrgRole, Principal, TeamRole
from hubgate.accounts import users as accounts
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.cli import devidp as cli_devidp
from hubgate.cli.root import main
from hubgate.db.models import Org, SsoConnection, Team, TeamMembership
from hubgate.devidp import keys, oidc, process, saml
from hubgate.devidp.app import DevIdp
from hubgate.devidp.app import create_app as create_idp
from hubgate.devidp.users import (
    DEFAULT_USERS,
    Directory,
    DirectoryInvalid,
    OidcClient,
    SamlSp,
    User,
    load,
    parse,
)
from hubgate.operator import operator_principal
from hubgate.orgs import service
from hubgate.runtime import Runtime, build_runtime
from hubgate.sso import activation, connections, domains, mappings, policy
from hubgate.sso.oidc.discovery import parse_discovery
from tests.conftest import make_settings
from tests.ports import free_port

PASSWORD = "idp-test-password"
IN_PROCESS_IDP = "http://127.0.0.1:8001"
LOOPBACK_HUB = "http://127.0.0.1:8000"  # hubgate's base URL when the IdP must see a loopback SP
PEOPLE = (
    User("u-alice", "alice@acme.test", "Alice Anders", PASSWORD, ("hub-admins",)),
    User("u-carol", "carol@acme.test", "Carol Chen", PASSWORD, ("engineers", "ml-research")),
)
USERS_TOML = f"""
loopback_sps = true
[[users]]
id = "u-alice"
email = "alice@acme.test"
name = "Alice Anders"
password = "{PASSWORD}"
groups = ["hub-admins"]
[[users]]
id = "u-carol"
email = "carol@acme.test"
name = "Carol Chen"
password = "{PASSWORD}"
groups = ["engineers", "ml-research"]
[[oidc_clients]]
client_id = "hubgate"
client_secret = "client-secret-1"
loopback_redirects = true
"""


# -- pages ------------------------------------------------------------------------------


def hidden(page: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    return {html.unescape(name): html.unescape(value) for name, value in found}


def form_action(page: str) -> str:
    found = re.search(r'<form method="post" action="([^"]+)"', page)
    assert found is not None, page
    return html.unescape(found.group(1))


def local(url: str) -> str:
    """Path and query of ``url`` (what a TestClient is asked for)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# -- hubgate's side -----------------------------------------------------------------------


def acme_with(rt: Runtime, metadata: bytes | None = None, **oidc_args: Any) -> int:
    """Org ``acme`` (admin alice, no password), domain acme.test verified, group
    mappings, and one connection in draft (SAML from ``metadata``, else OIDC)."""
    actor = Actor.system()
    with rt.db.transaction() as db:
        admin = accounts.create_user(db, rt, "alice@acme.test", password=None, verified=True)
        org = service.create_org(db, actor, "acme", "Acme", admin)
        principal = operator_principal()
        service.create_team(db, actor, principal, org, "research", "Research")
        rules = [mappings.RoleRule("groups", "hub-admins", OrgRole.ADMIN),
                 mappings.RoleRule("groups", "engineers", OrgRole.WRITE)]  # fmt: skip
        mappings.set_role_mappings(db, actor, principal, org, rules)
        teams = [("groups", "ml-research", "research", TeamRole.WRITE)]
        mappings.set_team_mappings(db, actor, principal, org, teams)
        domains.add(db, rt, actor, principal, org, "acme.test")
        domains.verify_by_operator(db, rt, actor, org, "acme.test")
        if metadata is not None:
            row = connections.create_saml(db, rt, actor, principal, org, metadata)
        else:
            row = connections.create_oidc(db, rt, actor, principal, org, **oidc_args)
        return row.id


def activate_managed(rt: Runtime, connection_id: int) -> None:
    """After the test sign-in verified it: activate (no skip) and go managed."""
    with rt.db.transaction() as db:
        row = db.get_one(SsoConnection, connection_id)
        assert row.state == "verified"
        activation.activate(db, Actor.system(), Principal.operator(), row)
        policy.set_mode(
            db, rt, Actor.system(), Principal.operator(), db.get_one(Org, row.org_id), "managed"
        )


def teams_of(rt: Runtime, email: str) -> dict[str, str]:
    with rt.db.transaction() as db:
        user = accounts.find_by_email(db, email)
        assert user is not None
        rows = db.execute(
            select(Team.name, TeamMembership.role)
            .join(Team, Team.id == TeamMembership.team_id)
            .where(TeamMembership.user_id == user.id)
        )
        return {name: role for name, role in rows}


def role_of(rt: Runtime, email: str) -> str | None:
    with rt.db.transaction() as db:
        user = accounts.find_by_email(db, email)
        org = service.get_org(db, "acme")
        member = service.membership(db, org.id, user.id) if user else None
        return member.role if member else None


# -- SAML, both apps in process ---------------------------------------------------------


@pytest.fixture(scope="module")
def idp_key() -> keys.SigningKey:
    return keys.ephemeral()


@dataclass
class SamlPair:
    hub: TestClient
    idp: TestClient
    connection_id: int

    def login_page(self) -> httpx.Response:
        start = self.hub.get("/sso/acme/start?next=/acme", follow_redirects=False)
        assert start.status_code == 303, start.text
        assert start.headers["location"].startswith(f"{IN_PROCESS_IDP}/saml/sso?SAMLRequest=")
        return self.idp.get(local(start.headers["location"]))

    def sign_in(self, login: str, password: str = PASSWORD) -> httpx.Response:
        page = self.login_page()
        assert page.status_code == 200 and "NOT FOR PRODUCTION" in page.text
        data = {**hidden(page.text), "login": login, "password": password}
        return self.idp.post(form_action(page.text), data=data)

    def through_acs(self, login: str) -> dict[str, Any]:
        posted = self.sign_in(login)
        assert posted.status_code == 200, posted.text
        acs = form_action(posted.text)
        assert acs == f"http://testserver/sso/saml/{self.connection_id}/acs"
        answer = self.hub.post(
            local(acs), data=hidden(posted.text), headers={"accept": "application/json"}
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


@pytest.fixture
def saml_pair(rt: Runtime, client: TestClient, idp_key: keys.SigningKey) -> Iterator[SamlPair]:
    connection_id = acme_with(rt, saml.idp_metadata(IN_PROCESS_IDP, idp_key))
    entity_id, acs_url = connections.sp_urls(rt, connection_id)
    directory = Directory(PEOPLE, (SamlSp(entity_id, acs_url),))
    site = DevIdp(IN_PROCESS_IDP, directory, idp_key)
    with TestClient(create_idp(site), base_url=IN_PROCESS_IDP) as idp:
        yield SamlPair(client, idp, connection_id)


def test_saml_test_sign_in_ends_in_the_identity(saml_pair: SamlPair) -> None:
    """A connection not yet active: the signed response verifies and the Identity shows."""
    identity = saml_pair.through_acs("alice@acme.test")["identity"]
    assert identity["subject"] == "u-alice"  # the persistent NameID
    assert identity["email"] == "alice@acme.test"
    assert identity["display_name"] == "Alice Anders"
    assert identity["groups"] == ["hub-admins"]


def test_the_dev_idp_pages_send_hubgates_headers(saml_pair: SamlPair) -> None:
    """Its login page (the SP's request in its URL) and its auto-posting form:
    nosniff, no Referer, its own nonce'd CSP."""
    login, posted = saml_pair.login_page(), saml_pair.sign_in("alice@acme.test")
    for page in (login, posted):
        assert page.status_code == 200
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "script-src 'nonce-" in page.headers["content-security-policy"]


def test_saml_after_activation_in_managed_mode_makes_a_jit_account(
    saml_pair: SamlPair, rt: Runtime
) -> None:
    saml_pair.through_acs("alice@acme.test")
    activate_managed(rt, saml_pair.connection_id)
    signed = saml_pair.through_acs("CAROL@acme.test")
    assert (signed["org"], signed["created"]) == ("acme", True)
    assert role_of(rt, "carol@acme.test") == "write"
    assert teams_of(rt, "carol@acme.test")["research"] == "write"
    saml_pair.hub.cookies.clear()  # carol's browser is signed in: alice uses another
    again = saml_pair.through_acs("alice@acme.test")
    assert (again["created"], again["linked"]) == (False, True)
    assert role_of(rt, "alice@acme.test") == "admin"


def test_saml_wrong_password_is_refused(saml_pair: SamlPair) -> None:
    for login, password in (("alice@acme.test", "wrong"), ("nobody@acme.test", PASSWORD),
                            ("alice@acme.test", "")):  # fmt: skip
        refused = saml_pair.sign_in(login, password)
        assert refused.status_code in (400, 401)
        assert "SAMLResponse" not in refused.text


def test_saml_request_refusals(saml_pair: SamlPair, idp_key: keys.SigningKey) -> None:
    """An unknown SP, another ACS, garbage and a DTD: a page, never a response."""
    idp = saml_pair.idp
    page = saml_pair.login_page()
    fields = hidden(page.text)
    request = zlib.decompress(base64.b64decode(fields["SAMLRequest"]), -15)

    def packed(document: bytes) -> str:
        deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
        return base64.b64encode(deflater.compress(document) + deflater.flush()).decode()

    other_acs = request.replace(b"/acs", b"/elsewhere")
    unknown_sp = request.replace(b"/metadata</saml:Issuer>", b"/other</saml:Issuer>")
    dtd = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>' + request
    bomb = packed(b"<a>" + b" " * 200_000 + b"</a>")
    for value in (packed(other_acs), packed(unknown_sp), packed(dtd), bomb, "%%%", "", "é",
                  base64.b64encode(b"not deflate").decode(), "A" * 20_000):  # fmt: skip
        answer = idp.get("/saml/sso", params={"SAMLRequest": value})
        assert answer.status_code == 400, value[:40]
        assert "NOT FOR PRODUCTION" in answer.text
    long_relay = idp.get("/saml/sso", params={**fields, "RelayState": "r" * 81})
    assert long_relay.status_code == 400
    posted = idp.post("/saml/sso", data={"login": "alice@acme.test", "password": PASSWORD})
    assert posted.status_code == 400


def test_idp_initiated_sign_in_for_a_registered_sp(saml_pair: SamlPair, rt: Runtime) -> None:
    """Refused by hubgate unless the connection allows it; the IdP only serves
    registered SPs that way."""
    entity_id, _acs = connections.sp_urls(rt, saml_pair.connection_id)
    assert saml_pair.idp.get("/saml/idp-initiated", params={"sp": "http://x"}).status_code == 400
    page = saml_pair.idp.get("/saml/idp-initiated", params={"sp": entity_id})
    data = {**hidden(page.text), "login": "alice@acme.test", "password": PASSWORD}
    posted = saml_pair.idp.post("/saml/sso", data=data)
    assert (
        posted.status_code == 200
        and "InResponseTo" not in base64.b64decode(hidden(posted.text)["SAMLResponse"]).decode()
    )
    answer = saml_pair.hub.post(local(form_action(posted.text)), data=hidden(posted.text))
    assert answer.status_code == 400 and "saml_unsolicited" in answer.text


# -- the dev IdP as a real subprocess ---------------------------------------------------


@dataclass
class RunningIdp:
    base_url: str
    folder: Path


@pytest.fixture(scope="module")
def running_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIdp]:
    folder = tmp_path_factory.mktemp("devidp")
    (folder / "users.toml").write_text(USERS_TOML)
    port = free_port()
    child = process.start(folder / "users.toml", folder / "keys", port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        process.wait_ready(child, base_url)
        yield RunningIdp(base_url, folder)
    finally:
        process.stop(child)
    assert child.returncode is not None


@pytest.fixture
def loop_rt(database_url: str) -> Iterator[Runtime]:
    """hubgate at a loopback base URL (the SP and redirect URI the IdP accepts),
    allowed to fetch from the loopback IdP."""
    runtime = build_runtime(
        make_settings(database_url, base_url=LOOPBACK_HUB, allow_private_idp_urls=True)
    )
    yield runtime
    runtime.db.engine.dispose()


@pytest.fixture
def loop_hub(loop_rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=loop_rt), base_url=LOOPBACK_HUB) as hub:
        yield hub


def oidc_acme(rt: Runtime, idp: RunningIdp, secret: str = "client-secret-1") -> int:
    issuer = oidc.issuer(idp.base_url)
    provider = parse_discovery(httpx.get(f"{issuer}/.well-known/openid-configuration").content,
                               issuer)  # fmt: skip
    return acme_with(
        rt, issuer=issuer, client_id="hubgate", client_secret=secret, provider=provider
    )


def oidc_sign_in(hub: TestClient, login: str, password: str = PASSWORD) -> httpx.Response:
    """Start at hubgate, sign in at the IdP's page; the IdP's answer (303 or 401)."""
    start = hub.get("/sso/acme/start?next=/acme", follow_redirects=False)
    assert start.status_code == 303, start.text
    page = httpx.get(start.headers["location"])
    assert page.status_code == 200 and "NOT FOR PRODUCTION" in page.text
    action = urlsplit(start.headers["location"])._replace(query="").geturl()
    data = {**hidden(page.text), "login": login, "password": password}
    return httpx.post(action, data=data)


def oidc_callback(hub: TestClient, login: str) -> dict[str, Any]:
    answer = oidc_sign_in(hub, login)
    assert answer.status_code == 303, answer.text
    callback = answer.headers["location"]
    assert callback.startswith(f"{LOOPBACK_HUB}/sso/oidc/")
    done = hub.get(local(callback), headers={"accept": "application/json"})
    assert done.status_code == 200, done.text
    body: dict[str, Any] = done.json()
    return body


def test_oidc_test_sign_in_ends_in_the_identity(
    running_idp: RunningIdp, loop_rt: Runtime, loop_hub: TestClient
) -> None:
    oidc_acme(loop_rt, running_idp)
    identity = oidc_callback(loop_hub, "alice@acme.test")["identity"]
    assert identity["subject"] == f"{running_idp.base_url}/oidc u-alice"
    assert (identity["email"], identity["email_verified"]) == ("alice@acme.test", True)
    assert identity["groups"] == ["hub-admins"]


def test_oidc_after_activation_in_managed_mode_makes_a_jit_account(
    running_idp: RunningIdp, loop_rt: Runtime, loop_hub: TestClient
) -> None:
    connection_id = oidc_acme(loop_rt, running_idp)
    oidc_callback(loop_hub, "alice@acme.test")
    activate_managed(loop_rt, connection_id)
    signed = oidc_callback(loop_hub, "carol@acme.test")
    assert (signed["org"], signed["created"]) == ("acme", True)
    assert role_of(loop_rt, "carol@acme.test") == "write"
    assert teams_of(loop_rt, "carol@acme.test")["research"] == "write"


def test_oidc_wrong_password_is_refused(
    running_idp: RunningIdp, loop_rt: Runtime, loop_hub: TestClient
) -> None:
    oidc_acme(loop_rt, running_idp)
    refused = oidc_sign_in(loop_hub, "alice@acme.test", "not the password")
    assert refused.status_code == 401 and "Wrong email or password" in refused.text
    assert "location" not in refused.headers


def test_saml_with_a_loopback_sp_through_the_subprocess(
    running_idp: RunningIdp, loop_rt: Runtime, loop_hub: TestClient
) -> None:
    """``loopback_sps``: an SP not in the users file, at a loopback URL, is served."""
    metadata = httpx.get(f"{running_idp.base_url}/saml/metadata").content
    connection_id = acme_with(loop_rt, metadata)
    start = loop_hub.get("/sso/acme/start", follow_redirects=False)
    page = httpx.get(start.headers["location"])
    data = {**hidden(page.text), "login": "u-carol", "password": PASSWORD}
    posted = httpx.post(f"{running_idp.base_url}/saml/sso", data=data)
    assert form_action(posted.text) == f"{LOOPBACK_HUB}/sso/saml/{connection_id}/acs"
    answer = loop_hub.post(
        local(form_action(posted.text)), data=hidden(posted.text),
        headers={"accept": "application/json"},
    )  # fmt: skip
    assert answer.json()["identity"]["email"] == "carol@acme.test"


def test_oidc_provider_refusals(running_idp: RunningIdp) -> None:
    """Bad clients and redirect URIs are shown, not redirected; the rest goes back
    to the client as RFC 6749 errors; tokens need the right secret, code,
    redirect_uri and verifier, once."""
    base = f"{running_idp.base_url}/oidc"
    good = {"client_id": "hubgate", "redirect_uri": "http://127.0.0.1:9/cb",
            "response_type": "code", "scope": "openid email", "state": "s1", "nonce": "n1",
            "code_challenge_method": "S256",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}  # fmt: skip
    for changes in ({"client_id": "nobody"}, {"redirect_uri": "https://evil.example/cb"}):
        shown = httpx.get(f"{base}/authorize", params={**good, **changes})
        assert shown.status_code == 400 and "location" not in shown.headers
    for changes in ({"code_challenge": ""}, {"code_challenge_method": "plain"},
                    {"scope": "email"}, {"response_type": "token"}):  # fmt: skip
        sent = httpx.get(f"{base}/authorize", params={**good, **changes})
        assert sent.status_code == 303
        query = parse_qs(urlsplit(sent.headers["location"]).query)
        assert query["state"] == ["s1"] and query["error"][0] in (
            "invalid_request", "invalid_scope", "unsupported_response_type",
        )  # fmt: skip
    signed = httpx.post(f"{base}/authorize",
                        data={**good, "login": "alice@acme.test", "password": PASSWORD})  # fmt: skip
    code = parse_qs(urlsplit(signed.headers["location"]).query)["code"][0]
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": good["redirect_uri"],
            "code_verifier": verifier}  # fmt: skip
    wrong_secret = httpx.post(f"{base}/token", data=form, auth=("hubgate", "nope"))
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    wrong_verifier = httpx.post(f"{base}/token", data={**form, "code_verifier": "x" * 43},
                                auth=("hubgate", "client-secret-1"))  # fmt: skip
    assert wrong_verifier.json()["error"] == "invalid_grant"  # and the code is now spent
    assert (
        httpx.get(f"{base}/userinfo", headers={"authorization": "Bearer nope"}).status_code == 401
    )
    assert httpx.post(f"{base}/token", content=b"x" * 100_000).status_code == 413


def test_oidc_tokens_with_client_secret_post(running_idp: RunningIdp) -> None:
    base = f"{running_idp.base_url}/oidc"
    params = {"client_id": "hubgate", "redirect_uri": "http://localhost:9/cb",
              "response_type": "code", "scope": "openid", "nonce": "n-2",
              "code_challenge_method": "S256",
              "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}  # fmt: skip
    signed = httpx.post(f"{base}/authorize",
                        data={**params, "login": "carol@acme.test", "password": PASSWORD})  # fmt: skip
    query = parse_qs(urlsplit(signed.headers["location"]).query)
    assert query["iss"] == [base]
    form = {"grant_type": "authorization_code", "code": query["code"][0],
            "redirect_uri": params["redirect_uri"], "client_id": "hubgate",
            "client_secret": "client-secret-1",
            "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"}  # fmt: skip
    tokens = httpx.post(f"{base}/token", data=form)
    assert tokens.status_code == 200 and tokens.headers["cache-control"] == "no-store"
    assert httpx.post(f"{base}/token", data=form).json()["error"] == "invalid_grant"  # once
    info = httpx.get(f"{base}/userinfo",
                     headers={"authorization": f"Bearer {tokens.json()['access_token']}"})  # fmt: skip
    assert info.json()["sub"] == "u-carol" and info.json()["groups"] == ["engineers", "ml-research"]


# -- the command and its users file -----------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.com", "10.0.0.1"])
def test_dev_idp_refuses_a_non_loopback_host(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_devidp.uvicorn, "run", pytest.fail)
    result = CliRunner().invoke(main, ["dev-idp", "--host", host])
    assert result.exit_code == 2
    assert "is not a loopback address" in result.output
    demo = CliRunner().invoke(main, ["demo", "--host", host])
    assert demo.exit_code == 2 and "is not a loopback address" in demo.output


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_dev_idp_serves_on_loopback_with_the_default_users(
    host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[dict[str, Any]] = []
    monkeypatch.setattr(cli_devidp.uvicorn, "run", lambda app, **kw: served.append(kw))
    result = CliRunner().invoke(main, ["dev-idp", "--host", host, "--keys", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert served[0]["host"] == host and served[0]["port"] == 8001
    assert (tmp_path / keys.KEY_FILE).stat().st_mode & 0o077 == 0
    assert load(DEFAULT_USERS).user("alice@acme.test") is not None


def test_a_bad_users_file_is_refused_with_its_reason(tmp_path: Path) -> None:
    for text, reason in (
        ("users = 3", "'users' must be a list"),
        ('[[users]]\nid = "a b"\nemail = "a@b.c"\nname = "A"\npassword = "p"\n', "'id' must be"),
        ('[[users]]\nid = "a"\nemail = "nope"\nname = "A"\npassword = "p"\n', "not an email"),
        ("[[oidc_clients]]\nclient_id = 'c'\nclient_secret = 's'\nredirect_uris = ['x']\n"
         "[[users]]\nid='a'\nemail='a@b.c'\nname='A'\npassword='p'\n", "http(s) URL"),
        ("unknown = 1", "Unknown top-level key"),
        ("[[users", "not valid TOML"),
    ):  # fmt: skip
        path = tmp_path / "users.toml"
        path.write_text(text)
        with pytest.raises(DirectoryInvalid, match=re.escape(reason)):
            load(path)
    result = CliRunner().invoke(main, ["dev-idp", "--users", str(path)])
    assert result.exit_code == 2 and "--users:" in result.output
    twice = {"users": [{"id": "a", "email": "a@b.c", "name": "A", "password": "p"}] * 2}
    with pytest.raises(DirectoryInvalid, match="share one user id"):
        parse(twice)


def test_oidc_client_redirects_are_exact_unless_loopback_is_allowed() -> None:
    exact = OidcClient("c", "s", ("http://127.0.0.1:8000/cb",))
    assert exact.allows("http://127.0.0.1:8000/cb")
    assert not exact.allows("http://127.0.0.1:8000/cb2")
    loop = OidcClient("c", "s", (), loopback_redirects=True)
    assert loop.allows("http://[::1]:9/x") and loop.allows("http://localhost/x")
    assert not loop.allows("http://127.0.0.1.evil.example/x")
    assert not loop.allows("javascript:alert(1)")


# -- the demo's dev IdP and the setup portal ---------------------------------------------


def test_the_demos_idp_serves_connections_the_setup_portal_makes(rt: Runtime) -> None:
    """A connection made in the portal is new to the dev IdP: a SAML SP on loopback
    gets the ACS its request names (never one elsewhere), and the setup client
    takes any loopback redirect URI; acme's registered SP keeps its one ACS."""
    info = demo.seed(rt)
    directory = demo.idp_directory(rt, info)
    entity_id, acs_url = f"{LOOPBACK_HUB}/sso/saml/9/metadata", f"{LOOPBACK_HUB}/sso/saml/9/acs"
    assert saml.destination_for(directory, entity_id, acs_url) == SamlSp(entity_id, acs_url)
    for sp, acs in (
        (entity_id, "https://attacker.example/acs"),
        ("https://attacker.example/sp", acs_url),
        (entity_id, None),
    ):
        with pytest.raises(saml.RequestRefused):
            saml.destination_for(directory, sp, acs)
    acme_sp, _acme_acs = connections.sp_urls(rt, info.connections["acme"])
    with pytest.raises(saml.RequestRefused, match="not the one registered"):
        saml.destination_for(directory, acme_sp, acs_url)
    client = directory.client(demo.SETUP_CLIENT_ID)
    assert client is not None and client.client_secret == info.idp.setup_client_secret
    assert client.allows(f"{LOOPBACK_HUB}/sso/oidc/9/callback")
    assert not client.allows("https://attacker.example/sso/oidc/9/callback")
    globex = directory.client(demo.CLIENT_ID)
    assert globex is not None and not globex.allows(f"{LOOPBACK_HUB}/sso/oidc/9/callback")


def test_the_demos_idp_home_page_shows_the_clients_to_paste(
    rt: Runtime, idp_key: keys.SigningKey
) -> None:
    info = demo.seed(rt)
    site = DevIdp(IN_PROCESS_IDP, demo.idp_directory(rt, info), idp_key)
    with TestClient(create_idp(site), base_url=IN_PROCESS_IDP) as idp:
        home = idp.get("/")
    assert home.status_code == 200
    row = re.search(
        rf"<code>{demo.SETUP_CLIENT_ID}</code></td><td><code>([^<]+)</code></td>\s*<td>([^<]+)</td>",
        home.text,
    )
    assert row is not None, home.text
    assert row.groups() == (info.idp.setup_client_secret, "any on loopback")
    assert "Any SAML SP on this machine" in home.text and "NOT FOR PRODUCTION" in home.text
