"""hubgate's SAML service provider against a real IdP: Debian's SimpleSAMLphp 1.19.

Real processes: hubgate under uvicorn, SimpleSAMLphp under ``php -S``
(tests/e2e/idp.py), and the ``hubgate`` CLI to create the connection from the
IdP's metadata URL, as an operator would. The "browser" is httpx with one
cookie jar per person and redirects followed by hand: hubgate's start URL, the
IdP's login form, the IdP's auto-submit form, hubgate's ACS.

The SP entity id holds the connection id, so the IdP is started first (its
metadata does not depend on any SP), the connection is created from its
metadata, and the IdP is then told about the new SP: SimpleSAMLphp reads its
configuration on every request, so that needs no restart.

Single logout runs through the same browser: the IdP's own logout
(``SingleLogoutService.php?ReturnTo=``) and hubgate's sign-out, each signed both
ways (the IdP signs and checks logout messages: ``sign.logout``,
``validate.logout`` in its hosted metadata).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import World
from tests.e2e.conftest import _hubgate_env, running_server
from tests.e2e.idp import (
    USERS,
    Browser,
    IdpInfo,
    IdpUser,
    parse_forms,
    running_idp,
    simplesamlphp_missing,
)

pytestmark = pytest.mark.e2e

ORG = "acme"
ADMIN = "admin@acme.test"
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}
SERVER_ENV = {"HUBGATE_ALLOW_PRIVATE_IDP_URLS": "true"}
HUBGATE_CLI = [str(Path(sys.executable).with_name("hubgate"))]


@dataclass(frozen=True)
class Connection:
    id: int
    sp_entity_id: str
    acs_url: str


@dataclass
class Saml:
    """hubgate and the IdP, running on the test's database, with org ``acme``."""

    hubgate: str
    idp: IdpInfo
    env: Mapping[str, str]
    browsers: list[Browser] = field(default_factory=list)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*HUBGATE_CLI, *args], env=dict(self.env), capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip

    def cli_json(self, *args: str) -> object:
        done = self.cli(*args, "--json")
        assert done.returncode == 0, f"hubgate {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return json.loads(done.stdout)

    def add_connection(
        self, *, allow_idp_initiated: bool = False, register: bool = True
    ) -> Connection:
        """``hubgate sso connection add`` from the IdP's metadata URL; the IdP then
        trusts the new SP (entity id and ACS URL as hubgate printed them), unless
        ``register`` is false."""
        flags = ["--allow-idp-initiated"] if allow_idp_initiated else []
        printed = self.cli_json(
            "sso", "connection", "add", "--org", ORG, "--saml-metadata", self.idp.metadata_url,
            *flags,
        )  # fmt: skip
        assert isinstance(printed, dict), printed
        connection = Connection(int(printed["id"]), printed["sp_entity_id"], printed["acs_url"])
        base = f"{self.hubgate}/sso/saml/{connection.id}"
        assert (connection.sp_entity_id, connection.acs_url) == (f"{base}/metadata", f"{base}/acs")
        if register:
            self.idp.register_sp(connection.sp_entity_id, connection.acs_url)
        return connection

    def verified_identities(self) -> list[dict[str, object]]:
        """The data of the org's ``sso.identity_verified`` audit events, oldest first:
        subject, email and groups of each verified sign-in, and the certificate
        that verified it."""
        events = self.cli_json("audit", "--org", ORG, "--action", "sso.identity_verified")
        assert isinstance(events, list), events
        return [event["data"] for event in reversed(events)]

    def verified_people(self) -> list[dict[str, object]]:
        """:meth:`verified_identities` without the certificate (one IdP key here)."""
        return [
            {key: value for key, value in data.items() if key != "certificate"}
            for data in self.verified_identities()
        ]

    def browser(self) -> Browser:
        browser = Browser()
        self.browsers.append(browser)
        return browser


@pytest.fixture
def saml(database_url: str, world: World) -> Iterator[Saml]:
    missing = simplesamlphp_missing()
    if missing:
        pytest.skip(missing)
    world.org(ORG, world.user(ADMIN))
    with running_idp() as idp, running_server(database_url, SERVER_ENV) as hubgate:
        env = _hubgate_env(database_url, hubgate, SERVER_ENV)
        state = Saml(hubgate=hubgate, idp=idp, env=env)
        try:
            yield state
        finally:
            for browser in state.browsers:
                browser.client.close()


# -- flows ---------------------------------------------------------------------------


