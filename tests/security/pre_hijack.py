"""The cast of the account pre-hijacking attacks (Sudhodanan & Paverd, "Pre-hijacked
accounts", USENIX Security 2022): a pre-registrant who claims a victim's address
before the victim arrives, the victim, and the org's IdP (SAML or OIDC) that
vouches for the victim; tests/security/test_pre_hijacking*.py drive them."""

from __future__ import annotations

import base64
import json
import re
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import select

from hubgate.app import create_app
from hubgate.db.models import AuditEvent, OutboxMail, User
from hubgate.runtime import Runtime
from tests.conftest import PASSWORD, World, sign_in
from tests.integration.sso_world import SsoOrg, oidc_org, person, sso_org
from tests.integration.test_oidc_flow import Provider, install

ATTACKER_PASSWORD = "the pre-registrant's own passphrase"
VICTIM = "v@acme.example"
JSON = {"accept": "application/json"}


def browser(rt: Runtime) -> TestClient:
    """A new browser: no cookies."""
    return TestClient(create_app(runtime=rt))


@dataclass
class Idp:
    """An org's IdP, SAML or OIDC: it vouches for any address it is told to."""

    sso: SsoOrg
    provider: Provider | None  # None: SAML

    def sign_in(
        self, client: TestClient, email: str, *, subject: str | None = None, start: str = ""
    ) -> dict[str, Any]:
        """The person signs in at the IdP as ``email``; hubgate's JSON answer (the
        start's own answer when hubgate does not send them to the IdP)."""
        subject = subject or f"idp|{email}"
        name = self.sso.org.name
        path = start or f"/sso/{name}/start?next=/{name}"
        started = client.get(path, headers=JSON, follow_redirects=False)
        if started.status_code != 303:
            return {"status": started.status_code, **started.json()}
        location = started.headers["location"]
        if self.provider is None:
            query = parse_qs(urlsplit(location).query)
            request = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
            answer = self.sso.answer(
                etree.fromstring(request).get("ID"), **person(email, name_id=subject)
            )
            return self.sso.post(client, answer, query["RelayState"][0])
        self.provider.claims.update(email=email, sub=subject, email_verified=True)
        callback = client.get(
            f"/sso/oidc/{self.sso.connection_id}/callback",
            params=self.provider.authorize(location), headers=JSON,
        )  # fmt: skip
        return {"status": callback.status_code, **callback.json()}


def make_idp(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch, protocol: str, mode: str
) -> Idp:
    """acme's SSO switched on: the connection active and the org in ``mode``."""
    if protocol == "saml":
        idp = Idp(sso_org(rt, world), None)
    else:
        provider = install(monkeypatch)
        idp = Idp(oidc_org(rt, world), provider)
    idp.sso.set_mode(mode)
    return idp


class Account(NamedTuple):
    """One account, told apart from a later one that reuses its id (SQLite does)."""

    id: int
    created_at: datetime


def account(rt: Runtime, user_id: int) -> Account | None:
    with rt.db.transaction() as db:
        user = db.get(User, user_id)
        return Account(user.id, user.created_at) if user is not None else None


def alive(rt: Runtime, which: Account) -> bool:
    return account(rt, which.id) == which


@dataclass
class Attacker:
    """The pre-registrant: the account they made, their browser (signed in when
    they could be) and the personal token they made (when they could)."""

    account: Account | None  # None: the sign-up was refused
    address: str
    client: TestClient
    token: str | None

    def gained_nothing(self, rt: Runtime, victim_id: int) -> None:
        """Nothing the pre-registrant holds reaches the victim's account: not their
        session, password or token, and no account of theirs keeps the address."""
        assert account(rt, victim_id) != self.account, "the owner is in the pre-registered account"
        me = self.client.get("/api/v1/me")
        assert me.status_code == 401 or self._apart(me.json(), victim_id), me.text
        again = browser(rt).post(
            "/api/v1/login", json={"email": self.address, "password": ATTACKER_PASSWORD}
        )
        assert again.status_code != 200, f"the pre-registrant's password signs in: {again.text}"
        assert not knows_password(rt, victim_id, ATTACKER_PASSWORD)
        if self.token is not None:
            bearer = {"authorization": f"Bearer {self.token}"}
            check = {"x-original-uri": "/acme/models/weights", "x-original-method": "GET"}
            assert browser(rt).get("/auth/check", headers={**bearer, **check}).status_code in (
                401,
                403,
            ), "the pre-registrant's token still reads acme's private model"
            with_token = browser(rt).get("/api/v1/me", headers=bearer)
            assert with_token.status_code == 401 or self._apart(with_token.json(), victim_id)

    def _apart(self, me: dict[str, Any], victim_id: int) -> bool:
        """An account of the pre-registrant's own: not the victim's, without their address."""
        return me["id"] != victim_id and self.address not in [e["address"] for e in me["emails"]]


