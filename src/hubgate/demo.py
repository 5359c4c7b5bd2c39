"""The demo data behind ``hubgate demo``: two orgs signing in through the dev IdP,
and a third whose IT admin connects it in the setup portal.

- ``acme``, **managed** through SAML: domain ``acme.test`` verified, a SAML
  connection made from the dev IdP's metadata and activated, default role
  ``read``. Only alice has an account beforehand (acme's first admin, no
  password); carol and dave get theirs just in time at their first sign-in.
- ``globex``, **basic** through OpenID Connect: domain ``globex.test`` verified,
  an OIDC connection to the dev IdP. bob (admin) and grace (write) keep their
  hubgate passwords; private content needs a fresh SSO sign-in on top.
- Both map groups ``hub-admins`` -> admin, ``engineers`` -> write and
  ``ml-research`` -> team ``research`` (write). Both have public and private
  resources, some in ``research``; acme has an ``inference`` team token for
  ``research`` (the forward-auth ``curl`` lines). ``dan@partner.test`` has a
  password and no org.
- ``initech``, SSO **off**: domain ``initech.test`` verified, the same mappings,
  no connection, no resources. It is where a newcomer tries the setup portal
  (``hubgate sso setup-link``) against the dev IdP: erin, its admin (no
  password), runs the test sign-in.

The ``.env`` functions at the end write and remove the file that points the CLI,
run in the demo's folder, at the demo (the tour's ``hubgate`` commands).

Everything is created by the operator through the usual services, so it is
audited like real work (the connections are activated with ``skip_test``,
which the audit log records). :func:`idp_directory` is the dev IdP's users file
for the same people, with acme's SAML SP and globex's OIDC client registered
exactly; any other SAML SP on loopback is served too (the ACS its AuthnRequest
asks for, when that is a loopback URL), and the client :data:`SETUP_CLIENT_ID`
takes any loopback redirect URI: what the setup portal needs.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from hubgate.access import OrgRole, ResourceKind, TeamRole, Visibility
from hubgate.audit import Actor
from hubgate.config import Settings
from hubgate.db.models import Org, SsoConnection, User
from hubgate.devidp import keys, oidc, process, saml
from hubgate.devidp.keys import SigningKey, ephemeral
from hubgate.devidp.users import Directory, OidcClient, SamlSp, to_document
from hubgate.devidp.users import User as IdpUser
from hubgate.operator import create_account, operator, operator_principal
from hubgate.orgs import resources, service, team_tokens
from hubgate.provisioning import mappings as scim_mappings
from hubgate.runtime import Runtime
from hubgate.sso import activation, connections, domains, mappings, policy
from hubgate.sso.oidc.discovery import parse_discovery

__all__ = [
    "DEFAULT_IDP_URL",
    "DemoIdp",
    "DemoInfo",
    "ForeignEnvFile",
    "check_env_file",
    "describe",
    "dev_idp_running",
    "idp_directory",
    "remove_env_file",
    "seed",
    "write_env_file",
]

DEFAULT_IDP_URL = "http://127.0.0.1:8001"
TEAM = "research"
CLIENT_ID = "hubgate-globex"
SETUP_CLIENT_ID = "hubgate"


@dataclass(frozen=True, slots=True)
class DemoUser:
    email: str
    name: str
    groups: tuple[str, ...]  # at the dev IdP; empty: not at the IdP
    role: str | None = None  # a membership seeded in the org of the email's domain
    password: bool = False  # a hubgate password (the demo's one password)


@dataclass(frozen=True, slots=True)
class DemoOrg:
    name: str
    display_name: str
    domain: str
    kind: str  # "saml" | "oidc" | "": no connection (the setup portal makes one)
    mode: str
    default_role: OrgRole


@dataclass(frozen=True, slots=True)
class DemoResource:
    org: str
    kind: ResourceKind
    name: str
    visibility: Visibility
    team: str | None
    description: str


ORGS = (
    DemoOrg("acme", "Acme Corp", "acme.test", "saml", "managed", OrgRole.READ),
    DemoOrg("globex", "Globex", "globex.test", "oidc", "basic", OrgRole.WRITE),
    DemoOrg("initech", "Initech", "initech.test", "", "off", OrgRole.WRITE),
)
USERS = (
    DemoUser("alice@acme.test", "Alice Anders", ("hub-admins", "ml-research"), "admin"),
    DemoUser("carol@acme.test", "Carol Chen", ("engineers", "ml-research")),
    DemoUser("dave@acme.test", "Dave Diaz", ("staff",)),
    DemoUser("bob@globex.test", "Bob Brown", ("hub-admins",), "admin", password=True),
    DemoUser("grace@globex.test", "Grace Green", ("engineers", "ml-research"), "write", True),
    DemoUser("erin@initech.test", "Erin Evans", ("hub-admins",), "admin"),
    DemoUser("dan@partner.test", "Dan (not a member)", (), password=True),
)
ROLE_MAPPINGS = (("hub-admins", OrgRole.ADMIN), ("engineers", OrgRole.WRITE))
TEAM_MAPPINGS = (("ml-research", TEAM, TeamRole.WRITE),)
_MODEL, _DATASET, _DEPLOYMENT, _SPACE = (
    ResourceKind.MODEL, ResourceKind.DATASET, ResourceKind.DEPLOYMENT, ResourceKind.SPACE,
)  # fmt: skip
_PUBLIC, _PRIVATE = Visibility.PUBLIC, Visibility.PRIVATE
RESOURCES = (
    DemoResource("acme", _MODEL, "llama-mini", _PUBLIC, None, "A small public model."),
    DemoResource("acme", _MODEL, "secret-model", _PRIVATE, None, "Private to acme members."),
    DemoResource("acme", _DATASET, "eval-set", _PRIVATE, TEAM, "Only the research team."),
    DemoResource("acme", _DEPLOYMENT, "chat", _PRIVATE, TEAM, "A chat model deployment."),
    DemoResource("acme", _SPACE, "playground", _PUBLIC, None, "A public demo app."),
    DemoResource("globex", _MODEL, "open-forecast", _PUBLIC, None, "A public model."),
    DemoResource("globex", _MODEL, "pricing-model", _PRIVATE, None, "Private to globex."),
    DemoResource("globex", _DATASET, "customer-logs", _PRIVATE, TEAM, "Only globex research."),
)


@dataclass(frozen=True, slots=True)
class DemoIdp:
    """The dev IdP the demo's connections point at: its URL, its key, globex's
    OIDC client secret and the setup portal's (:data:`SETUP_CLIENT_ID`)."""

    base_url: str = DEFAULT_IDP_URL
    key: SigningKey = field(default_factory=ephemeral)
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    setup_client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))


