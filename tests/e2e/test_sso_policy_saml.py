"""The organization SSO policy (issue 5) against a real SAML IdP: SimpleSAMLphp.

Driven from the outside only: one hubgate server process and one IdP for the
whole module (tests/e2e/test_saml_simplesamlphp.py starts them the same way),
HTTP through :class:`~tests.e2e.idp.Browser`, and the ``hubgate`` CLI on the same
database for what an operator does. The tests keep apart by using their own IdP
users and orgs, not by restarting anything:

- ``acme`` (domain ``acme.test``) in managed mode: JIT, mappings, enforcement,
  the other org's domain, a user removed at the IdP;
- ``initech`` (domain ``initech.test``) in basic mode: freshness, its expiry,
  the join link;
- ``globex`` (domain ``globex.test``, no SSO): only owns a verified domain.

Each org's admin watches through the API (members, audit) from a session of
their own: acme's and initech's admins signed in through their org's SSO (a test
sign-in first, which verifies the connection), globex's admin with a password.
A refusal is checked to change nothing: the org's members, roles and teams, no
session for the browser, and no audit event but the IdP's verified identity and
the refusal itself (accounts, links, memberships and sessions made by sign-in
are all audited in the same transaction).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update

from hubgate.db.engine import create_database
from hubgate.db.models import Org, SsoAuthentication
from tests.conftest import _TABLES, PASSWORD, PG_URL
from tests.e2e.conftest import _hubgate_env, running_server
from tests.e2e.idp import Browser, IdpUser, running_idp, simplesamlphp_missing
from tests.e2e.test_saml_simplesamlphp import (
    HTML,
    HUBGATE_CLI,
    JSON,
    SERVER_ENV,
    Saml,
    log_in_at_idp,
    post_to_acs,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SESSION_COOKIE = "hubgate_session"
# What a refused sign-in leaves in the org's audit trail, newest first.
REFUSAL_TRAIL = ["sso.login_refused", "sso.identity_verified"]


# -- one hubgate and one IdP for the module ------------------------------------------


@pytest.fixture(scope="module")
def module_database(migrated_template: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty database shared by the module's tests (the per-test
    ``database_url`` fixture would mean one server and IdP per test)."""
    if PG_URL:
        database = create_database(PG_URL)
        with database.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE"))
        database.engine.dispose()
        return PG_URL
    target = tmp_path_factory.mktemp("sso-policy") / "hubgate.db"
    shutil.copy(migrated_template, target)
    return f"sqlite:///{target}"


@pytest.fixture(scope="module")
def saml(module_database: str) -> Iterator[Saml]:
    missing = simplesamlphp_missing()
    if missing:
        pytest.skip(missing)
    with running_idp() as idp, running_server(module_database, SERVER_ENV) as hubgate:
        state = Saml(
            hubgate=hubgate, idp=idp, env=_hubgate_env(module_database, hubgate, SERVER_ENV)
        )
        try:
            yield state
        finally:
            for browser in state.browsers:
                browser.client.close()


# -- the orgs ------------------------------------------------------------------------


@dataclass
class PolicyOrg:
    """An org as its admin sees it through the API."""

    saml: Saml
    name: str
    domain: str
    admin: Browser  # holds the admin's session
    connection_id: int | None = None

    @property
    def start_url(self) -> str:
        return f"{self.saml.hubgate}/sso/{self.name}/start?next=/{self.name}"

    def api(self, path: str) -> Any:
        answered = self.admin.client.get(f"{self.saml.hubgate}/api/v1/orgs/{self.name}{path}")
        assert answered.status_code == 200, f"{path}: {answered.text}"
        return answered.json()

    def members(self) -> dict[str, tuple[str, dict[str, str]]]:
        """email -> (org role, {team: team role})."""
        return {m["email"]: (m["role"], m["teams"]) for m in self.api("/members")}

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        """The org's audit events newer than event id ``after``, newest first."""
        page = self.api("/audit?limit=500")
        return [e for e in page["events"] if e["id"] > after]

    def mark(self) -> int:
        """The newest audit event's id: :meth:`events` after it shows what came next."""
        return max((e["id"] for e in self.events()), default=0)


