"""How people join an org, as its admin meets it (issue 20 items 7 and 8): the join
link always shown to admins on the Members and Single sign-on tabs (and through the
API and CLI), rotated, its expiry set; invitations made from the Members tab with a
link to pass on and a mail through the outbox, re-sent and revoked, accepted through
the link by the invited person only."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from hubgate import store
from hubgate.access import OrgRole
from hubgate.app import create_app
from hubgate.db.models import AuditEvent, Invitation, OrgSso, OutboxMail
from hubgate.db.types import utcnow
from hubgate.mail.message import text_to_html
from hubgate.runtime import Runtime
from tests.conftest import World, sign_in
from tests.integration.sso_world import SsoOrg, count, person, role_of, sso_org
from tests.integration.test_last_admin import operator_cli

HTML = {"accept": "text/html"}
JOIN_URL = re.compile(r'id="join-url" data-copy data-copy-label="the join link">([^<]+)<')


@pytest.fixture
def acme(rt: Runtime, world: World) -> SsoOrg:
    return sso_org(rt, world)


@pytest.fixture
def admin(client: TestClient, acme: SsoOrg) -> TestClient:
    sign_in(client, "admin@acme.example")
    return client


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    return operator_cli(database_url, tmp_path, monkeypatch)


def _post(client: TestClient, path: str, data: dict[str, str], page: str = "/acme/members") -> Any:
    """A form of ``page`` posted with its CSRF token, following the redirect back."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page, headers=HTML).text)
    assert token is not None
    return client.post(path, data={"csrf_token": token.group(1), **data}, headers=HTML)


def _join_url(client: TestClient, page: str = "/acme/members") -> str | None:
    found = JOIN_URL.search(client.get(page, headers=HTML).text)
    return found.group(1) if found else None


def _path(url: str) -> str:
    return url.removeprefix("http://testserver")


def _actions(rt: Runtime, action: str) -> list[AuditEvent]:
    with rt.db.transaction() as db:
        rows = db.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return list(rows)


# -- the join link ---------------------------------------------------------------


def test_the_join_link_is_shown_on_both_tabs_and_rotates(
    admin: TestClient, rt: Runtime, acme: SsoOrg
) -> None:
    page = admin.get("/acme/members", headers=HTML).text
    assert 'id="join-none"' in page and "Create join link" in page
    assert admin.get("/api/v1/orgs/acme/sso/join-link").json()["state"] == "none"

    made = _post(admin, "/acme/members/join-link", {"expires_days": "0"})
    assert made.status_code == 200 and "New join link" in made.text
    first = _join_url(admin)
    assert first is not None and first.startswith("http://testserver/sso/join/")
    assert _join_url(admin, "/acme/sso") == first  # the same link on the SSO tab
    assert _join_url(admin) == first  # and again: not shown once
    assert "Never expires." in admin.get("/acme/members", headers=HTML).text
    api = admin.get("/api/v1/orgs/acme/sso/join-link").json()
    assert api["join_url"] == first and api["state"] == "live" and api["expires_at"] is None
    assert admin.get(_path(first), follow_redirects=False).status_code == 303

    _post(admin, "/acme/sso/join-link", {"expires_days": "0"}, page="/acme/sso")
    second = _join_url(admin)
    assert second is not None and second != first
    assert admin.get(_path(first), follow_redirects=False).status_code == 404  # at once
    assert admin.get(_path(second), follow_redirects=False).status_code == 303
    rotations = _actions(rt, "sso.join_link_rotated")
    assert len(rotations) == 2 and {e.actor for e in rotations} == {"admin@acme.example"}


def test_the_key_is_sealed_at_rest_and_found_by_its_hash(
    admin: TestClient, rt: Runtime, acme: SsoOrg
) -> None:
    url = admin.post("/api/v1/orgs/acme/sso/join-link", json={}).json()["join_url"]
    key = url.rpartition("/")[2]
    with rt.db.transaction() as db:
        row = db.get_one(OrgSso, acme.org.id)
        assert row.join_key_hash == store.digest(key)
        assert row.join_key_sealed is not None and key not in row.join_key_sealed
        assert rt.sealer.unseal(row.join_key_sealed) == key


