"""GitHub as a platform sign-in provider, against a fake GitHub API server of
the tests' own on loopback HTTP (tests/integration/github_server.py), reached
through hubgate's bounded, SSRF-checked fetcher as GitHub Enterprise Server at
its base URL would be. The attacker's side: an unverified or non-primary
address, another account's address, a managed org's domain, a replayed state,
a code from another browser's sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.config import Settings
from hubgate.db.models import PlatformLink, SsoAuthentication, User, WebSession
from hubgate.runtime import Runtime
from hubgate.sso.platform import providers
from tests.conftest import World, make_settings
from tests.integration.github_server import CLIENT, SECRET, GithubServer, running_github
from tests.integration.sso_world import count, sso_org


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, allow_private_idp_urls=True)  # the loopback GitHub


@pytest.fixture
def gh() -> Iterator[GithubServer]:
    with running_github() as server:
        yield server


@pytest.fixture
def provider_id(rt: Runtime, gh: GithubServer) -> int:
    with rt.db.transaction() as db:
        return providers.add_github(
            db, rt, Actor.system(), name="GitHub", client_id=CLIENT, client_secret=SECRET,
            base_url=gh.base_url,
        ).id  # fmt: skip


def _sign_in(
    client: TestClient, gh: GithubServer, provider_id: int, **changes: str
) -> dict[str, Any]:
    started = client.get(f"/sso/platform/{provider_id}/start", follow_redirects=False)
    assert started.status_code == 303, started.text
    params = {**gh.authorize(started.headers["location"]), **changes}
    return _callback(client, provider_id, params)


def _callback(client: TestClient, provider_id: int, params: dict[str, str]) -> dict[str, Any]:
    response = client.get(
        f"/sso/platform/{provider_id}/callback", params=params,
        headers={"accept": "application/json"},
    )  # fmt: skip
    return {"status": response.status_code, **response.json()}


def test_a_verified_primary_address_makes_an_account_the_numeric_id_signs_in_again(
    client: TestClient, rt: Runtime, gh: GithubServer, provider_id: int
) -> None:
    first = _sign_in(client, gh, provider_id)
    assert first["status"] == 200, first
    assert client.get("/api/v1/me").status_code == 200
    assert count(rt, SsoAuthentication) == 0, "own credentials, never an org's SSO"
    assert "POST /login/oauth/access_token" in gh.requests
    assert {"GET /api/v3/user", "GET /api/v3/user/emails"} <= set(gh.requests)
    # Renamed at GitHub, another primary address: the numeric id alone binds.
    gh.user = {**gh.user, "login": "renamed"}
    gh.emails = [{"email": "new@example.com", "primary": True, "verified": True}]
    again = _sign_in(TestClient(create_app(runtime=rt)), gh, provider_id)
    assert again["user_id"] == first["user_id"] and count(rt, User) == 1


def test_the_verified_address_links_the_account_that_verified_it(
    client: TestClient, rt: Runtime, world: World, gh: GithubServer, provider_id: int
) -> None:
    owner = world.user("octo@example.com")
    assert _sign_in(client, gh, provider_id)["user_id"] == owner.id
    assert count(rt, PlatformLink, PlatformLink.user_id == owner.id) == 1


@pytest.mark.parametrize(
    "emails",
    [
        [{"email": "victim@example.com", "primary": True, "verified": False}],
        # verified, but not the primary: GitHub vouches only for the account's primary
        [{"email": "victim@example.com", "primary": False, "verified": True},
         {"email": "me@example.net", "primary": True, "verified": False}],
    ],
    ids=["unverified-primary", "verified-secondary"],
)  # fmt: skip
def test_an_address_github_does_not_vouch_for_neither_links_nor_creates(
    client: TestClient,
    rt: Runtime,
    world: World,
    gh: GithubServer,
    provider_id: int,
    emails: list[dict[str, Any]],
) -> None:
    world.user("victim@example.com")
    gh.emails = emails
    refused = _sign_in(client, gh, provider_id)
    assert refused["status"] == 403 and refused["error"] == "provider_email_unverified"
    assert count(rt, PlatformLink) == 0 and count(rt, WebSession) == 0 and count(rt, User) == 1


def test_a_managed_orgs_domain_is_refused(
    client: TestClient, rt: Runtime, world: World, gh: GithubServer, provider_id: int
) -> None:
    sso_org(rt, world, "corp", "corp.example").set_mode("managed")
    users_before = count(rt, User)
    gh.emails = [{"email": "dev@corp.example", "primary": True, "verified": True}]
    refused = _sign_in(client, gh, provider_id)
    assert refused["status"] == 403 and refused["error"] == "sso_enforced"
    assert count(rt, User) == users_before and count(rt, PlatformLink) == 0


def test_a_replayed_state_and_a_code_from_another_browser_are_refused(
    client: TestClient, rt: Runtime, gh: GithubServer, provider_id: int
) -> None:
    victim = TestClient(create_app(runtime=rt))

    def victims_answer() -> dict[str, str]:
        started = victim.get(f"/sso/platform/{provider_id}/start", follow_redirects=False)
        return gh.authorize(started.headers["location"])

    stolen = victims_answer()
    # The victim's callback URL opened in another browser: not its state.
    assert _callback(client, provider_id, stolen)["error"] == "oidc_state_invalid"
    signed = _callback(victim, provider_id, stolen)
    assert signed["status"] == 200, "the victim's own state was left for it"
    assert _callback(victim, provider_id, stolen)["error"] == "oidc_state_invalid"
    # A code from the victim's sign-in pasted into the attacker's own: PKCE binds it.
    injected = _sign_in(client, gh, provider_id, code=victims_answer()["code"])
    assert injected["status"] == 400 and injected["error"] == "github_token_failed"
    assert count(rt, WebSession) == 1


def test_github_refusing_the_authorization_is_a_clean_refusal(
    client: TestClient, rt: Runtime, gh: GithubServer, provider_id: int
) -> None:
    started = client.get(f"/sso/platform/{provider_id}/start", follow_redirects=False)
    state = gh.authorize(started.headers["location"])["state"]
    denied = _callback(client, provider_id, {"state": state, "error": "access_denied"})
    assert denied["status"] == 400 and denied["error"] == "github_authorization_error"
    assert count(rt, WebSession) == 0


def test_an_api_answer_without_an_account_id_is_refused(
    client: TestClient, rt: Runtime, gh: GithubServer, provider_id: int
) -> None:
    gh.user = {"login": "no-id", "id": "583231"}
    refused = _sign_in(client, gh, provider_id)
    assert refused["status"] == 400 and refused["error"] == "github_api_invalid"
    assert count(rt, User) == 0