def start_at_hubgate(saml: Saml, browser: Browser, next_path: str = "/acme") -> httpx.Response:
    """GET /sso/acme/start: a redirect to the IdP's SSO URL with an AuthnRequest;
    returns the page the IdP shows after its own redirects (the login form)."""
    started = browser.get(
        f"{saml.hubgate}/sso/{ORG}/start", params={"next": next_path}, follow=False
    )
    assert started.status_code in (302, 303), started.text
    location = started.headers["location"]
    assert location.startswith(saml.idp.sso_url + "?"), location
    assert "SAMLRequest=" in location and "RelayState=" in location, location
    return browser.follow(started)


def log_in_at_idp(browser: Browser, page: httpx.Response, user: IdpUser) -> dict[str, str]:
    """Sign in at the IdP's form (unless this browser's IdP session still holds);
    returns the fields of the IdP's auto-submit form to the ACS."""
    answered = page
    if Browser.saml_response_form(page) is None:
        answered = browser.idp_login(page, user.username, user.password)
    form = Browser.saml_response_form(answered)
    assert form is not None, f"the IdP sent no SAMLResponse:\n{answered.text[:3000]}"
    assert form.method == "POST"
    return {"action": form.action, **form.fields}


def post_to_acs(
    browser: Browser, fields: Mapping[str, str], headers: Mapping[str, str] = JSON
) -> httpx.Response:
    """The browser's auto-submit of the IdP's form to hubgate's ACS."""
    data = {k: v for k, v in fields.items() if k in ("SAMLResponse", "RelayState")}
    return browser.request("POST", fields["action"], data=data, headers=headers, follow=False)


def sp_initiated(
    saml: Saml, browser: Browser, connection: Connection, user: IdpUser
) -> dict[str, str]:
    fields = log_in_at_idp(browser, start_at_hubgate(saml, browser), user)
    assert fields["action"] == connection.acs_url
    return fields


def idp_initiated(
    saml: Saml, browser: Browser, connection: Connection, user: IdpUser
) -> dict[str, str]:
    page = browser.get(saml.idp.idp_initiated_url(connection.sp_entity_id))
    fields = log_in_at_idp(browser, page, user)
    assert fields["action"] == connection.acs_url
    return fields


def signed_in(saml: Saml, connection: Connection, user: IdpUser) -> dict[str, str]:
    """A whole SP-initiated sign-in from a fresh browser (so a fresh IdP session);
    returns the IdP's form fields. Only checks that hubgate did not refuse it."""
    browser = saml.browser()
    fields = sp_initiated(saml, browser, connection, user)
    answered = post_to_acs(browser, fields)
    assert answered.status_code < 400, answered.text
    return fields


def asserted_xml(fields: Mapping[str, str]) -> str:
    """The SAML response the IdP sent, as XML (what the IdP side asserted)."""
    return base64.b64decode(fields["SAMLResponse"]).decode()