def test_the_expiry_is_shown_set_and_enforced(admin: TestClient, rt: Runtime, acme: SsoOrg) -> None:
    refused = _post(admin, "/acme/members/join-link/expiry", {"expires_days": "3"})
    assert refused.status_code == 400 and "There is no join link" in refused.text
    assert not _actions(rt, "sso.join_link_expiry_changed")

    _post(admin, "/acme/members/join-link", {"expires_days": "7"})
    url = _join_url(admin)
    assert url is not None
    page = admin.get("/acme/members", headers=HTML).text
    assert re.search(r"Expires on \d{4}-\d\d-\d\d \d\d:\d\d UTC\.", page)

    set_ = _post(admin, "/acme/members/join-link/expiry", {"expires_days": "0"})
    assert set_.status_code == 200 and "Never expires." in set_.text
    assert _join_url(admin) == url  # the link stays the same
    changed = admin.patch("/api/v1/orgs/acme/sso/join-link", json={"expires_in_seconds": 3600})
    assert changed.status_code == 200 and changed.json()["join_url"] == url
    assert changed.json()["expires_at"] is not None
    assert len(_actions(rt, "sso.join_link_expiry_changed")) == 2
    too_short = admin.patch("/api/v1/orgs/acme/sso/join-link", json={"expires_in_seconds": 10})
    assert too_short.status_code == 400 and len(_actions(rt, "sso.join_link_expiry_changed")) == 2

    with rt.db.transaction() as db:  # its time passes
        db.execute(update(OrgSso).values(join_expires_at=utcnow() - timedelta(seconds=1)))
    assert admin.get(_path(url), follow_redirects=False).status_code == 404
    assert admin.get("/api/v1/orgs/acme/sso/join-link").json()["state"] == "expired"
    assert "expired</span>" in admin.get("/acme/members", headers=HTML).text


def test_a_link_kept_only_as_a_hash_or_unreadable_is_not_shown_and_no_500(
    admin: TestClient, rt: Runtime, acme: SsoOrg
) -> None:
    """A link made before the key was kept (only its hash), or sealed under a key
    since lost: it still works, the admin is told to rotate, nothing fails."""
    url = admin.post("/api/v1/orgs/acme/sso/join-link", json={}).json()["join_url"]
    for sealed in (None, "not-a-sealed-value"):
        with rt.db.transaction() as db:
            db.execute(update(OrgSso).values(join_key_sealed=sealed))
        page = admin.get("/acme/members", headers=HTML)
        assert page.status_code == 200 and 'id="join-hidden"' in page.text
        assert admin.get("/acme/sso", headers=HTML).status_code == 200
        shown = admin.get("/api/v1/orgs/acme/sso/join-link").json()
        assert shown["state"] == "hidden" and shown["join_url"] is None
        assert admin.get(_path(url), follow_redirects=False).status_code == 303