@dataclass(frozen=True, slots=True)
class DemoInfo:
    password: str
    idp: DemoIdp
    connections: dict[str, int]  # org name -> connection id
    team_token: str
    team_token_id: int
    orgs: tuple[DemoOrg, ...] = ORGS
    users: tuple[DemoUser, ...] = USERS
    resources: tuple[DemoResource, ...] = RESOURCES


def new_password() -> str:
    """A fresh demo password (long enough for the password policy)."""
    return "demo-" + secrets.token_urlsafe(9)


def seed(rt: Runtime, idp: DemoIdp | None = None, password: str | None = None) -> DemoInfo:
    """Create the demo data in one transaction; the database must be empty and migrated."""
    idp, password, actor = idp or DemoIdp(), password or new_password(), operator()
    with rt.db.transaction() as db:
        people = {u.email: _account(db, rt, actor, u, password) for u in USERS if _seeded(u)}
        made = {o.name: _org(db, rt, actor, o, people, idp) for o in ORGS}
        for item in RESOURCES:
            org = made[item.org][0]
            resources.create(
                db, actor, operator_principal(), org, item.kind, item.name,
                item.visibility, item.team, item.description,
            )  # fmt: skip
        acme = made["acme"][0]
        token = team_tokens.create(
            db, actor, operator_principal(), acme, service.get_team(db, acme, TEAM),
            "demo-inference", ["inference"], None, rt.now(),
        )  # fmt: skip
        ids = {name: row.id for name, (_org, row) in made.items() if row is not None}
    return DemoInfo(password, idp, ids, token.secret, token.row.id)


def _seeded(person: DemoUser) -> bool:
    return person.role is not None or person.password


def _account(db: Session, rt: Runtime, actor: Actor, person: DemoUser, password: str) -> User:
    return create_account(
        db, rt, actor, person.email, password=password if person.password else None,
        display_name=person.name, verified=True,
    )  # fmt: skip


def _members(demo: DemoOrg) -> list[DemoUser]:
    return [u for u in USERS if u.role is not None and u.email.endswith("@" + demo.domain)]