def knows_password(rt: Runtime, user_id: int, password: str) -> bool:
    with rt.db.transaction() as db:
        user = db.get(User, user_id)
        return user is not None and rt.passwords.verify(user.password_hash, password)


def pre_register(rt: Runtime, address: str, *, token: bool = True) -> Attacker:
    """Sign up with ``address`` (never verified), sign in when allowed, and try
    to make a personal token. A refused sign-up leaves an attacker with nothing."""
    client = browser(rt)
    created = client.post("/api/v1/signup", json={"email": address, "password": ATTACKER_PASSWORD})
    assert created.status_code in (201, 403, 409), created.text
    if created.status_code != 201:
        return Attacker(None, address, client, None)
    signed = client.post("/api/v1/login", json={"email": address, "password": ATTACKER_PASSWORD})
    secret = None
    if signed.status_code == 200:
        client.headers["x-csrf-token"] = signed.json()["csrf_token"]
        if token:
            made = client.post("/api/v1/me/tokens", json={"name": "mine", "scopes": ["read"]})
            secret = made.json()["token"] if made.status_code == 201 else None
    return Attacker(account(rt, created.json()["id"]), address, client, secret)


def squat(rt: Runtime, world: World, holder: str) -> tuple[Account, Attacker | None]:
    """Someone takes VICTIM unverified, before acme verifies acme.example: as
    their account's primary address (a pre-registration, signed in, token tried),
    or ``secondary``, added to their own verified account eve@evil.example."""
    if holder == "primary":
        attacker = pre_register(rt, VICTIM)
        assert attacker.account is not None
        return attacker.account, attacker
    eve = account(rt, world.user("eve@evil.example", password=ATTACKER_PASSWORD).id)
    client = browser(rt)
    sign_in(client, "eve@evil.example", ATTACKER_PASSWORD)
    assert client.post("/api/v1/me/emails", json={"email": VICTIM}).status_code == 201
    assert eve is not None
    return eve, None


def verification_link(rt: Runtime, address: str) -> str:
    """The token of the newest verification mail sent to ``address``."""
    links = links_to(rt, address)
    assert links, f"no verification mail to {address}"
    return links[-1]


def victim_signs_up(rt: Runtime, address: str) -> TestClient:
    """The owner signs up, signs in and confirms the address in their own session."""
    client = browser(rt)
    created = client.post("/api/v1/signup", json={"email": address, "password": PASSWORD})
    assert created.status_code == 201, f"the address is still reserved: {created.text}"
    sign_in(client, address)
    verified = client.post("/api/v1/verify-email", json={"token": verification_link(rt, address)})
    assert verified.status_code == 200, verified.text
    return client


def links_to(rt: Runtime, address: str) -> list[str]:
    """The tokens of every verification mail sent to ``address``, oldest first."""
    with rt.db.transaction() as db:
        bodies = db.scalars(
            select(OutboxMail.body).where(OutboxMail.recipient == address).order_by(OutboxMail.id)
        ).all()
    return [m.group(1) for body in bodies if (m := re.search(r"token=([A-Za-z0-9_-]+)", body))]


def released(rt: Runtime) -> list[dict[str, Any]]:
    """``reason`` and ``account_deleted`` of every ``user.email_released`` audit
    event, in order."""
    with rt.db.transaction() as db:
        rows = db.scalars(
            select(AuditEvent.data)
            .where(AuditEvent.action == "user.email_released")
            .order_by(AuditEvent.id)
        ).all()
    return [
        {key: json.loads(data).get(key) for key in ("reason", "account_deleted")} for data in rows
    ]


def refusal_audited(rt: Runtime, answer: Any, reason: str) -> None:
    """The refusal answered ``reason`` and an audit event with that reason carries
    the answer's trace id."""
    assert answer.status_code == 403, f"not refused: {answer.status_code} {answer.text}"
    body = answer.json()
    assert body["error"] == reason, answer.text
    with rt.db.transaction() as db:
        traces = db.scalars(select(AuditEvent.trace_id).where(AuditEvent.reason == reason)).all()
    assert body["trace_id"] in traces
