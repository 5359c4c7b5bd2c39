"""The org admin's single sign-on page from the browser's side (forms, CSRF,
refusals shown on the page), in-process."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hubgate.access import OrgRole
from hubgate.db.models import AuditEvent, OrgDomain, RoleMapping, SetupLink
from hubgate.runtime import Runtime
from tests.conftest import World, sign_in
from tests.integration.sso_world import SsoOrg, count, sso_org

HTML = {"accept": "text/html"}


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    return sso_org(rt, world)


@pytest.fixture
def admin(client: TestClient, acme: SsoOrg) -> TestClient:
    sign_in(client, "admin@acme.example")
    return client


def _submit(client: TestClient, path: str, data: dict[str, Any]) -> Any:
    page = client.get("/acme/sso", headers=HTML)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None, page.text[:500]
    return client.post(path, data={"csrf_token": token.group(1), **data}, headers=HTML)


def test_the_page_shows_the_policy_to_admins_only(
    admin: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    page = admin.get("/acme/sso", headers=HTML)
    assert page.status_code == 200
    assert "acme.example" in page.text and "Single sign-on" in page.text
    world.member(acme.org, world.user("bob@acme.example"), OrgRole.WRITE)
    other = TestClient(admin.app)
    sign_in(other, "bob@acme.example")
    assert other.get("/acme/sso", headers=HTML).status_code == 403
    assert "Single sign-on</a>" not in other.get("/acme", headers=HTML).text


def test_the_page_says_only_its_own_sentences(admin: TestClient) -> None:
    """``?done=`` names one of the page's fixed sentences: a crafted link cannot put
    words of its own on an admin's page."""
    said = admin.get("/acme/sso", params={"done": "settings"}, headers=HTML)
    assert '<p class="notice" role="status">Settings saved.</p>' in said.text
    forged = "Your IdP certificate expired: call +1 555 0100 now"
    page = admin.get("/acme/sso", params={"done": forged}, headers=HTML)
    assert page.status_code == 200 and "call +1 555" not in page.text
    assert 'class="notice"' not in page.text


def test_each_form_says_what_it_did(admin: TestClient, rt: Runtime, acme: SsoOrg) -> None:
    """The forms no other test here drives, in an order each can succeed in: each
    comes back to the page with its own sentence."""
    connection = f"/acme/sso/connections/{acme.connection_id}"
    steps = [
        (f"{connection}/deactivate", {}, "Connection deactivated."),
        (f"{connection}/activate", {}, "Connection activated."),
        ("/acme/sso/enforcement", {"enforced": "on"}, "Enforcement changed."),
        ("/acme/sso/team-mappings", {"lines": "groups=ml:everyone:write"}, "Team mappings saved."),
        ("/acme/sso/invitations", {"email": "ada@acme.example"}, "Invitation made: the mail"),
        ("/acme/sso/invitations/revoke", {"email": "ada@acme.example"}, "Invitation revoked."),
        ("/acme/sso/join-link", {"expires_days": "7"}, "Join link rotated: the old one"),
        ("/acme/sso/join-link/expiry", {"expires_days": "3"}, "Join link expiry set."),
        ("/acme/sso/join-link/disable", {}, "Join link disabled."),
        ("/acme/sso/domains", {"domain": "labs.acme.example"}, "Domain added: publish"),
        ("/acme/sso/domains/labs.acme.example/remove", {}, "Domain removed."),
        ("/acme/sso/setup-links", {"email": "it@acme.example"}, "Setup link created."),
    ]
    for path, form, sentence in steps:
        page = _submit(admin, path, form)
        assert page.status_code == 200, (path, page.text[:300])
        assert f'<p class="notice" role="status">{sentence}' in page.text, path
    with rt.db.transaction() as db:
        link_id = db.query(SetupLink).one().id
    revoked = _submit(admin, f"/acme/sso/setup-links/{link_id}/revoke", {})
    assert '<p class="notice" role="status">Setup link revoked.</p>' in revoked.text


@pytest.mark.parametrize(
    "path",
    ["connections/{id}/frobnicate", "connections/{id}/metadata/frobnicate",
     "domains/acme.example/frobnicate"],
)  # fmt: skip
def test_an_action_the_page_does_not_have_is_refused(
    admin: TestClient, rt: Runtime, acme: SsoOrg, path: str
) -> None:
    """The action a form's path names is one of a fixed few: any other is a 400 page
    and changes nothing (the sentence shown afterwards is looked up by action)."""
    before = count(rt, AuditEvent)
    refused = _submit(admin, "/acme/sso/" + path.format(id=acme.connection_id), {})
    assert refused.status_code == 400 and "Some fields are not valid." in refused.text
    assert count(rt, AuditEvent) == before