def _org(
    db: Session, rt: Runtime, actor: Actor, demo: DemoOrg, people: dict[str, User], idp: DemoIdp
) -> tuple[Org, SsoConnection | None]:
    """The org, its members, team, mappings, verified domain and (unless the
    setup portal is to make it) its active connection."""
    first, *others = _members(demo)
    org = service.create_org(db, actor, demo.name, demo.display_name, people[first.email])
    principal = operator_principal()
    for person in others:
        role = OrgRole.parse(person.role or "read")
        service.add_member(db, actor, principal, org, people[person.email], role)
    service.create_team(db, actor, principal, org, TEAM, "Research")
    _mappings(db, actor, org)
    domains.add(db, rt, actor, principal, org, demo.domain)
    domains.verify_by_operator(db, rt, actor, org, demo.domain)
    policy.update_defaults(db, rt, actor, principal, org, default_role=demo.default_role)
    if not demo.kind:
        return org, None
    connection = _connection(db, rt, actor, org, demo, idp)
    domains.assign_connection(db, actor, principal, org, demo.domain, connection.id)
    activation.activate(db, actor, principal, connection, skip_test=True)
    policy.set_mode(db, rt, actor, principal, org, demo.mode)
    return org, connection


def _mappings(db: Session, actor: Actor, org: Org) -> None:
    principal = operator_principal()
    roles = [mappings.RoleRule(mappings.GROUPS, group, role) for group, role in ROLE_MAPPINGS]
    scim_mappings.set_role_mappings(db, actor, principal, org, roles)
    teams = [(mappings.GROUPS, group, team, role) for group, team, role in TEAM_MAPPINGS]
    mappings.set_team_mappings(db, actor, principal, org, teams)


def _connection(
    db: Session, rt: Runtime, actor: Actor, org: Org, demo: DemoOrg, idp: DemoIdp
) -> SsoConnection:
    """From the dev IdP's own metadata or discovery document, as an operator would
    paste them (made here, so that seeding needs no running IdP)."""
    principal = operator_principal()
    if demo.kind == "saml":
        metadata = saml.idp_metadata(idp.base_url, idp.key)
        return connections.create_saml(db, rt, actor, principal, org, metadata)
    issuer = oidc.issuer(idp.base_url)
    provider = parse_discovery(json.dumps(oidc.discovery(idp.base_url)).encode(), issuer)
    return connections.create_oidc(
        db, rt, actor, principal, org, issuer=issuer, client_id=CLIENT_ID,
        client_secret=idp.client_secret, provider=provider,
    )  # fmt: skip


def idp_directory(rt: Runtime, info: DemoInfo) -> Directory:
    """The dev IdP's users file: the demo's people at the IdP (the demo's one
    password), acme's SAML SP and globex's OIDC client registered exactly.

    For the setup portal, whose connections do not exist yet: ``loopback_sps``
    serves any SAML SP whose entity id and requested ACS are loopback URLs (the
    dev IdP reads the ACS from the AuthnRequest and posts only there: no fetch of
    SP metadata, no URL off this machine), and :data:`SETUP_CLIENT_ID` takes any
    loopback redirect URI (RFC 8252 §7.3 style)."""
    entity_id, acs_url = connections.sp_urls(rt, info.connections["acme"])
    users = tuple(
        IdpUser(f"u-{u.email.split('@')[0]}", u.email, u.name, info.password, u.groups)
        for u in info.users
        if u.groups
    )
    globex = OidcClient(
        CLIENT_ID,
        info.idp.client_secret,
        (connections.redirect_uri(rt, info.connections["globex"]),),
    )
    setup = OidcClient(SETUP_CLIENT_ID, info.idp.setup_client_secret, loopback_redirects=True)
    return Directory(users, (SamlSp(entity_id, acs_url),), (globex, setup), loopback_sps=True)


def describe(info: DemoInfo, base_url: str, cli: str = "hubgate") -> str:
    """The guided tour, what exists and the curl lines: printed before the demo
    serves. ``cli`` is how to run hubgate's command from the demo's folder."""
    base = base_url.rstrip("/")
    return "\n".join(
        (_tour(info, base, cli), _orgs(info), _people(info), _resources(info), _token(info, base))
    )