def cli_with_password(saml: Saml, *args: str) -> dict[str, Any]:
    """``hubgate ...`` reading PASSWORD on stdin (``--password-stdin``)."""
    done = subprocess.run(
        [*HUBGATE_CLI, *args, "--password-stdin", "--json"], input=PASSWORD + "\n",
        env=dict(saml.env), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"hubgate {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    created = json.loads(done.stdout)
    assert isinstance(created, dict)
    return created


def add_connection(saml: Saml, org: str) -> int:
    """A connection of ``org`` from the IdP's metadata URL, which the IdP then trusts
    (``Saml.add_connection`` does this for ``acme`` only)."""
    printed = saml.cli_json(
        "sso", "connection", "add", "--org", org, "--saml-metadata", saml.idp.metadata_url
    )
    assert isinstance(printed, dict) and printed["state"] == "draft", printed
    saml.idp.register_sp(printed["sp_entity_id"], printed["acs_url"])
    return int(printed["id"])


def sign_in(
    saml: Saml,
    start_url: str,
    user: IdpUser,
    *,
    browser: Browser | None = None,
    accept: dict[str, str] = JSON,
) -> tuple[Browser, httpx.Response]:
    """A whole SP-initiated sign-in, by default from a fresh browser (so a fresh IdP
    session): hubgate's start URL, the IdP's form, the post to the ACS."""
    browser = browser or saml.browser()
    started = browser.get(start_url, follow=False)
    assert started.status_code == 303, started.text
    assert started.headers["location"].startswith(saml.idp.sso_url + "?"), started.headers
    fields = log_in_at_idp(browser, browser.follow(started), user)
    return browser, post_to_acs(browser, fields, accept)


def signed_in(saml: Saml, org: PolicyOrg, user: IdpUser, **kwargs: Any) -> Browser:
    browser, answered = sign_in(saml, org.start_url, user, **kwargs)
    assert answered.status_code == 200, answered.text
    assert answered.json()["org"] == org.name
    return browser


def me(saml: Saml, browser: Browser) -> httpx.Response:
    return browser.client.get(f"{saml.hubgate}/api/v1/me")


def membership(saml: Saml, browser: Browser, org: str) -> dict[str, Any]:
    answered = me(saml, browser)
    assert answered.status_code == 200, answered.text
    (found,) = [m for m in answered.json()["orgs"] if m["org"] == org]
    return dict(found)


def sso_org(saml: Saml, name: str, domain: str, mode: str) -> PolicyOrg:
    """``name`` with ``domain`` verified, its connection verified by a test sign-in of
    its admin (who then exists at the IdP) and activated, in ``mode``; the admin
    signs in through SSO and keeps that session."""
    admin_email = f"admin@{domain}"
    saml.cli_json("user", "create", admin_email)
    saml.cli_json("org", "create", name, "--admin", admin_email)
    saml.cli_json("domain", "add", "--org", name, domain)
    verified = saml.cli_json("domain", "verify", "--org", name, domain)
    assert isinstance(verified, dict) and verified["verified"] is True, verified
    connection_id = add_connection(saml, name)
    idp_admin = saml.idp.set_user(f"{name}-admin", email=admin_email, name=f"{name} admin")
    start_url = f"{saml.hubgate}/sso/{name}/start?next=/{name}"
    tester, tested = sign_in(saml, start_url, idp_admin)
    # A connection not active yet only shows the Identity: no session, no account.
    assert tested.status_code == 200, tested.text
    assert tested.json()["identity"]["email"] == admin_email
    assert SESSION_COOKIE not in tester.client.cookies
    activated = saml.cli_json("sso", "connection", "activate", str(connection_id))
    assert isinstance(activated, dict) and activated["state"] == "active", activated
    saml.cli_json("sso", "mode", "--org", name, mode)
    admin, answered = sign_in(saml, start_url, idp_admin)
    assert answered.status_code == 200, answered.text
    assert answered.json()["linked"] is True and answered.json()["created"] is False
    return PolicyOrg(saml, name, domain, admin, connection_id)


@pytest.fixture(scope="module")
def acme(saml: Saml) -> PolicyOrg:
    return sso_org(saml, "acme", "acme.test", "managed")


@pytest.fixture(scope="module")
def initech(saml: Saml) -> PolicyOrg:
    return sso_org(saml, "initech", "initech.test", "basic")


@pytest.fixture(scope="module")
def globex(saml: Saml) -> PolicyOrg:
    """No SSO; its verified domain is all it needs. Its admin signs in with a password."""
    cli_with_password(saml, "user", "create", "admin@globex.test")
    saml.cli_json("org", "create", "globex", "--admin", "admin@globex.test")
    saml.cli_json("domain", "add", "--org", "globex", "globex.test")
    saml.cli_json("domain", "verify", "--org", "globex", "globex.test")
    admin = saml.browser()
    answered = admin.client.post(
        f"{saml.hubgate}/api/v1/login", json={"email": "admin@globex.test", "password": PASSWORD}
    )
    assert answered.status_code == 200, answered.text
    return PolicyOrg(saml, "globex", "globex.test", admin)


# -- checks --------------------------------------------------------------------------


def assert_refused_changing_nothing(
    org: PolicyOrg,
    browser: Browser,
    answered: httpx.Response,
    code: str,
    *,
    mark: int,
    members: dict[str, tuple[str, dict[str, str]]],
) -> None:
    """403 with ``code``, audited as ``sso.login_refused`` under the answer's trace id,
    and nothing else: the same members, no session, no other audit event."""
    assert answered.status_code == 403, answered.text
    body = answered.json()
    assert body["error"] == code, body
    trail = org.events(after=mark)
    assert [e["action"] for e in trail] == REFUSAL_TRAIL, trail
    assert (trail[0]["reason"], trail[0]["trace_id"]) == (code, body["trace_id"])
    assert org.members() == members
    assert SESSION_COOKIE not in browser.client.cookies
    assert me(org.saml, browser).status_code == 401


def age_sso_authentications_for_expiry_test(
    saml: Saml, user_id: int, org: str, age: timedelta
) -> None:
    """Make ``user_id``'s SSO authentications for ``org`` ``age`` old, in the database:
    the one step of these tests not taken from the outside (waiting an hour is not
    a test)."""
    database = create_database(saml.env["HUBGATE_DATABASE_URL"])
    org_id = select(Org.id).where(Org.name == org).scalar_subquery()
    try:
        with database.engine.begin() as connection:
            aged = connection.execute(
                update(SsoAuthentication)
                .where(SsoAuthentication.user_id == user_id, SsoAuthentication.org_id == org_id)
                .values(authenticated_at=datetime.now(UTC) - age)
            )
            assert aged.rowcount == 1
    finally:
        database.engine.dispose()


# -- managed mode ------------------------------------------------------------------------


def test_managed_mode_creates_the_account_just_in_time(saml: Saml, acme: PolicyOrg) -> None:
    """The connection went draft -> verified (a test sign-in) -> active before
    managed mode; a new person at the IdP then gets an account, the default role
    and the default team, and a session whose SSO is fresh."""
    setup = [e["action"] for e in reversed(acme.events())]
    tested = setup.index("sso.identity_verified")
    activated = setup.index("sso.connection_activated")
    assert tested < activated < setup.index("sso.settings_changed")
    assert "sso.login" not in setup[:activated]  # the test sign-in signed nobody in
    (activation,) = acme.api("/audit?action=sso.connection_activated")["events"]
    assert activation["data"] == {"from": "verified", "skip_test": False}
    (connection,) = acme.api("/sso/connections")
    assert connection["state"] == "active"

    nina = saml.idp.set_user("nina", name="Nina New", groups=["all-staff"])
    mark = acme.mark()
    browser, answered = sign_in(saml, acme.start_url, nina, accept=HTML)
    assert answered.status_code == 303, answered.text
    assert answered.headers["location"] == "/acme"
    assert SESSION_COOKIE in browser.client.cookies
    person = me(saml, browser).json()
    assert [e["address"] for e in person["emails"]] == ["nina@acme.test"]
    assert person["display_name"] == "Nina New"
    found = membership(saml, browser, "acme")
    assert (found["role"], found["teams"]) == ("write", {"everyone": "write"})
    assert found["sso"] == "fresh" and found["sso_fresh_until"]
    assert acme.members()["nina@acme.test"] == ("write", {"everyone": "write"})
    actions = {e["action"] for e in acme.events(after=mark)}
    assert {"sso.jit_created", "sso.linked", "sso.login"} <= actions


def test_a_role_removed_at_the_idp_is_removed_at_the_next_sign_in(
    saml: Saml, acme: PolicyOrg
) -> None:
    mapped = saml.cli_json("sso", "role-map", "--org", "acme", "--map", "groups=acme-owners:admin")
    assert mapped == [{"attribute": "groups", "value": "acme-owners", "role": "admin"}]
    rita = saml.idp.set_user("rita", groups=["acme-owners", "research"])
    signed_in(saml, acme, rita)
    assert acme.members()["rita@acme.test"][0] == "admin"

    rita = saml.idp.set_user("rita", groups=[])
    signed_in(saml, acme, rita)
    members = acme.members()
    assert members["rita@acme.test"][0] == "write"  # back to the default role
    assert members["admin@acme.test"][0] == "admin"  # set by hand, not by a mapping
    changes = [e["data"] for e in acme.events() if e["action"] == "role.mapped"]
    assert changes[:2] == [
        {"from": "admin", "to": "write", "source": "default"},
        {"from": "write", "to": "admin", "source": "mapping"},
    ]


def test_team_mapping_added_and_removed(saml: Saml, acme: PolicyOrg) -> None:
    """A mapped team follows the IdP's group and the mapping; a team membership
    set by hand stays."""
    research = saml.cli_json("team", "create", "research", "--org", "acme")
    assert isinstance(research, dict)
    saml.cli_json("team", "create", "infra", "--org", "acme")
    saml.cli_json("sso", "team-map", "--org", "acme", "--map", "groups=ml-research:research:write")
    tess = saml.idp.set_user("tess", groups=["ml-research"])
    browser = signed_in(saml, acme, tess)
    assert membership(saml, browser, "acme")["teams"] == {"everyone": "write", "research": "write"}
    saml.cli_json(
        "team", "add-member", "infra", "tess@acme.test", "--org", "acme", "--role", "admin"
    )

    tess = saml.idp.set_user("tess", groups=[])  # the group removed at the IdP
    browser = signed_in(saml, acme, tess)
    assert membership(saml, browser, "acme")["teams"] == {"everyone": "write", "infra": "admin"}

    tess = saml.idp.set_user("tess", groups=["ml-research"])  # back at the IdP, but
    assert saml.cli_json("sso", "team-map", "--org", "acme") == []  # the mapping is gone
    signed_in(saml, acme, tess)
    assert acme.members()["tess@acme.test"] == ("write", {"everyone": "write", "infra": "admin"})
    moves = [e["data"] for e in acme.events() if e["action"] == "team.mapped"]
    assert moves[:2] == [
        {"added": [], "removed": [research["id"]]},  # the audit names teams by id
        {"added": [research["id"]], "removed": []},
    ]


def test_another_orgs_verified_domain_is_refused(
    saml: Saml, acme: PolicyOrg, globex: PolicyOrg
) -> None:
    """acme's IdP asserts an address in globex's verified domain: no account, no
    membership anywhere, no session."""
    xavier = saml.idp.set_user("xavier", email="x@globex.test")
    marks = {org.name: (org.mark(), org.members()) for org in (acme, globex)}
    browser, answered = sign_in(saml, acme.start_url, xavier)
    mark, members = marks["acme"]
    assert_refused_changing_nothing(
        acme, browser, answered, "domain_mismatch", mark=mark, members=members
    )
    mark, members = marks["globex"]
    assert globex.events(after=mark) == [] and globex.members() == members
    # The account can still be made by hand: the refused sign-in made none.
    assert cli_with_password(saml, "user", "create", "x@globex.test")["email"] == "x@globex.test"


def test_enforcement_lifted_and_restored(saml: Saml, acme: PolicyOrg) -> None:
    """A password account in acme's domain: refused while managed mode enforces SSO."""
    cli_with_password(saml, "user", "create", "dora@acme.test")
    credentials = {"email": "dora@acme.test", "password": PASSWORD}

    def password_login() -> httpx.Response:
        return httpx.post(f"{saml.hubgate}/api/v1/login", json=credentials, timeout=20.0)

    refused = password_login()
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "sso_enforced"
    assert refused.json()["details"]["sso_url"] == "/sso/acme/start"
    try:
        saml.cli_json("sso", "enforce", "--org", "acme", "off")
        lifted = password_login()
        assert lifted.status_code == 200, lifted.text
    finally:
        restored = saml.cli_json("sso", "enforce", "--org", "acme", "on")
    assert isinstance(restored, dict) and restored["enforced"] is True
    again = password_login()
    assert again.status_code == 403 and again.json()["error"] == "sso_enforced"
    events = saml.cli_json("audit", "--org", "acme", "--action", "sso.enforcement_changed")
    assert isinstance(events, list)
    assert [(e["actor"], e["data"]) for e in events] == [
        ("operator:cli", {"from": "off", "to": "on"}),
        ("operator:cli", {"from": "on", "to": "off"}),
    ]


def test_a_user_removed_at_the_idp_gets_no_new_sso_authentication(
    saml: Saml, acme: PolicyOrg
) -> None:
    sam = saml.idp.set_user("sam")
    browser = signed_in(saml, acme, sam)
    fresh_until = membership(saml, browser, "acme")["sso_fresh_until"]
    saml.idp.remove_user("sam")
    saml.idp.end_sessions()
    mark, members = acme.mark(), acme.members()

    started = browser.get(acme.start_url, follow=False)
    assert started.status_code == 303, started.text
    refused = browser.idp_login(browser.follow(started), "sam", sam.password)
    assert Browser.saml_response_form(refused) is None  # the IdP answers nothing
    assert browser.login_form(refused) is not None  # but its form again
    assert acme.events(after=mark) == [] and acme.members() == members
    # The session from before holds the same SSO authentication, not a newer one.
    assert membership(saml, browser, "acme")["sso_fresh_until"] == fresh_until
    # The admin ends it now; the account is acme's (JIT), so its sessions end too.
    ended = saml.cli_json("sso", "end-sessions", "--org", "acme", "sam@acme.test")
    assert isinstance(ended, dict) and ended["ended"] >= 2, ended
    assert me(saml, browser).status_code == 401


# -- basic mode --------------------------------------------------------------------------


def test_basic_mode_blocks_private_access_until_sso_and_after_its_expiry(
    saml: Saml, initech: PolicyOrg
) -> None:
    saml.cli_json("resource", "create", "model", "secret", "--org", "initech", "--private")
    saml.cli_json("resource", "create", "model", "open", "--org", "initech", "--public")
    pat_id = int(cli_with_password(saml, "user", "create", "pat@initech.test")["id"])
    saml.cli_json("member", "add", "pat@initech.test", "--org", "initech")
    browser = saml.browser()
    logged_in = browser.client.post(
        f"{saml.hubgate}/api/v1/login", json={"email": "pat@initech.test", "password": PASSWORD}
    )
    assert logged_in.status_code == 200, logged_in.text

    def api(name: str) -> httpx.Response:
        return browser.client.get(f"{saml.hubgate}/api/v1/orgs/initech/resources/model/{name}")

    def check(name: str) -> httpx.Response:
        uri = {"x-original-uri": f"/initech/models/{name}"}
        return browser.client.get(f"{saml.hubgate}/auth/check", headers=uri)

    def assert_blocked() -> None:
        private = api("secret")
        assert private.status_code == 401, private.text
        assert private.json()["error"] == "sso_required"
        assert private.json()["details"]["sso_url"].endswith("/sso/initech/start?next=/initech")
        checked = check("secret")
        assert (checked.status_code, checked.headers.get("x-hubgate-reason")) == (
            401,
            "sso_required",
        )
        assert api("open").status_code == 200 and check("open").status_code == 200

    def assert_open() -> None:
        assert api("secret").status_code == 200 and check("secret").status_code == 200

    assert_blocked()
    password_session = browser.client.cookies[SESSION_COOKIE]
    pat = saml.idp.set_user("pat", email="pat@initech.test")
    _, answered = sign_in(saml, initech.start_url, pat, browser=browser)
    assert answered.status_code == 200, answered.text
    assert (answered.json()["user_id"], answered.json()["linked"]) == (pat_id, True)
    assert_open()
    # Linking rotated the session: the password session before it is over.
    assert browser.client.cookies[SESSION_COOKIE] != password_session
    old = httpx.get(
        f"{saml.hubgate}/api/v1/me", cookies={SESSION_COOKIE: password_session}, timeout=20.0
    )
    assert old.status_code == 401, old.text
    assert membership(saml, browser, "initech")["sso"] == "fresh"

    age_sso_authentications_for_expiry_test(saml, pat_id, "initech", timedelta(hours=2))
    assert_open()  # two hours are well within the default week
    settings = saml.cli_json("sso", "settings", "--org", "initech", "--session-timeout", "1h")
    assert isinstance(settings, dict) and settings["session_timeout_seconds"] == 3600
    assert_blocked()
    _, again = sign_in(saml, initech.start_url, pat, browser=browser)  # SSO again
    assert again.status_code == 200, again.text
    assert_open()


def test_the_join_link_before_and_after_rotation(saml: Saml, initech: PolicyOrg) -> None:
    """Basic mode admits no one uninvited; the join link admits with the default
    role; a rotated link dies and the new one works."""
    for person in ("quinn", "rhea"):
        saml.cli_json("user", "create", f"{person}@initech.test")
    quinn = saml.idp.set_user("quinn", email="quinn@initech.test")
    rhea = saml.idp.set_user("rhea", email="rhea@initech.test")
    mark, members = initech.mark(), initech.members()
    browser, answered = sign_in(saml, initech.start_url, quinn)
    assert_refused_changing_nothing(
        initech, browser, answered, "not_member", mark=mark, members=members
    )

    first = saml.cli_json("sso", "join-link", "--org", "initech", "--rotate")
    assert isinstance(first, dict)
    _, joined = sign_in(saml, first["join_url"], quinn)
    assert joined.status_code == 200, joined.text
    assert joined.json()["next"] == "/initech"
    assert initech.members()["quinn@initech.test"] == ("write", {"everyone": "write"})
    assert "sso.join" in {e["action"] for e in initech.events(after=mark)}

    second = saml.cli_json("sso", "join-link", "--org", "initech", "--rotate")
    assert isinstance(second, dict) and second["join_url"] != first["join_url"]
    dead = saml.browser().get(first["join_url"], follow=False)
    assert dead.status_code == 404, dead.text
    assert "rhea@initech.test" not in initech.members()
    _, joined = sign_in(saml, second["join_url"], rhea)
    assert joined.status_code == 200, joined.text
    assert initech.members()["rhea@initech.test"] == ("write", {"everyone": "write"})


# -- account pre-hijacking -----------------------------------------------------------------


def squat(hubgate: str, browser: Browser, address: str) -> None:
    """Sign up with someone else's address (nobody confirms it) from ``browser``."""
    answered = browser.client.post(
        f"{hubgate}/api/v1/signup", json={"email": address, "password": PASSWORD}
    )
    assert answered.status_code == 201, answered.text


def password_of(hubgate: str, browser: Browser, address: str) -> httpx.Response:
    return browser.client.post(
        f"{hubgate}/api/v1/login", json={"email": address, "password": PASSWORD}
    )


def test_a_pre_registration_never_blocks_the_owners_sign_in(saml: Saml, acme: PolicyOrg) -> None:
    """Account pre-hijacking, classic-federated merge: someone registered
    pia@acme.test before pia ever came. The org's IdP vouches for pia, so her
    sign-in makes an account of her own; the pre-registrant's password now opens
    nothing (401: the address belongs to an account with no password)."""
    squatter = saml.browser()
    squat(saml.hubgate, squatter, "pia@acme.test")
    # Managed mode refuses the pre-registrant's password for the org's domain.
    assert password_of(saml.hubgate, squatter, "pia@acme.test").json()["error"] == "sso_enforced"
    pia = saml.idp.set_user("pia", name="Pia Owner")
    browser, answered = sign_in(saml, acme.start_url, pia)
    assert answered.status_code == 200, answered.text
    assert (answered.json()["created"], answered.json()["linked"]) == (True, False)
    assert acme.members()["pia@acme.test"] == ("write", {"everyone": "write"})
    assert me(saml, browser).json()["display_name"] == "Pia Owner"
    assert password_of(saml.hubgate, squatter, "pia@acme.test").status_code == 401


def test_a_pre_registrant_in_basic_mode_holds_nothing_once_the_owner_signs_up(
    saml: Saml, initech: PolicyOrg
) -> None:
    """Unexpired session: the pre-registrant signs up with una@initech.test and
    stays signed in, but may make no token. The real una signs up (the address was
    never confirmed, so it is free), confirms it in her own session and signs in
    through the org's IdP. The pre-registrant's session is gone with its account."""
    squatter = saml.browser()
    squat(saml.hubgate, squatter, "una@initech.test")
    assert password_of(saml.hubgate, squatter, "una@initech.test").status_code == 200
    token = squatter.client.post(
        f"{saml.hubgate}/api/v1/me/tokens", json={"name": "kept", "scopes": ["read"]},
        headers={"x-csrf-token": me(saml, squatter).json()["csrf_token"]},
    )  # fmt: skip
    assert token.status_code == 403 and token.json()["error"] == "account_unverified"

    una = saml.browser()
    squat(saml.hubgate, una, "una@initech.test")
    assert me(saml, squatter).status_code == 401
    assert password_of(saml.hubgate, una, "una@initech.test").status_code == 200
    outbox = saml.cli_json("mail", "outbox", "--to", "una@initech.test")
    assert isinstance(outbox, list)
    mail = next(m for m in outbox if "Confirm" in m["subject"])  # the newest: una's own
    link = re.search(r"token=([A-Za-z0-9_-]+)", mail["body"])
    assert link is not None
    confirmed = una.client.post(
        f"{saml.hubgate}/api/v1/verify-email", json={"token": link.group(1)},
        headers={"x-csrf-token": me(saml, una).json()["csrf_token"]},
    )  # fmt: skip
    assert confirmed.status_code == 200, confirmed.text
    added = saml.cli_json("member", "add", "--org", "initech", "una@initech.test")
    assert isinstance(added, dict), added
    idp_una = saml.idp.set_user("una", email="una@initech.test")
    _, linked = sign_in(saml, initech.start_url, idp_una, browser=una)
    assert linked.status_code == 200, linked.text
    assert (linked.json()["created"], linked.json()["linked"]) == (False, True)