def test_mode_mappings_and_preview(admin: TestClient, rt: Runtime) -> None:
    saved = _submit(
        admin, "/acme/sso/mode",
        {"mode": "basic-optional", "timeout_hours": "12", "default_role": "read",
         "default_team": "everyone"},
    )  # fmt: skip
    assert saved.status_code == 200 and "Settings saved." in saved.text
    assert 'value="12"' in saved.text
    mapped = _submit(
        admin, "/acme/sso/role-mappings", {"lines": "groups=hub-admins:admin\ngroups=ml:write\n"}
    )
    assert "Role mappings saved." in mapped.text and count(rt, RoleMapping) == 2
    preview = _submit(admin, "/acme/sso/preview", {"groups": "ml, other"})
    assert re.search(r"would get role <strong>write</strong>", preview.text)
    bad = _submit(admin, "/acme/sso/role-mappings", {"lines": "groups=ml"})
    assert bad.status_code == 400 and "Line 1 is not" in bad.text and count(rt, RoleMapping) == 2
    # The admin holds the role by hand, so a set without an admin mapping keeps a way in.
    kept = _submit(admin, "/acme/sso/role-mappings", {"lines": "groups=ml:read"})
    assert "Role mappings saved." in kept.text and count(rt, RoleMapping) == 1


def test_setup_links_are_shown_once_and_the_join_link_always(
    admin: TestClient, rt: Runtime
) -> None:
    made = _submit(admin, "/acme/sso/setup-links", {"email": "it@acme.example"})
    url = re.search(r'id="new-setup-url" data-copy>([^<]+)<', made.text)
    assert url is not None and count(rt, SetupLink) == 1
    assert (
        admin.get(url.group(1).removeprefix("http://testserver"), headers=HTML).status_code == 200
    )
    assert url.group(1) not in admin.get("/acme/sso", headers=HTML).text
    assert 'id="join-none"' in admin.get("/acme/sso", headers=HTML).text
    joined = _submit(admin, "/acme/sso/join-link", {"expires_days": "7"})
    join_url = re.search(
        r'id="join-url" data-copy data-copy-label="the join link">([^<]+)<', joined.text
    )
    assert join_url is not None and "Expires on" in joined.text
    assert join_url.group(1) in admin.get("/acme/sso", headers=HTML).text  # shown again
    assert (
        admin.get(
            join_url.group(1).removeprefix("http://testserver"), follow_redirects=False
        ).status_code
        == 303
    )


def test_domains_and_refusals_on_the_page(admin: TestClient, rt: Runtime) -> None:
    added = _submit(admin, "/acme/sso/domains", {"domain": "Labs.Acme.Example."})
    assert "labs.acme.example" in added.text and "hubgate-verification=" in added.text
    bad = _submit(admin, "/acme/sso/domains", {"domain": "not a domain"})
    assert bad.status_code == 400 and count(rt, OrgDomain) == 2
    outsider = _submit(admin, "/acme/sso/collaborators", {"email": "nobody@x.example"})
    assert outsider.status_code == 400 and "No account has that email" in outsider.text


def test_forms_need_the_csrf_token(admin: TestClient, rt: Runtime) -> None:
    refused = admin.post("/acme/sso/mode", data={"mode": "managed"}, headers=HTML)
    assert refused.status_code == 403
    with rt.db.transaction() as db:
        assert db.query(AuditEvent).filter(AuditEvent.action == "sso.settings_changed").count() == 0


def test_scim_tokens_on_the_page(admin: TestClient, rt: Runtime) -> None:
    made = _submit(admin, "/acme/sso/scim-tokens", {"name": "Okta"})
    secret = re.search(r'id="new-scim-token" data-copy>([^<]+)<', made.text)
    assert secret is not None and secret.group(1).startswith("hgscim_")
    bearer = {"authorization": f"Bearer {secret.group(1)}"}
    assert TestClient(admin.app).get("/scim/v2/acme/Users", headers=bearer).status_code == 200
    token_id = re.search(r"/acme/sso/scim-tokens/(\d+)/revoke", made.text)
    assert token_id is not None
    _submit(admin, f"/acme/sso/scim-tokens/{token_id.group(1)}/revoke", {})
    assert TestClient(admin.app).get("/scim/v2/acme/Users", headers=bearer).status_code == 401


def test_the_audit_page_refuses_an_id_past_any_row(admin: TestClient) -> None:
    answer = admin.get("/acme/audit", params={"before_id": 10**30}, headers=HTML)
    assert answer.status_code == 400