def _tour(info: DemoInfo, base: str, cli: str) -> str:
    idp = info.idp.base_url
    return f"""\
hubgate demo: {base}
dev IdP:      {idp}  (SAML metadata {idp}/saml/metadata, OIDC issuer {idp}/oidc)
              a development identity provider: NOT FOR PRODUCTION
              OIDC client for the setup portal: client id {SETUP_CLIENT_ID}, \
secret {info.idp.setup_client_secret}

One password for every account, in hubgate and at the dev IdP: {info.password}

A short tour
 1. Open {base}/login and enter alice@acme.test: acme is in managed mode, so
    hubgate sends you to the dev IdP (SAML). Sign in there as alice@acme.test
    with the password: you are back on hubgate's home page, admin of acme
    (group hub-admins) and in its research team (group ml-research):
    {base}/acme/datasets/eval-set opens.
 2. Sign out and do the same as carol@acme.test: she had no account; it is made
    just in time, with role write (group engineers) and team research.
    dave@acme.test (group staff) gets acme's default role, read, and its default
    team, everyone, only: {base}/acme/models/secret-model opens for him,
    {base}/acme/datasets/eval-set does not.
 3. bob@globex.test has a hubgate password: sign in with it at {base}/login.
    globex is in basic mode: {base}/globex shows the SSO banner and its private
    models stay closed until you follow it through the dev IdP (OpenID Connect);
    then {base}/globex/models/pricing-model opens, and bob is admin (hub-admins).
 4. dan@partner.test (a password, no org) sees public models only:
    {base}/acme/models/llama-mini opens, {base}/acme/models/secret-model does not.
 5. The audit log of every step: {base}/acme/audit and {base}/globex/audit
    (as an admin); API docs at {base}/api/v1/docs.
 6. The setup portal, as the IT admin of initech (SSO off, no connection yet).
    In another terminal, in this folder (its .env points the CLI at this demo):
      {cli} sso setup-link --org initech --email it@initech.test
      {cli} mail outbox
    The first prints a one-time link; the second shows it mailed to the IT admin
    (the demo has no SMTP server: mail stays in the outbox).
    Open the link; create a SAML connection from the metadata URL
    {idp}/saml/metadata (or an OIDC one: issuer {idp}/oidc,
    client id {SETUP_CLIENT_ID} and the secret above); run the test sign-in at the dev IdP
    as erin@initech.test; activate it. Then
      {cli} audit --org initech
    lists each step.
"""


def _orgs(info: DemoInfo) -> str:
    lines = [
        f"  {o.name:<7} {o.mode:<8} {_connection_of(info, o)}  domain {o.domain} (verified)  "
        f"default role {o.default_role.label}"
        for o in info.orgs
    ]
    rules = ", ".join(f"{group} -> {role.label}" for group, role in ROLE_MAPPINGS)
    teams = ", ".join(f"{g} -> team {t} ({r.label})" for g, t, r in TEAM_MAPPINGS)
    return "\n".join(["Organizations:", *lines, f"  mappings (all): {rules}; {teams}", ""])


def _connection_of(info: DemoInfo, demo: DemoOrg) -> str:
    if not demo.kind:
        return "no connection (the setup portal's)"
    return f"{demo.kind.upper()} connection {info.connections[demo.name]} (active)"


def _people(info: DemoInfo) -> str:
    lines = []
    for u in info.users:
        where = f"{u.role} (seeded)" if u.role else ("just in time" if u.groups else "no org")
        login = "password + IdP" if u.password and u.groups else "password" if u.password else "IdP"
        if any(o.domain == u.email.split("@")[1] and not o.kind for o in info.orgs):
            login = "test sign-in"  # (at the setup portal: the org has no connection yet)
        groups = ", ".join(u.groups) or "-"
        lines.append(f"  {u.email:<19} {login:<15} {where:<16} groups: {groups}")
    return "\n".join(["People (sign-in, membership, IdP groups):", *lines, ""])


def _resources(info: DemoInfo) -> str:
    lines = [
        f"  {r.visibility.value:<8} {r.kind.value:<11} {r.org}/{r.name}"
        + (f"  (team {r.team})" if r.team else "")
        for r in info.resources
    ]
    return "\n".join(["Resources:", *lines, ""])


def _token(info: DemoInfo, base: str) -> str:
    return f"""\
Team token for acme/{TEAM} (scope inference, id {info.team_token_id}):
  {info.team_token}

Ask forward-auth whether the token may call the deployment (200), then read the
dataset (403 scope_insufficient):
  curl -i {base}/auth/check -H 'Authorization: Bearer {info.team_token}' \\
    -H 'X-Original-URI: /acme/deployments/chat/predict' -H 'X-Original-Method: POST'
  curl -i {base}/auth/check -H 'Authorization: Bearer {info.team_token}' \\
    -H 'X-Original-URI: /acme/datasets/eval-set'
"""


class Server(Protocol):
    """What :class:`Leaving` needs of a ``uvicorn.Server``."""

    should_exit: bool
    started: bool

    def run(self) -> None: ...


STARTUP_FAILURE = 3  # uvicorn's exit status when the server could not start


