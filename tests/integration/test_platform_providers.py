"""Platform sign-in providers over HTTP, against the in-process fake OpenID
Provider of test_oidc_flow.py: own accounts made, linked and signed in, and the
attacker's side (unvouched addresses, another account's address, a managed
org's domain, replayed and foreign state). Each refusal changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.db.models import (
    AuditEvent,
    Email,
    PlatformLink,
    PlatformProvider,
    SsoAuthentication,
    User,
    WebSession,
)
from hubgate.runtime import Runtime, build_runtime
from hubgate.sso import connections
from hubgate.sso.platform import providers
from tests.conftest import World, make_settings, sign_in
from tests.integration.sso_world import count, sso_org
from tests.integration.test_oidc_flow import CLIENT, ISSUER, SECRET, Provider, install


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Provider:
    fake = install(monkeypatch)
    fake.claims = {"email": "ada@example.com", "email_verified": True, "name": "Ada"}
    return fake


@pytest.fixture
def provider_id(rt: Runtime, provider: Provider) -> int:
    discovered = connections.discover(rt, ISSUER)
    with rt.db.transaction() as db:
        return providers.add_oidc(
            db, rt, Actor.system(), name="Example ID", client_id=CLIENT, client_secret=SECRET,
            provider=discovered,
        ).id  # fmt: skip


def _start(client: TestClient, provider_id: int, next_path: str = "/") -> str:
    response = client.get(
        f"/sso/platform/{provider_id}/start", params={"next": next_path}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def _callback(client: TestClient, provider_id: int, params: dict[str, str]) -> dict[str, Any]:
    response = client.get(
        f"/sso/platform/{provider_id}/callback", params=params,
        headers={"accept": "application/json"},
    )  # fmt: skip
    return {"status": response.status_code, **response.json()}


def _sign_in(client: TestClient, provider: Provider, provider_id: int) -> dict[str, Any]:
    return _callback(client, provider_id, provider.authorize(_start(client, provider_id)))


def _reasons(rt: Runtime) -> list[str | None]:
    with rt.db.transaction() as db:
        events = db.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "auth.login_refused")
            .order_by(AuditEvent.id)
        )
        return [e.reason for e in events]


def test_the_buttons_are_on_the_sign_in_and_sign_up_pages(
    client: TestClient, provider_id: int
) -> None:
    for page in ("/login?next=/acme", "/signup"):
        html = client.get(page).text
        assert "Continue with Example ID" in html
        assert f'href="/sso/platform/{provider_id}/start?next=' in html
    assert f"/sso/platform/{provider_id}/start?next=/acme" in client.get("/login?next=/acme").text


def test_the_client_secret_is_sealed_at_rest(rt: Runtime, provider_id: int) -> None:
    with rt.db.transaction() as db:
        row = db.get(PlatformProvider, provider_id)
        assert row is not None and SECRET not in row.settings


def test_a_vouched_address_makes_an_own_account_and_the_link_signs_it_in_again(
    client: TestClient, rt: Runtime, provider: Provider, provider_id: int
) -> None:
    first = _sign_in(client, provider, provider_id)
    assert first["status"] == 200 and first["next"] == "/", first
    assert client.get("/api/v1/me").status_code == 200, "signed in"
    with rt.db.transaction() as db:
        email = db.scalars(select(Email).where(Email.address == "ada@example.com")).one()
        assert email.verified_at is not None and email.user_id == first["user_id"]
        user = db.get(User, first["user_id"])
        assert user is not None and user.password_hash is None
    assert count(rt, SsoAuthentication) == 0, "a platform provider is never an org's SSO"
    # Later the provider says another address: the subject alone binds.
    provider.claims = {"email": "other@example.com", "email_verified": True}
    again = _sign_in(TestClient(create_app(runtime=rt)), provider, provider_id)
    assert again["user_id"] == first["user_id"]
    assert count(rt, User) == 1 and count(rt, PlatformLink) == 1


def test_a_vouched_address_links_the_account_that_verified_it_and_ends_its_sessions(
    client: TestClient, rt: Runtime, world: World, provider: Provider, provider_id: int
) -> None:
    owner = world.user("ada@example.com")
    elsewhere = TestClient(create_app(runtime=rt))
    sign_in(elsewhere, "ada@example.com")
    answer = _sign_in(client, provider, provider_id)
    assert answer["user_id"] == owner.id
    assert count(rt, WebSession, WebSession.user_id == owner.id) == 1, "the other session ended"
    assert elsewhere.get("/api/v1/me").status_code == 401


def test_an_unvouched_address_of_another_account_is_refused_and_changes_nothing(
    client: TestClient, rt: Runtime, world: World, provider: Provider, provider_id: int
) -> None:
    """The attacker's provider account names the victim's address, unverified."""
    world.user("ada@example.com")
    provider.claims = {"email": "ada@example.com", "email_verified": False}
    answer = _sign_in(client, provider, provider_id)
    assert answer["status"] == 403 and answer["error"] == "provider_email_unverified"
    assert answer["trace_id"]
    assert count(rt, PlatformLink) == 0 and count(rt, WebSession) == 0 and count(rt, User) == 1
    assert _reasons(rt) == ["provider_email_unverified"]


def test_an_unvouched_address_makes_no_account(
    client: TestClient, rt: Runtime, provider: Provider, provider_id: int
) -> None:
    provider.claims = {"email": "new@example.com"}  # no email_verified at all
    assert _sign_in(client, provider, provider_id)["error"] == "provider_email_unverified"
    provider.claims = {"name": "No Mail"}
    assert _sign_in(client, provider, provider_id)["error"] == "provider_email_missing"
    assert count(rt, User) == 0 and count(rt, PlatformLink) == 0


def test_an_unverified_holder_of_the_address_loses_it(
    client: TestClient, rt: Runtime, world: World, provider: Provider, provider_id: int
) -> None:
    """A pre-registration with the victim's address reserves nothing."""
    squatter = world.user("ada@example.com", verified=False)
    answer = _sign_in(client, provider, provider_id)
    assert answer["status"] == 200 and answer["user_id"] != squatter.id
    with rt.db.transaction() as db:
        assert db.get(User, squatter.id) is None
        released = db.scalars(select(AuditEvent).where(AuditEvent.action == "user.email_released"))
        assert [e.target for e in released] == ["ada@example.com"]