def test_members_who_are_not_admins_see_no_link(
    admin: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    url = admin.post("/api/v1/orgs/acme/sso/join-link", json={}).json()["join_url"]
    admin.post("/api/v1/orgs/acme/sso/invitations", json={"email": "ada@acme.example"})
    world.member(acme.org, world.user("bob@acme.example"), OrgRole.WRITE)
    bob = TestClient(admin.app)
    sign_in(bob, "bob@acme.example")
    page = bob.get("/acme/members", headers=HTML)
    assert page.status_code == 200 and "bob@acme.example" in page.text
    assert url not in page.text and "/sso/invite/" not in page.text
    assert "Join link" not in page.text and "ada@acme.example" not in page.text
    assert bob.get("/api/v1/orgs/acme/sso/join-link").status_code == 403
    assert bob.get("/api/v1/orgs/acme/sso/invitations").status_code == 403
    refused = _post(bob, "/acme/members/join-link", {"expires_days": "0"})
    assert refused.status_code == 403
    assert len(_actions(rt, "sso.join_link_rotated")) == 1


def test_the_cli_shows_rotates_and_sets_the_expiry(cli: Any, acme: SsoOrg) -> None:
    assert "no join link" in cli("sso", "join-link", "--org", "acme").output
    rotated = cli("sso", "join-link", "--org", "acme", "--rotate", "--expires", "30d").output
    url = re.search(r"http://\S+/sso/join/\S+", rotated)
    assert url is not None and "expires" in rotated
    shown = cli("sso", "join-link", "--org", "acme").output
    assert url.group() in shown
    forever = cli("sso", "join-link", "--org", "acme", "--no-expiry").output
    assert url.group() in forever and "no expiry" in forever


# -- invitations -----------------------------------------------------------------


def _mails(rt: Runtime, recipient: str) -> list[OutboxMail]:
    with rt.db.transaction() as db:
        rows = db.scalars(
            select(OutboxMail).where(OutboxMail.recipient == recipient).order_by(OutboxMail.id)
        )
        return list(rows)


def _invitation_url(client: TestClient, email: str) -> str:
    page = client.get("/acme/members", headers=HTML).text
    row = re.search(rf'data-invitation="{re.escape(email)}">(.*?)</tr>', page, re.S)
    assert row is not None, page[-3000:]
    url = re.search(r"data-copy[^>]*>(http://testserver/sso/invite/[^<]+)<", row.group(1))
    assert url is not None, row.group(1)
    return url.group(1)


def test_an_invitation_from_the_members_tab_is_mailed_with_its_link(
    admin: TestClient, rt: Runtime, acme: SsoOrg
) -> None:
    made = _post(admin, "/acme/members/invitations", {"email": "Ada@Acme.example", "role": "read"})
    assert made.status_code == 200 and "Invitation made" in made.text
    url = _invitation_url(admin, "ada@acme.example")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", made.text)
    [mail] = _mails(rt, "ada@acme.example")
    assert url in mail.body and "read" in mail.body and "ada@acme.example" in mail.body
    assert f'<a href="{url}">' in text_to_html(mail.body)  # the HTML alternative links it
    listed = admin.get("/api/v1/orgs/acme/sso/invitations").json()
    assert [(i["email"], i["url"]) for i in listed] == [("ada@acme.example", url)]
    with rt.db.transaction() as db:
        row = db.scalars(select(Invitation)).one()
        key = url.rpartition("/")[2]
        assert row.key_hash == store.digest(key) and key not in (row.key_sealed or "")
    assert admin.get(_path(url), follow_redirects=False).status_code == 303  # to the IdP
    assert _actions(rt, "invitation.created")[0].actor == "admin@acme.example"


def test_resending_mails_again_once_a_minute_and_revoking_kills_the_link(
    admin: TestClient, rt: Runtime, acme: SsoOrg
) -> None:
    made = admin.post(
        "/api/v1/orgs/acme/sso/invitations", json={"email": "ada@acme.example", "role": "write"}
    )
    assert made.status_code == 201 and made.json()["url"].startswith("http://testserver/sso/")
    url = made.json()["url"]
    too_soon = _post(admin, "/acme/members/invitations/resend", {"email": "ada@acme.example"})
    assert too_soon.status_code == 429 and "less than a minute ago" in too_soon.text
    assert len(_mails(rt, "ada@acme.example")) == 1 and not _actions(rt, "invitation.resent")
    with rt.db.transaction() as db:
        db.execute(update(Invitation).values(mailed_at=utcnow() - timedelta(minutes=2)))
    resent = _post(admin, "/acme/members/invitations/resend", {"email": "ada@acme.example"})
    assert resent.status_code == 200 and "mailed again" in resent.text
    mails = _mails(rt, "ada@acme.example")
    assert len(mails) == 2 and url in mails[1].body  # the same link, mailed again
    api = admin.post("/api/v1/orgs/acme/sso/invitations/ada@acme.example/resend")
    assert api.status_code == 429 and api.json()["error"] == "resent_too_soon"
    nobody = admin.post("/api/v1/orgs/acme/sso/invitations/zed@acme.example/resend")
    assert nobody.status_code == 404 and nobody.json()["error"] == "no_invitation"

    revoked = _post(admin, "/acme/members/invitations/revoke", {"email": "ada@acme.example"})
    assert revoked.status_code == 200 and "No pending invitation." in revoked.text
    dead = admin.get(_path(url), follow_redirects=False)
    assert dead.status_code == 404 and dead.json()["error"] == "invitation_invalid"


def test_the_cli_invites_lists_and_resends_with_the_link(
    cli: Any, rt: Runtime, acme: SsoOrg
) -> None:
    made = cli("sso", "invite", "--org", "acme", "ada@acme.example", "--json").output
    url = re.search(r"http://\S+/sso/invite/[A-Za-z0-9_-]+", made)
    assert url is not None
    listed = cli("sso", "invitations", "--org", "acme").output
    assert url.group() in listed and "ada@acme.example" in listed
    with rt.db.transaction() as db:
        db.execute(update(Invitation).values(mailed_at=utcnow() - timedelta(minutes=2)))
    assert cli("sso", "invite-resend", "--org", "acme", "ada@acme.example").exit_code == 0
    assert len(_mails(rt, "ada@acme.example")) == 2
    assert cli("sso", "invite-revoke", "--org", "acme", "ada@acme.example").exit_code == 0
    assert count(rt, Invitation) == 0


def test_the_invited_person_accepts_through_the_link(
    admin: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    world.user("ada@acme.example")
    url = admin.post(
        "/api/v1/orgs/acme/sso/invitations", json={"email": "ada@acme.example", "role": "read"}
    ).json()["url"]
    acme.set_mode("basic")
    ada = TestClient(create_app(runtime=rt))
    answer = acme.sign_in(ada, start=_path(url), **person("ada@acme.example"))
    assert answer["status"] == 200 and answer["next"] == "/acme"
    assert role_of(rt, acme.org, "ada@acme.example") is OrgRole.READ
    assert count(rt, Invitation) == 0  # spent
    assert ada.get(_path(url), follow_redirects=False).status_code == 404


def test_someone_else_holding_the_link_cannot_take_the_invitation(
    admin: TestClient, rt: Runtime, world: World, acme: SsoOrg
) -> None:
    """Mallory got ada's link (a forwarded mail, a shoulder): it only starts acme's
    SSO, where she signs in as herself. In basic mode she is refused like anyone
    uninvited; in managed mode she gets what any newcomer gets, never the invited
    role; either way ada's invitation stays, and ada can still accept it."""
    world.user("mallory@acme.example")
    url = admin.post(
        "/api/v1/orgs/acme/sso/invitations", json={"email": "ada@acme.example", "role": "admin"}
    ).json()["url"]
    acme.set_mode("basic")
    mallory = TestClient(create_app(runtime=rt))
    refused = acme.sign_in(mallory, start=_path(url), **person("mallory@acme.example"))
    assert refused["status"] == 403 and refused["error"] == "not_member", refused
    assert role_of(rt, acme.org, "mallory@acme.example") is None
    assert count(rt, Invitation) == 1 and not _actions(rt, "invitation.accepted")

    acme.set_mode("managed")
    other = TestClient(create_app(runtime=rt))
    jit = acme.sign_in(other, start=_path(url), **person("mel@acme.example"))
    assert jit["status"] == 200
    assert role_of(rt, acme.org, "mel@acme.example") is OrgRole.WRITE  # the default role
    assert count(rt, Invitation) == 1 and not _actions(rt, "invitation.accepted")

    ada = TestClient(create_app(runtime=rt))
    assert acme.sign_in(ada, start=_path(url), **person("ada@acme.example"))["status"] == 200
    assert role_of(rt, acme.org, "ada@acme.example") is OrgRole.ADMIN


def test_the_members_tab_says_only_its_own_words(admin: TestClient) -> None:
    page = admin.get("/acme/members?done=Call+us+at+555", headers=HTML).text
    assert "Call us" not in page
    assert "Join link disabled." in admin.get("/acme/members?done=join-disabled").text


def test_a_forged_or_overlong_link_answers_not_found(client: TestClient, acme: SsoOrg) -> None:
    for key in ("x", "A" * 43, "A" * 5000):
        for kind in ("invite", "join"):
            answer = client.get(f"/sso/{kind}/{key}", follow_redirects=False)
            assert answer.status_code == 404, (kind, key[:10], answer.text)