@dataclass
class Leaving:
    """Where SIGTERM and SIGHUP take the demo (see :func:`leaving_on_signals`)."""

    serving: Server | None = None
    received: int | None = None

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # While the server runs, an exception raised here can land inside one of
        # the event loop's callbacks, which logs it and goes on serving: a closed
        # terminal left the demo running. The server is asked to stop instead,
        # and :meth:`serve` leaves once it has.
        if self.serving is None:
            raise SystemExit(128 + signum)
        self.received = signum
        self.serving.should_exit = True

    def serve(self, server: Server) -> None:
        """Run ``server`` as ``uvicorn.run`` does, then leave as the signal asked."""
        self.serving = server
        try:
            server.run()
        except KeyboardInterrupt:  # Ctrl+C, raised again by uvicorn after its shutdown
            pass
        finally:
            self.serving = None
        if self.received is not None:
            raise SystemExit(128 + self.received)
        if not server.started:
            raise SystemExit(STARTUP_FAILURE)


@contextmanager
def leaving_on_signals() -> Iterator[Leaving]:
    """SIGTERM and SIGHUP leave the block as an exception does, so the dev IdP is
    stopped and its folder removed, as Ctrl+C does; a server run through the
    yielded :meth:`Leaving.serve` shuts down gracefully first.

    Their default action ends the process at once, running no ``finally``; and
    uvicorn, after its own graceful shutdown on SIGTERM, raises the signal again
    with whatever handler was there before it started: this one."""
    leaving = Leaving()
    previous = {s: signal.signal(s, leaving.on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield leaving
    finally:
        for handled, handler in previous.items():
            signal.signal(handled, handler)


@contextmanager
def dev_idp_running(rt: Runtime, info: DemoInfo, port: int) -> Iterator[None]:
    """The dev IdP as a child process on ``port`` with the demo's users file and
    key (in a private temporary folder, removed afterwards), until the block ends."""
    with tempfile.TemporaryDirectory(prefix="hubgate-demo-idp-") as folder:
        users, key_dir = Path(folder) / "users.json", Path(folder) / "keys"
        users.write_text(json.dumps(to_document(idp_directory(rt, info)), indent=2))
        keys.save(key_dir, info.idp.key)
        host = urlsplit(info.idp.base_url).hostname or "127.0.0.1"
        child = process.start(users, key_dir, port, host=host)
        try:
            process.wait_ready(child, info.idp.base_url)
            yield
        finally:
            process.stop(child)


# -- the .env the tour's CLI commands read --------------------------------------------

ENV_FILE = ".env"
ENV_MARK = "# Written by `hubgate demo` for its tour's CLI commands; removed when it stops."


class ForeignEnvFile(RuntimeError):
    """A ``.env`` that the demo did not write is in the way; it is left alone."""


def _ours(path: Path) -> bool:
    """A regular file (not a link) whose first line is :data:`ENV_MARK`."""
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as opened:
        return opened.readline(len(ENV_MARK) + 2).rstrip(b"\r\n") == ENV_MARK.encode()


def check_env_file(folder: Path) -> None:
    """Refuse before anything starts when ``folder/.env`` is someone else's."""
    path = folder / ENV_FILE
    if (path.exists() or path.is_symlink()) and not _ours(path):
        raise ForeignEnvFile(
            f"{path} exists and was not written by hubgate demo; the tour's CLI commands "
            "read their settings from .env in the demo's folder. Run the demo from another "
            "folder, or move that file."
        )


def _quoted(value: str) -> str:
    """A single-quoted dotenv value. python-dotenv expands ``${NAME}`` even there,
    and a line break would end the value: such a value is refused."""
    if "${" in value or not value.isprintable():
        raise ValueError(f"{value!r} cannot go into .env: it holds ${{ or a control character.")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def write_env_file(folder: Path, settings: Settings) -> Path:
    """``folder/.env`` for the CLI run beside the demo: development mode, the demo's
    database and URL. Nothing in it is secret (development uses the built-in,
    public secret). Written whole, then moved in place (never through a link)."""
    check_env_file(folder)
    values = {
        "HUBGATE_ENV": settings.env.value, "HUBGATE_DATABASE_URL": settings.database_url,
        "HUBGATE_BASE_URL": settings.base_url, "HUBGATE_ALLOW_PRIVATE_IDP_URLS": "true",
    }  # fmt: skip
    lines = [ENV_MARK, "# A throw-away demo on loopback: NOT FOR PRODUCTION."]
    lines += [f"{name}={_quoted(value)}" for name, value in values.items()]
    handle, temporary = tempfile.mkstemp(prefix=".env-", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        os.replace(temporary, folder / ENV_FILE)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
        raise
    return folder / ENV_FILE


def remove_env_file(folder: Path) -> None:
    """Remove ``folder/.env`` if it is still the demo's: a later ``hubgate serve``
    there must not inherit development mode."""
    path = folder / ENV_FILE
    if _ours(path):
        path.unlink(missing_ok=True)