def identity_of(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 200, response.text
    identity = response.json()["identity"]
    assert isinstance(identity, dict)
    return identity


def error_of(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    code = response.json()["error"]
    assert isinstance(code, str)
    return code


def assert_identity(identity: Mapping[str, object], user: IdpUser, connection: Connection) -> None:
    assert identity["connection_id"] == connection.id
    assert identity["subject"] == user.subject  # the IdP's persistent NameID (uid)
    assert identity["email"] == user.email
    assert identity["display_name"] == user.display_name
    assert identity["groups"] == list(user.groups)
    attributes = identity["attributes"]
    assert isinstance(attributes, dict)
    assert attributes["uid"] == [user.subject]
    assert attributes["email"] == [user.email]


# -- tests ---------------------------------------------------------------------------


def test_the_idp_publishes_metadata_hubgate_reads(saml: Saml) -> None:
    """The connection hubgate makes from the IdP's metadata URL, and the SP
    metadata hubgate publishes for it."""
    connection = saml.add_connection()
    metadata = httpx.get(connection.sp_entity_id, timeout=10.0)
    assert metadata.status_code == 200, metadata.text
    assert f'entityID="{connection.sp_entity_id}"' in metadata.text
    assert connection.acs_url in metadata.text
    listed = saml.cli_json("sso", "connection", "list", "--org", ORG)
    assert isinstance(listed, list) and len(listed) == 1, listed
    assert listed[0]["idp_entity_id"] == saml.idp.entity_id
    assert listed[0]["idp_sso_url"] == saml.idp.sso_url
    assert len(listed[0]["idp_certificates_expire"]) == 1  # the one it signs with


def test_the_idp_trusts_hubgate_by_its_published_sp_metadata(saml: Saml) -> None:
    """The IdP admin loads hubgate's SP metadata instead of typing values in:
    SimpleSAMLphp honours what it declares (AuthnRequestsSigned, NameIDFormat)."""
    connection = saml.add_connection(register=False)
    metadata = httpx.get(connection.sp_entity_id, timeout=10.0)
    assert metadata.status_code == 200, metadata.text
    saml.idp.register_sp_metadata(metadata.text)
    browser = saml.browser()
    answered = post_to_acs(browser, sp_initiated(saml, browser, connection, USERS["alice"]))
    identity = identity_of(answered)
    assert identity["email"] == USERS["alice"].email
    assert identity["subject"] in (USERS["alice"].username, USERS["alice"].email)


def test_sp_initiated_sign_in_gives_the_identity(saml: Saml) -> None:
    connection = saml.add_connection()
    for user in (USERS["alice"], USERS["bob"]):
        browser = saml.browser()
        answered = post_to_acs(browser, sp_initiated(saml, browser, connection, user))
        assert_identity(identity_of(answered), user, connection)
        assert answered.json().get("next", "/acme") == "/acme"


def test_sp_initiated_sign_in_renders_a_page_for_a_browser(saml: Saml) -> None:
    connection = saml.add_connection()
    browser = saml.browser()
    answered = post_to_acs(browser, sp_initiated(saml, browser, connection, USERS["alice"]), HTML)
    assert answered.status_code in (200, 303), answered.text
    if answered.status_code == 200:
        assert answered.headers["content-type"].startswith("text/html")


def test_idp_initiated_sign_in_is_refused_unless_the_connection_allows_it(saml: Saml) -> None:
    connection = saml.add_connection()
    browser = saml.browser()
    fields = idp_initiated(saml, browser, connection, USERS["alice"])
    assert error_of(post_to_acs(browser, fields)) == "saml_unsolicited"
    # A person's browser gets a page, not JSON; the same response is still refused.
    again = idp_initiated(saml, browser, connection, USERS["alice"])  # the IdP session: no form
    page = post_to_acs(browser, again, HTML)
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")


def test_idp_initiated_sign_in_is_accepted_when_allowed(saml: Saml) -> None:
    connection = saml.add_connection(allow_idp_initiated=True)
    browser = saml.browser()
    answered = post_to_acs(browser, idp_initiated(saml, browser, connection, USERS["bob"]))
    assert_identity(identity_of(answered), USERS["bob"], connection)


def test_a_wrong_password_at_the_idp_yields_no_response(saml: Saml) -> None:
    connection = saml.add_connection()
    browser = saml.browser()
    login_page = start_at_hubgate(saml, browser)
    refused = browser.idp_login(login_page, "alice", "not-alicepass")
    assert refused.status_code == 200
    assert Browser.saml_response_form(refused) is None
    assert browser.login_form(refused) is not None  # the IdP shows its form again
    assert not any(str(r.url).startswith(saml.hubgate + "/sso/saml/") for r in browser.history)
    # The same sign-in then goes through with the right password.
    fields = log_in_at_idp(browser, refused, USERS["alice"])
    assert_identity(identity_of(post_to_acs(browser, fields)), USERS["alice"], connection)


def test_certificate_rotation(saml: Saml) -> None:
    """The IdP moves to a new signing key: refused until the connection lists
    its certificate too, then accepted with either."""
    connection = saml.add_connection()
    saml.idp.use_signing_cert(1)
    browser = saml.browser()
    fields = sp_initiated(saml, browser, connection, USERS["alice"])
    assert error_of(post_to_acs(browser, fields)) == "saml_signature_invalid"

    added = saml.cli_json(
        "sso", "connection", "add-cert", str(connection.id), "--cert",
        str(saml.idp.certificate_files[1]),
    )  # fmt: skip
    assert isinstance(added, dict)
    assert len(added["idp_certificates_expire"]) == 2, added
    listed = saml.cli_json("sso", "connection", "list", "--org", ORG)
    assert isinstance(listed, list)
    assert [len(c["idp_certificates_expire"]) for c in listed if c["id"] == connection.id] == [2]

    for index in (1, 0):
        saml.idp.use_signing_cert(index)
        browser = saml.browser()
        fields = sp_initiated(saml, browser, connection, USERS["alice"])
        assert_identity(identity_of(post_to_acs(browser, fields)), USERS["alice"], connection)


@pytest.mark.parametrize("allow_idp_initiated", [False, True], ids=["sp-only", "idp-allowed"])
def test_a_replayed_response_is_refused(saml: Saml, allow_idp_initiated: bool) -> None:
    """The browser posts the IdP's form a second time (back button, or a
    captured response replayed with the victim's cookies)."""
    connection = saml.add_connection(allow_idp_initiated=allow_idp_initiated)
    browser = saml.browser()
    fields = sp_initiated(saml, browser, connection, USERS["alice"])
    identity_of(post_to_acs(browser, fields))
    again = post_to_acs(browser, fields)
    assert again.status_code == 400, again.text  # refused either way
    assert error_of(again) == "saml_replayed"


def test_a_replayed_idp_initiated_response_is_refused(saml: Saml) -> None:
    """Where unsolicited responses are allowed, the replay cache is all that
    stops a captured response, from any browser."""
    connection = saml.add_connection(allow_idp_initiated=True)
    browser = saml.browser()
    fields = idp_initiated(saml, browser, connection, USERS["bob"])
    identity_of(post_to_acs(browser, fields))
    assert error_of(post_to_acs(browser, fields)) == "saml_replayed"
    assert error_of(post_to_acs(saml.browser(), fields)) == "saml_replayed"


def test_groups_changed_at_the_idp_arrive_with_the_next_sign_in(saml: Saml) -> None:
    """The IdP admin moves alice to other groups between two sign-ins; the IdP's
    configuration is rewritten, not restarted."""
    connection = saml.add_connection()
    alice = USERS["alice"]
    first = signed_in(saml, connection, alice)
    moved = saml.idp.set_user("alice", groups=["ml-platform", "reviewers"])
    assert (moved.password, moved.email, moved.subject) == (alice.password, alice.email, "alice")
    second = signed_in(saml, connection, moved)
    assert "hubgate-admins" in asserted_xml(first) and "hubgate-admins" not in asserted_xml(second)
    assert "ml-platform" in asserted_xml(second)
    expected = [
        {"subject": "alice", "email": alice.email, "groups": list(alice.groups)},
        {"subject": "alice", "email": alice.email, "groups": ["ml-platform", "reviewers"]},
    ]
    assert saml.verified_people() == expected


def test_users_added_and_removed_at_the_idp(saml: Saml) -> None:
    """A new user with its own NameID and an email in another domain signs in; a
    removed user is refused at the IdP's own login form, even from a browser
    whose IdP session was ended."""
    connection = saml.add_connection()
    carol = saml.idp.set_user(
        "carol", email="carol.new@acme.test", name="Carol", groups=["research"], uid="u-1234"
    )
    signed_in(saml, connection, carol)
    assert saml.verified_people() == [
        {"subject": "u-1234", "email": "carol.new@acme.test", "groups": ["research"]}
    ]

    browser = saml.browser()
    fields = sp_initiated(saml, browser, connection, USERS["bob"])
    assert post_to_acs(browser, fields).status_code < 400
    saml.idp.remove_user("bob")
    saml.idp.end_sessions()
    login_page = browser.get(saml.idp.idp_initiated_url(connection.sp_entity_id))
    refused = browser.idp_login(login_page, "bob", USERS["bob"].password)
    assert Browser.saml_response_form(refused) is None
    assert browser.login_form(refused) is not None
    assert "bob" not in saml.idp.users and "carol" in saml.idp.users


# -- single logout -------------------------------------------------------------------

IDP_SESSION_COOKIE = "SimpleSAML"  # its PHP session (config.php)


def active_connection(saml: Saml, *, by_metadata: bool) -> Connection:
    """A connection made from the IdP's metadata (so with its SingleLogoutService),
    made active for org ``acme`` in managed mode with ``acme.test`` verified; the
    IdP trusts hubgate by its published SP metadata, or ``by_metadata`` false, by
    values typed in (entity id, ACS and SLO URLs, the SP certificate)."""
    connection = saml.add_connection(register=False)
    metadata = httpx.get(connection.sp_entity_id, timeout=10.0)
    assert metadata.status_code == 200, metadata.text
    slo_url = f"{saml.hubgate}/sso/saml/{connection.id}/slo"
    assert f'Location="{slo_url}"' in metadata.text
    if by_metadata:
        saml.idp.register_sp_metadata(metadata.text)
    else:
        body = metadata.text.split("<ds:X509Certificate>")[1].split("</ds:X509Certificate>")[0]
        certificate = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
        saml.idp.register_sp(
            connection.sp_entity_id, connection.acs_url, slo_url=slo_url,
            certificate_pem=certificate,
        )  # fmt: skip
    saml.cli_json("domain", "add", "--org", ORG, "acme.test")
    saml.cli_json("domain", "verify", "--org", ORG, "acme.test")
    saml.cli_json("sso", "connection", "activate", str(connection.id), "--skip-test")
    saml.cli_json("sso", "mode", "--org", ORG, "managed")
    return connection


def session_through_idp(saml: Saml, connection: Connection, user: IdpUser) -> Browser:
    """A fresh browser signed in to hubgate through the IdP (so holding a session
    at both)."""
    browser = saml.browser()
    answered = post_to_acs(browser, sp_initiated(saml, browser, connection, user))
    assert answered.status_code == 200, answered.text
    assert has_session(saml, browser)
    assert browser.client.cookies.get(IDP_SESSION_COOKIE)
    return browser


def has_session(saml: Saml, browser: Browser) -> bool:
    return browser.get(f"{saml.hubgate}/api/v1/me", follow=False).status_code == 200


def logout_events(saml: Saml, action: str) -> list[dict[str, object]]:
    events = saml.cli_json("audit", "--org", ORG, "--action", action)
    assert isinstance(events, list), events
    return events


def test_an_idp_initiated_logout_ends_the_hubgate_session(saml: Saml) -> None:
    """The IdP's SingleLogoutService?ReturnTo= logs the browser out of every SP
    it signed in to: hubgate gets the IdP's signed LogoutRequest by HTTP-Redirect,
    ends alice's session (not bob's), and answers with a signed LogoutResponse the
    IdP accepts, which then returns the browser to ReturnTo."""
    connection = active_connection(saml, by_metadata=True)
    alice = session_through_idp(saml, connection, USERS["alice"])
    bob = session_through_idp(saml, connection, USERS["bob"])
    finished = alice.get(saml.idp.logout_url(saml.idp.metadata_url))
    assert finished.status_code == 200 and str(finished.url) == saml.idp.metadata_url, (
        finished.text[:2000] + saml.idp.log_tail()
    )
    slo = f"{saml.hubgate}/sso/saml/{connection.id}/slo?"
    at_hubgate = [r for r in alice.history if str(r.url).startswith(slo)]
    assert len(at_hubgate) == 1 and "SAMLRequest=" in str(at_hubgate[0].url)
    assert at_hubgate[0].status_code == 303
    assert at_hubgate[0].headers["location"].startswith(saml.idp.slo_url + "?SAMLResponse=")
    assert not has_session(saml, alice) and has_session(saml, bob)
    (ended,) = logout_events(saml, "sso.logout")
    assert ended["reason"] == "saml_idp_logout", ended
    assert logout_events(saml, "sso.logout_refused") == []


@pytest.mark.parametrize("by_metadata", [True, False], ids=["sp-metadata", "typed-in"])
def test_sign_out_at_hubgate_ends_the_idp_session(saml: Saml, by_metadata: bool) -> None:
    """hubgate's sign-out ends its own session, then sends the browser to the IdP
    with a signed LogoutRequest (found from the IdP's metadata); the IdP ends its
    session and answers, and hubgate verifies the answer and says so. Signing in
    again at the IdP then asks for the password."""
    connection = active_connection(saml, by_metadata=by_metadata)
    alice = session_through_idp(saml, connection, USERS["alice"])
    page = alice.get(f"{saml.hubgate}/", params=None)
    forms = [f for f in parse_forms(page.text, str(page.url)) if f.action.endswith("/logout")]
    assert forms, page.text[:2000]
    out = alice.submit(forms[0], follow=False)
    assert out.status_code == 303
    assert out.headers["location"].startswith(saml.idp.slo_url + "?SAMLRequest="), out.headers
    assert not has_session(saml, alice)  # at once, before the IdP answers
    answered = alice.follow(out)
    assert answered.status_code == 200, answered.text[:2000] + saml.idp.log_tail()
    assert str(answered.url).startswith(f"{saml.hubgate}/sso/saml/{connection.id}/slo?")
    assert "You are signed out of hubgate, and of" in answered.text, answered.text[:2000]
    (answer,) = logout_events(saml, "sso.logout_answered")
    assert answer["reason"] == "Success", answer
    again = start_at_hubgate(saml, alice)
    assert alice.login_form(again) is not None, again.text[:2000]
    fields = log_in_at_idp(alice, again, USERS["alice"])
    assert post_to_acs(alice, fields).status_code == 200 and has_session(saml, alice)