def test_a_managed_orgs_domain_goes_through_its_sso_not_a_platform_provider(
    client: TestClient, rt: Runtime, world: World, provider: Provider, provider_id: int
) -> None:
    corp = sso_org(rt, world, "corp", "corp.example")
    corp.set_mode("managed")
    users_before = count(rt, User)
    provider.claims = {"email": "new@corp.example", "email_verified": True}
    answer = _sign_in(client, provider, provider_id)
    assert answer["status"] == 403 and answer["error"] == "sso_enforced"
    provider.claims = {"email": "admin@corp.example", "email_verified": True}
    assert _sign_in(client, provider, provider_id)["error"] == "sso_enforced"
    assert count(rt, User) == users_before and count(rt, PlatformLink) == 0
    assert count(rt, WebSession) == 0
    assert _reasons(rt) == ["sso_enforced", "sso_enforced"]


def test_a_replayed_state_or_another_browsers_state_is_refused(
    client: TestClient, rt: Runtime, provider: Provider, provider_id: int
) -> None:
    params = provider.authorize(_start(client, provider_id))
    thief = TestClient(create_app(runtime=rt))
    assert _callback(thief, provider_id, params)["error"] == "oidc_state_invalid"
    assert _callback(client, provider_id, params)["status"] == 200, "left for its own browser"
    exchanges = len(provider.token_requests)
    assert _callback(client, provider_id, params)["error"] == "oidc_state_invalid"
    assert len(provider.token_requests) == exchanges, "a replay never reaches the provider"
    assert _callback(client, provider_id, {"state": "", "code": "x"})["status"] == 400


def test_a_refused_answer_still_spends_its_state(
    client: TestClient, rt: Runtime, provider: Provider, provider_id: int
) -> None:
    params = provider.authorize(_start(client, provider_id))
    refused = _callback(client, provider_id, {**params, "iss": "https://evil.example"})
    assert refused["error"] == "oidc_issuer_mismatch"
    assert _callback(client, provider_id, params)["error"] == "oidc_state_invalid"
    assert count(rt, WebSession) == 0
    assert _reasons(rt) == ["oidc_issuer_mismatch", "oidc_state_invalid"]


def test_another_providers_state_is_refused(
    client: TestClient, rt: Runtime, provider: Provider, provider_id: int
) -> None:
    discovered = connections.discover(rt, ISSUER)
    with rt.db.transaction() as db:
        other = providers.add_oidc(
            db, rt, Actor.system(), name="Other", client_id=CLIENT, client_secret=SECRET,
            provider=discovered,
        ).id  # fmt: skip
    params = provider.authorize(_start(client, provider_id))
    assert _callback(client, other, params)["error"] == "oidc_state_invalid"


def test_an_unknown_provider_is_a_clean_404(client: TestClient) -> None:
    response = client.get("/sso/platform/999/start", headers={"accept": "application/json"})
    assert response.status_code == 404 and response.json()["error"] == "provider_unknown"


def test_an_address_production_does_not_take_in_is_refused_and_audited(
    database_url: str, monkeypatch: pytest.MonkeyPatch, provider: Provider
) -> None:
    """Outside ``dev`` a special-use name (``.test``) is refused, by the address
    rule every sign-up follows (the refusal comes after the state was spent)."""
    settings = make_settings(database_url, env="production", secret_key="k" * 48)
    production = build_runtime(settings)
    discovered = connections.discover(production, ISSUER)
    with production.db.transaction() as db:
        provider_id = providers.add_oidc(
            db, production, Actor.system(), name="Example ID", client_id=CLIENT,
            client_secret=SECRET, provider=discovered,
        ).id  # fmt: skip
    provider.claims = {"email": "ada@corp.test", "email_verified": True}
    client = TestClient(create_app(runtime=production))
    refused = _sign_in(client, provider, provider_id)
    assert refused["status"] == 400 and refused["error"] == "invalid_email", refused
    assert count(production, User) == 0 and count(production, WebSession) == 0
    assert _reasons(production) == [refused["error"]]
    production.db.engine.dispose()
